"""/staff/'s gown store, through the HTTP client as its clerk would use it — the scan box, issue,
return (one and in bulk), refund, the lists — and as another office's clerk, who is refused
everything (403) and changes nothing."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.models import GownIssuance
from core.services.gowns import gown_deposit_refund, gown_return
from tests import factories
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

D = GownIssuance.DepositStatus
GOWNS = reverse("staff:core_gownissuance_changelist")
SCAN = reverse("staff:core_gownissuance_scan")


def issue_url(student):
    return reverse("staff:core_gownissuance_issue", args=[student.pk])


def return_url(gown):
    return reverse("staff:core_gownissuance_return_one", args=[gown.pk])


def refund_url(gown):
    return reverse("staff:core_gownissuance_refund_one", args=[gown.pk])


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def act(client, action, ids, **extra):
    return client.post(GOWNS, {"action": action, "_selected_action": [str(i) for i in ids], "index": "0",
                               "select_across": "0", **extra}, follow=True)


def stored(gown) -> GownIssuance:
    return GownIssuance.objects.get(pk=gown.pk)


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def clerk(make_reviewer):
    return make_reviewer("GOWN", email="gown@clearance.test", full_name="Gown Clerk")


@pytest.fixture
def gown_client(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def cleared(student, clearance, complete_request):
    complete_request(clearance)
    return student


@pytest.fixture
def out(clerk):
    """A gown out with some student (made directly: the issue rules are the services' tests)."""
    return factories.GownIssuanceFactory(gown_code="G-0042", issued_by=clerk)


# --- the scan box ----------------------------------------------------------------------------------

def test_a_registration_number_opens_the_issue_form(gown_client, cleared):
    scanned = " " + cleared.registration_number.lower() + " "
    response = gown_client.get(SCAN, {"code": scanned})
    assert response.status_code == 302 and response["Location"] == issue_url(cleared)


def test_a_gown_code_that_is_out_opens_its_return(gown_client, out):
    response = gown_client.get(SCAN, {"code": "g-0042"})
    assert response.status_code == 302 and response["Location"] == return_url(out)


@pytest.mark.parametrize("case", ["not_completed", "already_out", "unknown", "nothing", "returned"])
def test_the_scan_box_says_why_not(gown_client, student, clearance, out, case):
    code, expected = {
        "not_completed": (student.registration_number,
                          f"{student.registration_number} is not cleared yet: the clearance is in progress"),
        "already_out": (out.student.registration_number,
                        f"{out.student.registration_number} already has gown G-0042 out"),
        "unknown": ("SCE/CS/9999/2022", "No student has the registration number SCE/CS/9999/2022."),
        "nothing": ("ZZ-1", "Nothing matches ZZ-1"),
        "returned": ("G-0042", "Gown G-0042 is not out: it was returned on "),
    }[case]
    if case == "returned":
        gown_return(gown=out, acting_user=out.issued_by)
    response = gown_client.get(SCAN, {"code": code})
    assert response.status_code == 200
    assert expected in response.context["refusal"]
    if case == "already_out":                   # and offers the way on
        assert return_url(out) in text(response)
    if case == "returned":
        assert refund_url(out) in text(response)
    assert GownIssuance.objects.count() == 1


@pytest.mark.parametrize("junk", ["", "   ", "x" * 300, "\x00", "' OR 1=1 --", "²", "SCE/CS/%/2022", "<b>G</b>"])
def test_junk_in_the_scan_box_is_a_refusal_not_an_error(gown_client, junk):
    response = gown_client.get(SCAN, {"code": junk})
    assert response.status_code == 200
    assert "<b>G</b>" not in text(response)      # escaped, as everything the clerk typed


# --- issue -----------------------------------------------------------------------------------------

def test_the_issue_form_offers_a_return_date_and_the_deposit(gown_client, cleared, settings):
    settings.GOWN_RETURN_DAYS = 10
    form = gown_client.get(issue_url(cleared)).context["form"]
    assert form.initial == {"deposit": Decimal("2000"),
                            "expected_return_on": timezone.localdate() + datetime.timedelta(days=10)}


def test_issue_a_gown_from_the_form(gown_client, cleared, clerk):
    due = timezone.localdate() + datetime.timedelta(days=5)
    response = gown_client.post(issue_url(cleared), {"gown_code": " g-7 ", "size": "L", "deposit": "2500",
                                                     "expected_return_on": due.strftime("%d/%m/%Y")}, follow=True)
    assert response.redirect_chain[-1][0] == SCAN
    gown = GownIssuance.objects.get()
    assert (gown.student, gown.gown_code, gown.size, gown.deposit, gown.expected_return_on, gown.issued_by) == (
        cleared, "G-7", "L", Decimal("2500"), due, clerk)
    assert gown.history.get().history_user == clerk
    assert any(m.startswith(f"Gown G-7 (Large) issued to {cleared.registration_number}") for m in messages_of(response))


def _issue_post(client, student, code="G-0042"):
    return client.post(issue_url(student), {"gown_code": code, "size": "M", "deposit": "2000",
                                            "expected_return_on": timezone.localdate().strftime("%d/%m/%Y")})


def test_issue_of_a_code_that_is_out_is_refused_on_the_form(gown_client, cleared, out):
    response = _issue_post(gown_client, cleared)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        f"Gown G-0042 is out with another student ({out.student.registration_number}); it must be returned before "
        "it is issued again."]
    assert not GownIssuance.objects.filter(student=cleared).exists()


