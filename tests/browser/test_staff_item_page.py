"""The clerk's walk through the queue in Chromium: decide an item with the buttons, land on the next
item of the same filtered list, and come back to the list with its filters and chips."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from core.models import ClearanceApproval
from core.selectors.staff import approvals_waiting

from .conftest import login


def _two_waiting_of_one_programme():
    """Two LIB items waiting (stage open, no LIB hold) of students of one programme, in queue order."""
    waiting = (approvals_waiting(ClearanceApproval.objects.filter(department__code="LIB"))
               .exclude(request__student__holds__department__code="LIB", request__student__holds__status="active")
               .order_by("waiting_since", "pk").values_list("pk", "request__student__programme_id"))
    by_programme = {}
    for pk, programme in waiting:
        by_programme.setdefault(programme, []).append(pk)
    programme, ids = next((p, ids) for p, ids in by_programme.items() if len(ids) >= 2)
    return programme, ids


def test_clerk_approves_with_the_button_and_lands_on_the_next_item_with_filters_kept(page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    programme, ids = _two_waiting_of_one_programme()
    first, second = ClearanceApproval.objects.select_related("request__student").filter(pk__in=ids[:2]).order_by(
        "waiting_since", "pk")
    login(page, "staff", "lib@clearance.test")
    page.goto(f"/staff/core/clearanceapproval/?programme={programme}")
    chips = page.locator("[data-testid=filter-chips]")
    assert "Programme:" in chips.inner_text() and "Waiting (stage open)" in chips.inner_text()

    page.click(f"a[href*='/clearanceapproval/{first.pk}/change/']")
    page.wait_for_load_state("networkidle")
    assert first.request.student.registration_number in page.inner_text("h1, header, #content-main")
    page.fill("textarea[name=notes]", "Checked the shelf list")
    page.click("[data-testid=decisions] button:has-text('Approve and next')")
    page.wait_for_load_state("networkidle")

    first.refresh_from_db()
    assert (first.status, first.notes, first.decided_by.email) == ("approved", "Checked the shelf list",
                                                                    "lib@clearance.test")
    landed = urlsplit(page.url)
    assert landed.path == f"/staff/core/clearanceapproval/{second.pk}/change/"
    assert f"programme={programme}" in parse_qs(landed.query)["_changelist_filters"][0]
    body = page.inner_text("body")
    assert f"LIB for {first.request.student.registration_number}: approved." in body
    assert second.request.student.registration_number in body

    page.click("a:has-text('Back to the list')")
    page.wait_for_load_state("networkidle")
    assert f"programme={programme}" in page.url
    assert "Programme:" in page.locator("[data-testid=filter-chips]").inner_text()
    assert errors == []


STYLE_OF = """(selector) => { const el = document.querySelector(selector); const s = getComputedStyle(el);
  const before = getComputedStyle(el, '::before');
  return {display: s.display, paddingLeft: s.paddingLeft, borderTop: s.borderTopWidth,
          label: before.content, labelShown: before.display}; }"""


def test_the_compact_rows_look_like_unfolds_on_a_desk_and_on_a_phone(page):
    """clearance_admin/compact.py: unfold's utilities by one class each. Were its stylesheet to land in
    the wrong cascade layer, unfold's reset would strip every page (it once did): the cells keep
    unfold's padding, the table layout on a desk and the labelled cards on a phone."""
    login(page, "staff", "lib@clearance.test")
    page.goto("/staff/core/clearanceapproval/?queue=all")
    cell = page.evaluate(STYLE_OF, "td.field-programme_column")
    assert (cell["display"], cell["paddingLeft"], cell["labelShown"]) == ("table-cell", "12px", "none")
    assert page.evaluate("getComputedStyle(document.querySelector('input.action-select')).appearance") == "none"
    sidebar_link = page.evaluate("getComputedStyle(document.querySelector('a.active[href$=\"/clearanceapproval/\"]'))"
                                 ".paddingLeft")
    assert sidebar_link == "12px"                   # the rest of the page keeps unfold's utilities too
    page.set_viewport_size({"width": 390, "height": 900})
    cell = page.evaluate(STYLE_OF, "td.field-programme_column")
    assert (cell["display"], cell["paddingLeft"], cell["label"]) == ("flex", "12px", '"Programme"')
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
