"""/staff/: the item page a clerk decides on all day — the decision buttons, the reason pages, the
walk to the next item of the list they came from — and the queue's default view, its filter chips,
re-submitted items, bulk confirmations and a hold's own release/waive. Through the HTTP client as a
reviewer would, refusals included."""
from __future__ import annotations

import datetime
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import ClearanceApproval, Hold
from core.services.approvals import approval_approve, approval_reject, approval_resubmit
from tests import factories
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

A = ClearanceApproval.Status
QUEUE = reverse("staff:core_clearanceapproval_changelist")


def item(approval) -> str:
    return reverse("staff:core_clearanceapproval_change", args=[approval.pk])


def decide_url(approval, decision, filters="") -> str:
    url = reverse(f"staff:core_clearanceapproval_{decision}_item", args=[approval.pk])
    return f"{url}?{urlencode({'_changelist_filters': filters})}" if filters else url


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def listed(client, query="") -> list[int]:
    response = client.get(QUEUE + query)
    assert response.status_code == 200, query
    return [a.pk for a in response.context["cl"].result_list]


@pytest.fixture
def lib_client(client, lib_reviewer):
    client.force_login(lib_reviewer)
    return client


@pytest.fixture
def three(open_request, approval):
    """Three LIB items waiting 9, 6 and 3 days (the queue's order), for Amina, Brian and Chao."""
    items = []
    for days, (first, last) in zip((9, 6, 3), [("Amina", "Otieno"), ("Brian", "Kamau"), ("Chao", "Otieno")]):
        lib = approval(open_request(factories.StudentFactory(first_name=first, last_name=last)), "LIB")
        ClearanceApproval.objects.filter(pk=lib.pk).update(waiting_since=timezone.now() - datetime.timedelta(days=days))
        items.append(fresh(lib))
    return items


# --- the item page ----------------------------------------------------------------------------------------

def test_item_page_has_decision_buttons_an_empty_note_and_no_editing_help(lib_client, lib_reviewer, clearance,
                                                                           approval):
    lib = approval(clearance, "LIB")
    approval_approve(approval=lib, acting_user=lib_reviewer, notes="Checked the ledger by phone")
    html = lib_client.get(item(lib)).content.decode()
    assert 'name="decision"' not in html                         # no dropdown
    assert "Reject…" in html and f'formaction="{decide_url(lib, "reject")}"' in html
    assert "Approve and next" not in html                        # approved: only reject is left
    assert "Required to reject or waive" not in html              # no editing help on read-only fields
    assert re.search(r'<textarea name="notes"[^>]*>\s*</textarea>', html)   # not pre-filled …
    assert "Checked the ledger by phone" in html and "Internal note" in html  # … but in the history table


def test_approve_button_posts_what_the_clerk_saw_and_stays_on_the_item(lib_client, lib_reviewer, clearance, approval):
    lib = approval(clearance, "LIB")
    page = lib_client.get(item(lib)).content.decode()
    assert "Approve and next" in page and "Waive…" in page and "Re-open" not in page
    seen = re.search(r'name="seen" value="([^"]+)"', page).group(1)
    response = lib_client.post(decide_url(lib, "approve"), {"seen": seen, "notes": "Books back", "_stay": "1"})
    assert response.status_code == 302 and response["Location"] == item(lib)
    lib = fresh(lib)
    assert (lib.status, lib.decided_by, lib.notes) == (A.APPROVED, lib_reviewer, "Books back")
    assert "LIB for " in messages_of(response)[0] and "approved" in messages_of(response)[0]


def test_approve_and_next_walks_the_filtered_list_then_back_to_it(lib_client, three):
    amina, brian, chao = three
    filters = "q=Otieno&queue=waiting"           # Brian Kamau is not in this list
    response = lib_client.post(decide_url(amina, "approve", filters), {"seen": amina.state_token, "_next": "1"})
    assert response.status_code == 302
    landed = urlsplit(response["Location"])
    assert landed.path == item(chao)
    assert parse_qs(landed.query) == {"_changelist_filters": [filters]}
    assert fresh(amina).status == A.APPROVED

    # the page it lands on keeps carrying the list: its buttons post with the same filters
    page = lib_client.get(response["Location"]).content.decode()
    assert f'formaction="{decide_url(chao, "approve", filters)}"'.replace("&", "&amp;") in page

    last = lib_client.post(decide_url(chao, "approve", filters), {"seen": chao.state_token, "_next": "1"})
    assert last["Location"] == f"{QUEUE}?{filters}"
    assert "That was the last item of this list." in messages_of(last)
    assert fresh(brian).status == A.PENDING