def test_issue_to_a_student_not_cleared_is_refused(gown_client, student, clearance):
    page = gown_client.get(issue_url(student))
    assert page.status_code == 200 and "is not cleared yet" in page.context["refusal"] and page.context["form"] is None
    response = _issue_post(gown_client, student, code="G-1")     # posted anyway: the service refuses
    assert "is not cleared yet" in response.context["form"].non_field_errors()[0]
    assert not GownIssuance.objects.exists()


def test_issue_to_a_student_with_a_gown_out_is_refused(gown_client, out):
    page = gown_client.get(issue_url(out.student))
    assert "already has gown G-0042 out" in page.context["refusal"]


# --- return and refund -----------------------------------------------------------------------------

def test_take_a_gown_back_with_damage_then_refund_part(gown_client, out, clerk):
    response = gown_client.post(return_url(out), {"damage_notes": "Torn sleeve"})
    assert response.status_code == 302 and response["Location"] == refund_url(out)
    assert (stored(out).returned_at is not None, stored(out).damage_notes) == (True, "Torn sleeve")
    page = gown_client.get(refund_url(out))
    assert "retained_reason" in page.context["form"].fields
    response = gown_client.post(refund_url(out), {"amount": "2500"})
    assert response.context["form"].non_field_errors() == [
        "The refund must be between KES 0 and the deposit, KES 2,000.00."]
    response = gown_client.post(refund_url(out), {"amount": "1500", "retained_reason": ""})
    assert response.context["form"].non_field_errors() == ["Say why KES 500.00 of the deposit is kept."]
    assert stored(out).deposit_status == D.HELD
    response = gown_client.post(refund_url(out), {"amount": "1500", "retained_reason": "Sleeve repair"}, follow=True)
    assert "Deposit of gown G-0042: KES 1,500.00 refunded to " in messages_of(response)[-1]
    gown = stored(out)
    assert (gown.deposit_status, gown.refunded_amount, gown.retained_reason, gown.deposit_settled_by) == (
        D.PART_REFUNDED, Decimal("1500"), "Sleeve repair", clerk)
    assert [h.history_user for h in gown.history.all()[:2]] == [clerk, clerk]


def test_an_undamaged_gown_is_refunded_in_full(gown_client, out):
    gown_client.post(return_url(out), {"damage_notes": ""})
    page = gown_client.get(refund_url(out))
    assert "retained_reason" not in page.context["form"].fields
    response = gown_client.post(refund_url(out), {"amount": "1000"})
    assert response.context["form"].non_field_errors() == [
        "Only a damaged gown's deposit is refunded in part; record the damage on return."]
    gown_client.post(refund_url(out), {"amount": "2000"})
    assert (stored(out).deposit_status, stored(out).refunded_amount) == (D.REFUNDED, Decimal("2000"))


def test_refund_before_return_is_refused(gown_client, out):
    page = gown_client.get(refund_url(out))
    assert page.context["refusal"] == "The gown is still out: the deposit is refunded only after it is returned."
    response = gown_client.post(refund_url(out), {"amount": "2000"})
    assert "the deposit is refunded only after the gown is returned" in response.context["form"].non_field_errors()[0]
    assert stored(out).deposit_status == D.HELD


def test_return_twice_and_refund_twice_are_refused(gown_client, out, clerk):
    gown_client.post(return_url(out), {})
    page = gown_client.get(return_url(out))
    assert page.context["refusal"].startswith("Gown G-0042 is not out: it was returned on ")
    response = gown_client.post(return_url(out), {})
    assert "is not out: it was already returned on" in response.context["form"].non_field_errors()[0]
    gown_deposit_refund(gown=out, acting_user=clerk)
    assert gown_client.get(refund_url(out)).context["refusal"] == "This deposit was already settled (refunded)."
    response = gown_client.post(refund_url(out), {"amount": "2000"})
    assert "already settled (refunded)" in response.context["form"].non_field_errors()[0]
    assert stored(out).history.filter(history_change_reason="Deposit refunded").count() == 1


# --- bulk, from the list ---------------------------------------------------------------------------

def test_bulk_return_lists_each_refusal(gown_client, clerk):
    back, first, second = (factories.GownIssuanceFactory(gown_code=f"B-{i}") for i in range(3))
    gown_return(gown=back, acting_user=clerk)
    confirm = act(gown_client, "return_selected", [back.pk, first.pk, second.pk])
    assert confirm.status_code == 200 and "Take back the selected gowns" in text(confirm)
    assert GownIssuance.objects.filter(returned_at__isnull=True).count() == 2      # nothing done yet
    response = act(gown_client, "return_selected", [back.pk, first.pk, second.pk, 99999], confirm="yes",
                   damage_notes="")
    said = messages_of(response)
    assert "Took back 2 gowns." in said
    refusals = [m for m in said if m.startswith("Refused 2:")][0]
    assert f"B-0 ({back.student.registration_number}): Gown B-0 is not out: it was already returned on" in refusals
    assert "#99999: no such gown" in refusals
    assert GownIssuance.objects.filter(returned_at__isnull=True).count() == 0


def test_bulk_refund_lists_each_refusal(gown_client, clerk):
    still_out, damaged, fine = (factories.GownIssuanceFactory(gown_code=f"R-{i}") for i in range(3))
    gown_return(gown=damaged, acting_user=clerk, damage_notes="Burnt")
    gown_return(gown=fine, acting_user=clerk)
    ids = [still_out.pk, damaged.pk, fine.pk]
    assert "Refund the selected deposits in full" in text(act(gown_client, "refund_selected", ids))
    response = act(gown_client, "refund_selected", ids, confirm="yes")
    said = messages_of(response)
    assert "Refunded the deposit of 1 gown." in said
    refusals = [m for m in said if m.startswith("Refused 2:")][0]
    assert "R-0 (" in refusals and "is still out: the deposit is refunded only after the gown is returned" in refusals
    assert "R-1 (" in refusals and "came back damaged (Burnt)" in refusals
    assert dict(GownIssuance.objects.values_list("gown_code", "deposit_status")) == {
        "R-0": D.HELD, "R-1": D.HELD, "R-2": D.REFUNDED}