def test_next_follows_the_lists_own_sort_order(lib_client, three):
    amina, brian, chao = three
    filters = "o=-5"                             # "Days waiting" column, descending: the newest first
    assert listed(lib_client, "?" + filters) == [chao.pk, brian.pk, amina.pk]
    response = lib_client.get(reverse("staff:core_clearanceapproval_next", args=[chao.pk])
                              + "?" + urlencode({"_changelist_filters": filters}))
    assert urlsplit(response["Location"]).path == item(brian)
    assert fresh(chao).status == A.PENDING       # "next without deciding" decides nothing


def test_next_never_lands_on_the_item_just_decided(lib_client, three):
    filters = "queue=all&o=4"                    # by status: a rejected item sorts after the pending ones
    order = listed(lib_client, "?" + filters)
    last = fresh(next(a for a in three if a.pk == order[-1]))
    response = lib_client.post(decide_url(last, "reject", filters), {"reason": "Two books out",
                                                                     "seen": last.state_token, "_next": "1"})
    assert fresh(last).status == A.REJECTED
    assert response["Location"] == f"{QUEUE}?{filters}"     # the end of the list, not the same item again


def test_reject_asks_the_reason_and_offers_the_offices_recent_reasons(lib_client, lib_reviewer, make_reviewer, three,
                                                                      approval):
    amina, brian, chao = three
    approval_reject(approval=amina, acting_user=lib_reviewer, reason="Fine unpaid")
    approval_reject(approval=brian, acting_user=lib_reviewer, reason="Two books out")
    approval_reject(approval=approval(brian.request, "SPT"), acting_user=make_reviewer("SPT"), reason="Jersey missing")
    # the item page's "Reject…" carries the note typed there to the reason page
    page = lib_client.post(decide_url(chao, "reject"), {"_ask": "1", "notes": "Phoned her", "seen": chao.state_token})
    html = page.content.decode()
    assert page.status_code == 200 and 'name="reason"' in html and "Phoned her" in html
    assert 'data-reason="Two books out"' in html and 'data-reason="Fine unpaid"' in html
    assert "Jersey missing" not in html                                          # this office's only
    assert "Write the reason" not in html and fresh(chao).status == A.PENDING

    empty = lib_client.post(decide_url(chao, "reject"), {"reason": "  ", "seen": chao.state_token, "_stay": "1"})
    assert empty.status_code == 200 and "Write the reason; the student reads it." in empty.content.decode()
    assert fresh(chao).status == A.PENDING

    done = lib_client.post(decide_url(chao, "reject"), {"reason": "Two books out", "notes": "Phoned her",
                                                        "seen": chao.state_token, "_stay": "1"})
    assert done.status_code == 302
    chao = fresh(chao)
    assert (chao.status, chao.reason, chao.notes) == (A.REJECTED, "Two books out", "Phoned her")


def test_waive_then_reopen_with_the_buttons(lib_client, clearance, approval):
    lib = approval(clearance, "LIB")
    assert lib_client.get(decide_url(lib, "waive")).status_code == 200
    response = lib_client.post(decide_url(lib, "waive"), {"reason": "Staff child", "seen": lib.state_token,
                                                          "_stay": "1"})
    assert response.status_code == 302 and (fresh(lib).status, fresh(lib).reason) == (A.WAIVED, "Staff child")
    assert "Nothing to decide" in lib_client.get(item(lib)).content.decode()

    ClearanceApproval.objects.filter(pk=lib.pk).update(status=A.REJECTED)
    page = lib_client.get(item(lib)).content.decode()
    assert "Re-open and next" in page
    response = lib_client.post(decide_url(lib, "reopen"), {"notes": "Paid at the desk", "seen": fresh(lib).state_token,
                                                           "_stay": "1"})
    assert response.status_code == 302 and fresh(lib).status == A.PENDING