# --- lists -----------------------------------------------------------------------------------------

@pytest.fixture
def store(clerk):
    today = timezone.localdate()
    late = factories.GownIssuanceFactory(gown_code="LATE", student=factories.student_with_reg(
        "SCE/CS/0101/2022", first_name="Achieng", last_name="Otieno"))
    GownIssuance.objects.filter(pk=late.pk).update(expected_return_on=today - datetime.timedelta(days=2))
    due = factories.GownIssuanceFactory(gown_code="DUE")
    back_held = factories.GownIssuanceFactory(gown_code="BACK")
    gown_return(gown=back_held, acting_user=clerk)
    settled = factories.GownIssuanceFactory(gown_code="DONE")
    gown_return(gown=settled, acting_user=clerk)
    gown_deposit_refund(gown=settled, acting_user=clerk)
    return {"late": late, "due": due, "back_held": back_held, "settled": settled}


@pytest.mark.parametrize("query, expected", [
    ({"view": "out"}, {"LATE", "DUE"}),
    ({"view": "overdue"}, {"LATE"}),
    ({"view": "held"}, {"LATE", "DUE", "BACK"}),
    ({"view": "returned"}, {"BACK", "DONE"}),
    ({}, {"LATE", "DUE", "BACK", "DONE"}),
    ({"deposit_status__exact": "refunded"}, {"DONE"}),
    ({"q": "sce/cs/0101"}, {"LATE"}),
    ({"q": "achieng"}, {"LATE"}),
    ({"q": "back"}, {"BACK"}),
])
def test_lists_filters_and_search(gown_client, store, query, expected):
    response = gown_client.get(GOWNS, query)
    assert response.status_code == 200
    assert {g.gown_code for g in rows(response)} == expected


def test_the_overdue_list_says_by_how_much(gown_client, store):
    html = text(gown_client.get(GOWNS, {"view": "overdue"}))
    assert "2 days overdue" in html and "Overdue returns" in html


def test_the_list_reads_no_query_per_row(gown_client, clerk, django_assert_max_num_queries):
    factories.GownIssuanceFactory(issued_by=clerk)
    with CaptureQueriesContext(connection) as one_row:
        response = gown_client.get(GOWNS)
    assert len(rows(response)) == 1
    for _ in range(79):
        factories.GownIssuanceFactory(issued_by=factories.UserFactory())
    with django_assert_max_num_queries(len(one_row)):
        response = gown_client.get(GOWNS, {"all": ""})
    assert len(rows(response)) == 80


# --- the sidebar and the dashboard ------------------------------------------------------------------

def test_the_gown_clerk_has_the_store_in_the_sidebar_and_a_card_on_the_dashboard(gown_client, store):
    response = gown_client.get(reverse("staff:index"))
    html = text(response)
    assert f'href="{SCAN}"' in html and f'href="{GOWNS}?view=overdue"' in html and f'href="{GOWNS}?view=held"' in html
    assert response.context["gown_store"]["figures"] == {
        "out": 2, "overdue": 1, "held": 3, "held_amount": Decimal("6000"), "back_held": 1}
    assert 'data-kpi="gowns-overdue"' in html


def test_another_offices_clerk_sees_no_gown_store(client, lib_reviewer, store):
    client.force_login(lib_reviewer)
    response = client.get(reverse("staff:index"))
    assert response.status_code == 200
    assert "gown_store" not in response.context and SCAN not in text(response) and GOWNS not in text(response)


def test_a_delegation_of_the_gown_office_opens_the_store(client, lib_reviewer, clerk, offices, store):
    factories.DelegationFactory(department=offices["GOWN"], from_user=clerk, to_user=lib_reviewer)
    client.force_login(lib_reviewer)
    assert client.get(GOWNS).status_code == 200
    assert SCAN in text(client.get(reverse("staff:index")))