def test_a_refusal_shows_on_the_page_and_changes_nothing(lib_client, clearance, approval, offices):
    lib = approval(clearance, "LIB")
    factories.HoldFactory(department=offices["LIB"], student=clearance.student, reason="Laptop on loan",
                          amount=Decimal("2500"))
    response = lib_client.post(decide_url(lib, "approve"), {"seen": lib.state_token, "_next": "1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "LIB holds an active hold on the student: Laptop on loan (KES 2,500.00)" in html
    assert fresh(lib).status == A.PENDING


def test_another_offices_item_by_decision_url_is_refused(lib_client, clearance, approval):
    spt = approval(clearance, "SPT")
    for decision in ("approve", "reject", "waive", "reopen"):
        assert lib_client.get(decide_url(spt, decision)).status_code == 403
        response = lib_client.post(decide_url(spt, decision), {"reason": "x", "seen": spt.state_token, "_stay": "1"})
        assert response.status_code == 403
        assert "belongs to an office you do not review" in response.content.decode()
    assert lib_client.get(reverse("staff:core_clearanceapproval_next", args=[spt.pk])).status_code == 403
    spt = fresh(spt)
    assert (spt.status, spt.decided_by) == (A.PENDING, None)


def test_a_stale_decision_is_refused_naming_who_changed_it_and_when(lib_client, make_reviewer, clearance, approval):
    lib = approval(clearance, "LIB")
    page = lib_client.get(item(lib)).content.decode()
    seen = re.search(r'name="seen" value="([^"]+)"', page).group(1)
    colleague = make_reviewer("LIB", email="lib2@clearance.test")
    approval_approve(approval=lib, acting_user=colleague)
    response = lib_client.post(decide_url(lib, "reject"), {"reason": "Two books out", "seen": seen, "_stay": "1"})
    html = response.content.decode()
    assert response.status_code == 200
    when = timezone.localtime(fresh(lib).decided_at).strftime("%H:%M")
    assert f"changed since you opened it: approved by lib2@clearance.test at {when}" in html
    assert "Open the item as it is now" in html
    assert (fresh(lib).status, fresh(lib).decided_by) == (A.APPROVED, colleague)


def test_junk_on_the_decision_urls_is_refused_without_a_5xx(lib_client, clearance, approval):
    lib = approval(clearance, "LIB")
    assert lib_client.post(item(lib), {"decision": "explode"}).status_code == 302
    assert lib_client.get(decide_url(lib, "approve", "status__exact=%00&o=abc")).status_code == 200
    bad = lib_client.post(decide_url(lib, "approve", "o=zz&queue=x&department=%F0"),
                          {"seen": "junk", "_next": "1"})
    assert bad.status_code == 200 and "changed since you opened it" in bad.content.decode()
    assert lib_client.get(reverse("staff:core_clearanceapproval_approve_item", args=["999999"])).status_code == 302
    assert fresh(lib).status == A.PENDING


# --- the queue ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_the_queue_opens_on_what_waits(client, make_reviewer, open_request, approval, lib_reviewer):
    reviewer = make_reviewer("LIB", "REG")
    client.force_login(reviewer)
    first = open_request(factories.StudentFactory())
    second = open_request(factories.StudentFactory())
    waiting = approval(first, "LIB")
    stage_closed = approval(first, "REG")          # stage 2, while LIB (stage 1) is pending
    rejected = approval(second, "LIB")
    approval_reject(approval=rejected, acting_user=reviewer, reason="Fine")
    reg_of_second = approval(second, "REG")        # stage 2, LIB rejected: not open either

    assert set(listed(client)) == {waiting.pk}
    assert set(listed(client, "?queue=all")) == {waiting.pk, stage_closed.pk, rejected.pk, reg_of_second.pk}
    assert set(listed(client, "?status__exact=rejected")) == {rejected.pk}    # a chosen status steps aside
    assert set(listed(client, "?status__exact=pending")) == {waiting.pk, stage_closed.pk, reg_of_second.pk}
    assert set(listed(client, "?queue=junk")) == {waiting.pk}
    # looking a student up finds their items whatever waits; "waiting" chosen with it still narrows
    number = second.student.registration_number
    assert set(listed(client, f"?q={number}")) == {rejected.pk, reg_of_second.pk}
    assert set(listed(client, f"?q={number}&queue=waiting")) == set()
    assert set(listed(client, "?q=+")) == {waiting.pk}


def test_active_filters_are_chips_each_removing_only_itself(lib_client, three, offices):
    response = lib_client.get(QUEUE)
    assert [(c["title"], c["label"], c["url"]) for c in response.context["filter_chips"]] == [
        ("Queue", "Waiting (stage open)", "?queue=all")]
    assert 'data-testid="filter-chips"' in response.content.decode()

    lib = offices["LIB"].pk
    response = lib_client.get(QUEUE + f"?queue=all&department={lib}&status__exact=pending&q=Otieno")
    chips = {c["title"]: (c["label"], parse_qs(c["url"].lstrip("?"))) for c in response.context["filter_chips"]}
    assert chips["Queue"] == ("Everything", {"department": [str(lib)], "status__exact": ["pending"], "q": ["Otieno"]})
    assert chips["Department"] == ("LIB — Library", {"queue": ["all"], "status__exact": ["pending"], "q": ["Otieno"]})
    assert chips["Status"] == ("Pending", {"queue": ["all"], "department": [str(lib)], "q": ["Otieno"]})
    assert chips["Search"] == ("Otieno", {"queue": ["all"], "department": [str(lib)], "status__exact": ["pending"]})


def test_an_export_of_the_default_queue_is_the_waiting_list_and_says_so(lib_client, three, open_request,
                                                                        lib_reviewer, approval):
    from clearance_admin.sites import staff_site
    from core.models import ExportLog
    approval_reject(approval=approval(open_request(factories.StudentFactory()), "LIB"), acting_user=lib_reviewer,
                    reason="Fine")                                   # not waiting: not in the default list
    response = lib_client.post(reverse("staff:core_clearanceapproval_export"), {"format": "1"})   # csv
    assert response.status_code == 200 and ExportLog.objects.get().rows == 3
    admin_ = staff_site._registry[ClearanceApproval]
    request = lib_client.get(QUEUE).wsgi_request
    assert "queue: Waiting (stage open)" in admin_.export_title(request, admin_.export_resource(), None)


def test_a_resubmitted_item_keeps_its_waiting_time_and_shows_the_response(lib_client, lib_reviewer, student,
                                                                          open_request, approval, three):
    mine = approval(open_request(student), "LIB")
    ClearanceApproval.objects.filter(pk=mine.pk).update(waiting_since=timezone.now() - datetime.timedelta(days=8))
    approval_reject(approval=fresh(mine), acting_user=lib_reviewer, reason="Book overdue")
    approval_resubmit(approval=fresh(mine), acting_user=student.user, response="Returned it on Monday, slip attached")
    response = lib_client.get(QUEUE)
    order = [a.pk for a in response.context["cl"].result_list]
    assert order == [three[0].pk, mine.pk, three[1].pk, three[2].pk]   # 9, 8, 6, 3 days: not at the bottom
    html = response.content.decode()
    row = html[html.index(f'data-resubmitted="{mine.pk}"') - 2000:]
    assert "re-submitted" in row and "Returned it on Monday" in row
    assert "8 d" in html
    page = lib_client.get(item(mine)).content.decode()
    assert "re-submitted" in page and "Returned it on Monday, slip attached" in page and "8 d" in page


def test_bulk_approve_asks_for_confirmation_naming_the_students(lib_client, three):
    ids = [a.pk for a in three]
    data = {"action": "approve_selected", "_selected_action": ids, "index": "0", "select_across": "0",
            "seen": [f"{a.pk}:{a.state_token}" for a in three]}
    page = lib_client.post(QUEUE + "?queue=waiting", data)
    html = page.content.decode()
    assert page.status_code == 200
    assert "3 selected." in html and "Approve 3" in html
    for name in ("Amina Otieno", "Brian Kamau", "Chao Otieno"):
        assert name in html
    assert set(ClearanceApproval.objects.filter(pk__in=ids).values_list("status", flat=True)) == {A.PENDING}

    done = lib_client.post(QUEUE + "?queue=waiting", {**data, "confirm": "yes"}, follow=True)
    assert "Approved 3 clearance items." in messages_of(done) or "Approved 3 clearance items." in done.content.decode()
    assert set(ClearanceApproval.objects.filter(pk__in=ids).values_list("status", flat=True)) == {A.APPROVED}


def test_bulk_reject_confirmation_names_the_students(lib_client, three):
    ids = [a.pk for a in three[:2]]
    page = lib_client.post(QUEUE, {"action": "reject_selected", "_selected_action": ids, "index": "0"})
    html = page.content.decode()
    assert "2 selected." in html and "Amina Otieno" in html and "Brian Kamau" in html and "Chao" not in html


# --- holds -------------------------------------------------------------------------------------------------

def hold_url(hold, what="change"):
    return reverse(f"staff:core_hold_{what}" if what == "change" else f"staff:core_hold_{what}_hold", args=[hold.pk])


def test_hold_page_offers_release_and_waive_and_shows_the_amount_in_kes(lib_client, offices, student):
    hold = factories.HoldFactory(department=offices["LIB"], student=student, reason="Book not returned",
                                 amount=Decimal("2500"))
    html = lib_client.get(hold_url(hold)).content.decode()
    assert hold_url(hold, "release") in html and hold_url(hold, "waive") in html
    assert "KES 2,500.00" in html and "2500.00" not in html
    Hold.objects.filter(pk=hold.pk).update(status=Hold.Status.RELEASED)
    html = lib_client.get(hold_url(hold)).content.decode()
    assert hold_url(hold, "release") not in html


def test_hold_release_asks_the_reason_and_keeps_it(lib_client, lib_reviewer, offices, student):
    hold = factories.HoldFactory(department=offices["LIB"], student=student, reason="Book not returned")
    page = lib_client.get(hold_url(hold, "release"))
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    response = lib_client.post(hold_url(hold, "release"), {"reason": "Book returned 3 Dec"})
    assert response.status_code == 302 and response["Location"] == hold_url(hold)
    hold = fresh(hold)
    assert (hold.status, hold.release_reason, hold.released_by) == (Hold.Status.RELEASED, "Book returned 3 Dec",
                                                                    lib_reviewer)


def test_hold_waive_needs_a_reason(lib_client, offices, student):
    hold = factories.HoldFactory(department=offices["LIB"], student=student, reason="Book not returned")
    empty = lib_client.post(hold_url(hold, "waive"), {"reason": " "})
    assert empty.status_code == 200 and "Write the reason for waiving the hold." in empty.content.decode()
    assert fresh(hold).status == Hold.Status.ACTIVE
    assert lib_client.post(hold_url(hold, "waive"), {"reason": "Lost in the flood"}).status_code == 302
    assert (fresh(hold).status, fresh(hold).release_reason) == (Hold.Status.WAIVED, "Lost in the flood")


def test_another_offices_hold_cannot_be_released_by_url(lib_client, offices, student):
    theirs = factories.HoldFactory(department=offices["SPT"], student=student, reason="Jersey missing")
    for what in ("release", "waive"):
        assert lib_client.get(hold_url(theirs, what)).status_code == 403
        assert lib_client.post(hold_url(theirs, what), {"reason": "mine now"}).status_code == 403
    assert fresh(theirs).status == Hold.Status.ACTIVE


def test_a_released_hold_cannot_be_released_again(lib_client, offices, student):
    hold = factories.HoldFactory(department=offices["LIB"], student=student, reason="Book not returned",
                                 status=Hold.Status.RELEASED)
    response = lib_client.post(hold_url(hold, "release"), {"reason": "again"})
    assert response.status_code == 200 and "already" in response.content.decode().lower()
    assert fresh(hold).release_reason == ""


# --- the migration that gives back the first waiting time ---------------------------------------------------

def test_the_backfill_restores_the_first_waiting_time_from_history(clearance, approval):
    import importlib

    from django.apps import apps
    migration = importlib.import_module("core.migrations.0021_waiting_since_kept")
    lib, spt = approval(clearance, "LIB"), approval(clearance, "SPT")
    first = lib.waiting_since
    later = first + datetime.timedelta(days=4)
    lib.waiting_since = later
    lib.save()                                    # a history row with the later time, as a re-submission left
    migration.restore_first_waiting_since(apps, None)
    assert fresh(lib).waiting_since == first
    assert fresh(spt).waiting_since == spt.waiting_since