# --- another office's clerk: 403 everywhere, nothing done ------------------------------------------

def _snapshot():
    return list(GownIssuance.objects.order_by("pk").values_list("pk", "returned_at", "deposit_status",
                                                                 "refunded_amount"))


def test_another_offices_clerk_is_refused_every_gown_url_and_action(client, lib_reviewer, store, cleared):
    client.force_login(lib_reviewer)
    late, back = store["late"], store["back_held"]
    before = _snapshot()
    gets = [GOWNS, f"{GOWNS}?view=out", f"{GOWNS}?view=overdue", f"{GOWNS}?view=held", SCAN,
            f"{SCAN}?code={cleared.registration_number}", f"{SCAN}?code=LATE", issue_url(cleared), return_url(late),
            refund_url(back), reverse("staff:core_gownissuance_change", args=[late.pk]),
            reverse("staff:core_gownissuance_history", args=[late.pk]), reverse("staff:core_gownissuance_export")]
    for url in gets:
        assert client.get(url).status_code == 403, url
    posts = [
        (issue_url(cleared), {"gown_code": "G-9", "size": "M", "deposit": "2000",
                              "expected_return_on": timezone.localdate().strftime("%d/%m/%Y")}),
        (return_url(late), {"damage_notes": ""}),
        (refund_url(back), {"amount": "2000"}),
        *[(GOWNS, {"action": action, "_selected_action": [str(late.pk), str(back.pk)], "index": "0",
                   "confirm": "yes"}) for action in ("return_selected", "refund_selected", "export_admin_action")],
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert _snapshot() == before
    assert not GownIssuance.objects.filter(student=cleared).exists()


# --- junk -----------------------------------------------------------------------------------------

JUNK = ["²", "99999999999999999999", "abc", "-1", "1.5", "' OR 1=1 --", "", "\x00"]


def test_junk_never_answers_5xx(gown_client, store, cleared):
    client = gown_client
    client.raise_request_exception = False
    late, back = store["late"], store["back_held"]
    failures = []

    def check(response, what):
        if response.status_code >= 500:
            failures.append(f"{what}: {response.status_code}")

    for param in ("view", "deposit_status__exact", "size__exact", "q", "o", "p"):
        for junk in JUNK:
            check(client.get(GOWNS, {param: junk}), f"GET list {param}={junk!r}")
    for junk in JUNK:
        for action in ("return_selected", "refund_selected"):
            check(client.post(GOWNS, {"action": action, "_selected_action": [junk], "index": "0"}), f"{action} {junk!r}")
            check(client.post(GOWNS, {"action": action, "_selected_action": [junk], "confirm": "yes"}),
                  f"{action} confirm {junk!r}")
        if junk in ("abc", "99999999999999999999", "²", "-1"):
            for url in (f"{GOWNS}{junk}/return/", f"{GOWNS}{junk}/refund/", f"{GOWNS}{junk}/change/",
                        f"{GOWNS}issue/{junk}/"):
                check(client.get(url), f"GET {url!r}")
        check(client.post(issue_url(cleared), {"gown_code": junk, "size": junk, "deposit": junk,
                                                "expected_return_on": junk}), f"issue {junk!r}")
        check(client.post(refund_url(back), {"amount": junk, "retained_reason": junk}), f"refund {junk!r}")
        if junk:      # too long, or a NUL: refused, so the gown stays out
            check(client.post(return_url(late), {"damage_notes": junk * 5000}), f"return {junk!r}")
    check(client.post(issue_url(cleared), {"gown_code": "G" * 500, "size": "M", "deposit": "1e40",
                                            "expected_return_on": "31/12/9999"}), "issue huge")
    check(client.get(f"{GOWNS}issue/99999999999999999999/"), "issue of a huge id")
    assert not failures, "\n".join(failures)
    assert stored(late).returned_at is None and stored(back).deposit_status == D.HELD
