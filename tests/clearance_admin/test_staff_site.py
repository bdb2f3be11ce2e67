"""/staff/: department staff decide the clearance items of their own offices, hold students and
lend their rights — through the HTTP client, as a reviewer would, refusals included."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import permissions
from core.models import ClearanceApproval, Delegation, Hold
from core.services.approvals import approvals_approve
from core.services.requests import requests_open_for_cohort
from tests import factories
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

A = ClearanceApproval.Status
H = Hold.Status
QUEUE = reverse("staff:core_clearanceapproval_changelist")
HOLDS = reverse("staff:core_hold_changelist")
HOLD_ADD = reverse("staff:core_hold_add")
DELEGATIONS = reverse("staff:core_delegation_changelist")
DELEGATION_ADD = reverse("staff:core_delegation_add")

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def detail(approval) -> str:
    return reverse("staff:core_clearanceapproval_change", args=[approval.pk])


def status_of(obj) -> str:
    return type(obj).objects.values_list("status", flat=True).get(pk=obj.pk)


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def act(client, url, action, ids, **extra):
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids], "index": "0",
                             "select_across": "0", **extra}, follow=True)


@pytest.fixture
def lib_client(client, lib_reviewer):
    client.force_login(lib_reviewer)
    return client


@pytest.fixture
def two_students(open_request):
    """Two students of SCE with open requests (LIB, SPT, … pending)."""
    first = factories.StudentFactory(first_name="Amina", last_name="Otieno")
    second = factories.StudentFactory(first_name="Brian", last_name="Kamau")
    return open_request(first), open_request(second)


# --- the queue ---------------------------------------------------------------------------------------

def test_queue_lists_only_the_reviewers_own_office(lib_client, two_students):
    response = lib_client.get(QUEUE)
    assert response.status_code == 200
    listed = rows(response)
    assert len(listed) == 2
    assert {a.department.code for a in listed} == {"LIB"}
    html = response.content.decode()
    assert two_students[0].student.registration_number in html
    assert "Amina Otieno" in html
    assert ">SPT<" not in html


def test_queue_shows_the_offices_active_holds_with_amounts_and_overdue_in_red(lib_client, two_students, offices):
    first, _ = two_students
    factories.HoldFactory(department=offices["LIB"], student=first.student, reason="Book not returned",
                          amount=Decimal("1250"))
    factories.HoldFactory(department=offices["SPT"], student=first.student, reason="Jersey missing")
    ClearanceApproval.objects.filter(request=first, department__code="LIB").update(
        waiting_since=timezone.now() - datetime.timedelta(days=10))
    html = lib_client.get(QUEUE).content.decode()
    assert "Book not returned (KES 1,250.00)" in html
    assert "Jersey missing" not in html  # another office's hold is not this column's business
    assert "10 d — overdue" in html and "text-red-600" in html


def test_queue_filters(lib_client, two_students, offices, approval):
    first, second = two_students
    lib_first = approval(first, "LIB")
    lib_second = approval(second, "LIB")
    spa = factories.StudentFactory(school=factories.SchoolFactory(code="SPA"), expected_graduation_year=2027)
    other = factories.ClearanceRequestFactory(student=spa, cycle=first.cycle)
    lib_spa = factories.ClearanceApprovalFactory(request=other, department=offices["LIB"])
    ClearanceApproval.objects.filter(pk=lib_first.pk).update(waiting_since=timezone.now() - datetime.timedelta(days=8))
    ClearanceApproval.objects.filter(pk=lib_second.pk).update(
        waiting_since=timezone.now() - datetime.timedelta(days=6), status=A.REJECTED, reason="Fine unpaid",
        decided_at=timezone.now())

    def listed(query):
        response = lib_client.get(QUEUE + query)
        assert response.status_code == 200, query
        return {a.pk for a in rows(response)}

    assert listed("?queue=all") == {lib_first.pk, lib_second.pk, lib_spa.pk}
    assert listed("?status__exact=rejected") == {lib_second.pk}
    assert listed("?overdue=yes") == {lib_first.pk}
    assert listed("?queue=all&overdue=no") == {lib_second.pk, lib_spa.pk}
    assert listed(f"?school={spa.school_id}") == {lib_spa.pk}
    assert listed(f"?programme={spa.programme_id}") == {lib_spa.pk}
    assert listed("?cohort=2027") == {lib_spa.pk}
    assert listed(f"?queue=all&department={offices['LIB'].pk}") == {lib_first.pk, lib_second.pk, lib_spa.pk}
    assert listed("?queue=all&stage=1") == {lib_first.pk, lib_second.pk, lib_spa.pk}
    assert listed("?stage=2") == set()
    assert listed("?status__exact=pending&overdue=yes") == {lib_first.pk}
    assert listed("?q=" + first.student.registration_number.lower()) == {lib_first.pk}
    assert listed("?queue=all&q=Kamau") == {lib_second.pk}


def test_overdue_filter_follows_each_offices_sla(client, make_reviewer, two_students, offices, approval):
    reviewer = make_reviewer("LIB", "SPT")
    client.force_login(reviewer)
    first, _ = two_students
    offices["SPT"].sla_days = 2
    offices["SPT"].save()
    four_days_ago = timezone.now() - datetime.timedelta(days=4)
    ClearanceApproval.objects.filter(request=first, department__code__in=["LIB", "SPT"]).update(
        waiting_since=four_days_ago)
    overdue = {a.pk for a in rows(client.get(QUEUE + "?overdue=yes"))}
    assert overdue == {approval(first, "SPT").pk}  # SPT allows 2 days, LIB 7


def test_a_delegate_sees_the_delegated_office(client, make_user, make_reviewer, two_students, offices):
    spt = make_reviewer("SPT")
    colleague = make_reviewer("GOWN")
    factories.DelegationFactory(department=offices["SPT"], from_user=spt, to_user=colleague)
    client.force_login(colleague)
    assert {a.department.code for a in rows(client.get(QUEUE))} == {"SPT", "GOWN"}


# --- another office's item ---------------------------------------------------------------------------

def test_another_offices_item_by_url_is_refused_and_unchanged(lib_client, clearance, approval):
    spt = approval(clearance, "SPT")
    assert lib_client.get(detail(spt)).status_code == 403
    assert lib_client.get(reverse("staff:core_clearanceapproval_history", args=[spt.pk])).status_code == 403
    response = lib_client.post(detail(spt), {"decision": "approve", "notes": "sneaky"})
    assert response.status_code == 403
    spt.refresh_from_db()
    assert (spt.status, spt.notes, spt.decided_by) == (A.PENDING, "", None)


def test_bulk_action_with_another_offices_id_changes_nothing(lib_client, clearance, approval):
    spt = approval(clearance, "SPT")
    response = act(lib_client, QUEUE, "approve_selected", [spt.pk], confirm="yes")
    assert status_of(spt) == A.PENDING
    assert messages_of(response) == ["Refused: 1 clearance item is not in your queue; nothing was done to them."]
    response = act(lib_client, QUEUE, "reject_selected", [spt.pk], confirm="yes", reason="Because")
    assert status_of(spt) == A.PENDING
    assert any("1 clearance item is not in your queue" in m for m in messages_of(response))


# --- one decision on the detail page ------------------------------------------------------------------

def test_detail_shows_holds_of_every_office_and_history(lib_client, clearance, approval, offices):
    lib = approval(clearance, "LIB")
    factories.HoldFactory(department=offices["FIN"], student=clearance.student, reason="Fees", amount=Decimal("900"))
    html = lib_client.get(detail(lib)).content.decode()
    assert "Fees" in html and "KES 900.00" in html and "FIN" in html
    assert "Decisions so far" in html
    assert "Approve and next" in html and 'name="decision"' not in html   # buttons, not a dropdown


def test_approve_on_the_detail_page_with_a_pdf(lib_client, lib_reviewer, clearance, approval):
    lib = approval(clearance, "LIB")
    upload = SimpleUploadedFile("clearance-letter.pdf", PDF, content_type="application/pdf")
    response = lib_client.post(detail(lib), {"decision": "approve", "notes": "Books back", "evidence_file": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    lib.refresh_from_db()
    assert (lib.status, lib.decided_by, lib.notes) == (A.APPROVED, lib_reviewer, "Books back")
    assert lib.evidence.name.startswith("evidence/") and lib.evidence.name.endswith(".pdf")
    with lib.evidence.open("rb") as stored:
        assert stored.read() == PDF
    assert lib.history.filter(status=A.APPROVED, history_user=lib_reviewer).exists()


@pytest.mark.parametrize("name, content, message", [
    ("big.pdf", PDF + b"0" * (6 * 1024 * 1024), "at most 5 MB"),
    ("letter.pdf", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "is a web page"),
    ("setup.pdf", b"MZ\x90\x00" + b"\x00" * 100, "is a Windows program"),
])
def test_bad_evidence_is_refused_with_a_form_error(lib_client, clearance, approval, name, content, message):
    lib = approval(clearance, "LIB")
    upload = SimpleUploadedFile(name, content, content_type="application/pdf")
    response = lib_client.post(detail(lib), {"decision": "approve", "evidence_file": upload})
    assert response.status_code == 200
    assert message in response.content.decode()
    lib.refresh_from_db()
    assert (lib.status, lib.evidence.name) == (A.PENDING, "")


def test_reject_on_the_detail_page_needs_a_reason(lib_client, clearance, approval):
    lib = approval(clearance, "LIB")
    response = lib_client.post(detail(lib), {"decision": "reject", "reason": "  "})
    assert response.status_code == 200
    assert "Write the reason" in response.content.decode()
    assert status_of(lib) == A.PENDING
    response = lib_client.post(detail(lib), {"decision": "reject", "reason": "Two books out"})
    assert response.status_code == 302
    lib.refresh_from_db()
    assert (lib.status, lib.reason) == (A.REJECTED, "Two books out")


def test_an_overlong_reason_or_note_is_refused_on_the_detail_page(lib_client, clearance, approval):
    lib = approval(clearance, "LIB")
    page = lib_client.get(reverse("staff:core_clearanceapproval_reject_item", args=[lib.pk])).content.decode()
    assert 'maxlength="2000"' in page and 'maxlength="4000"' in page and "Up to 2,000 characters" in page
    for data in ({"decision": "reject", "reason": "x" * 2001},
                 {"decision": "approve", "notes": "n" * 4001}):
        response = lib_client.post(detail(lib), data)
        assert response.status_code == 200
        assert "Ensure this value has at most" in response.content.decode()
        assert status_of(lib) == A.PENDING


def test_service_refusal_on_the_detail_page_is_a_form_error(lib_client, clearance, approval, offices):
    lib = approval(clearance, "LIB")
    factories.HoldFactory(department=offices["LIB"], student=clearance.student, reason="Laptop on loan")
    response = lib_client.post(detail(lib), {"decision": "approve"})
    assert response.status_code == 200
    assert "LIB holds an active hold on the student: Laptop on loan" in response.content.decode()
    assert status_of(lib) == A.PENDING


def test_waive_and_reopen_on_the_detail_page(lib_client, clearance, approval):
    lib = approval(clearance, "LIB")
    assert lib_client.post(detail(lib), {"decision": "waive", "reason": "Staff child"}).status_code == 302
    lib.refresh_from_db()
    assert (lib.status, lib.reason) == (A.WAIVED, "Staff child")
    ClearanceApproval.objects.filter(pk=lib.pk).update(status=A.REJECTED)
    assert lib_client.post(detail(lib), {"decision": "reopen", "notes": "Student paid"}).status_code == 302
    assert status_of(lib) == A.PENDING


# --- bulk ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_bulk_approve_reports_done_and_each_refusal(client, make_reviewer, two_students, offices, approval):
    reviewer = make_reviewer("LIB", "REG")
    client.force_login(reviewer)
    first, second = two_students
    ok = approval(first, "LIB")
    earlier = approval(first, "REG")
    held = approval(second, "LIB")
    not_mine = approval(first, "SPT")
    factories.HoldFactory(department=offices["LIB"], student=second.student, reason="Book not returned",
                          amount=Decimal("700"))
    response = act(client, QUEUE, "approve_selected", [ok.pk, earlier.pk, held.pk, not_mine.pk], confirm="yes")
    assert response.status_code == 200
    text = " ".join(messages_of(response))
    assert "Approved 1 clearance item." in text
    assert "Refused 2" in text
    assert "an earlier stage is still open" in text
    assert "LIB holds an active hold on the student: Book not returned (KES 700.00)" in text
    assert "1 clearance item is not in your queue" in text and "(SPT)" not in text
    assert [status_of(a) for a in (ok, earlier, held, not_mine)] == [A.APPROVED, A.PENDING, A.PENDING, A.PENDING]


def test_select_all_acts_on_the_filtered_scoped_list(lib_client, two_students, approval):
    first, second = two_students
    response = lib_client.post(QUEUE + "?q=Otieno", {"action": "approve_selected", "select_across": "1", "index": "0",
                                                     "_selected_action": [str(approval(first, "LIB").pk)],
                                                     "confirm": "yes"},
                               follow=True)
    assert "Approved 1 clearance item." in messages_of(response)
    assert (status_of(approval(first, "LIB")), status_of(approval(second, "LIB"))) == (A.APPROVED, A.PENDING)
    assert status_of(approval(first, "SPT")) == A.PENDING


def test_history_page_of_own_item(lib_client, clearance, approval):
    lib = approval(clearance, "LIB")
    lib_client.post(detail(lib), {"decision": "reject", "reason": "Two books out"})
    page = lib_client.get(reverse("staff:core_clearanceapproval_history", args=[lib.pk]))
    assert page.status_code == 200 and "Two books out" in page.content.decode()


def test_bulk_reject_asks_for_a_reason(lib_client, two_students, approval):
    ids = [approval(r, "LIB").pk for r in two_students]
    page = lib_client.post(QUEUE + "?status__exact=pending",
                           {"action": "reject_selected", "_selected_action": ids, "index": "0"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="reason"' in html
    assert f'action="{QUEUE}?status__exact=pending"' in html  # back to the list as it was
    assert set(ClearanceApproval.objects.filter(pk__in=ids).values_list("status", flat=True)) == {A.PENDING}

    empty = act(lib_client, QUEUE, "reject_selected", ids, confirm="yes", reason="   ")
    assert empty.status_code == 200
    assert "Write the reason" in empty.content.decode()
    assert set(ClearanceApproval.objects.filter(pk__in=ids).values_list("status", flat=True)) == {A.PENDING}

    done = act(lib_client, QUEUE, "reject_selected", ids, confirm="yes", reason="Library card not returned")
    assert "Rejected 2 clearance items." in messages_of(done)
    assert set(ClearanceApproval.objects.filter(pk__in=ids).values_list("reason", flat=True)) == {
        "Library card not returned"}
    assert set(ClearanceApproval.objects.filter(pk__in=ids).values_list("status", flat=True)) == {A.REJECTED}


def test_bulk_reopen(lib_client, lib_reviewer, two_students, approval):
    rejected, pending = (approval(r, "LIB") for r in two_students)
    act(lib_client, QUEUE, "reject_selected", [rejected.pk], confirm="yes", reason="Fine")
    response = act(lib_client, QUEUE, "reopen_selected", [rejected.pk, pending.pk])
    text = " ".join(messages_of(response))
    assert "Re-opened 1 clearance item." in text
    assert "only a rejected item can be re-opened" in text
    assert status_of(rejected) == A.PENDING
    assert rejected.history.filter(status=A.REJECTED).exists()  # the earlier decision stays in history


# --- holds ----------------------------------------------------------------------------------------------

def test_holds_list_is_scoped(lib_client, offices, student):
    mine = factories.HoldFactory(department=offices["LIB"], student=student)
    theirs = factories.HoldFactory(department=offices["SPT"], student=student)
    assert {h.pk for h in rows(lib_client.get(HOLDS))} == {mine.pk}
    page = lib_client.get(reverse("staff:core_hold_change", args=[mine.pk]))
    assert page.status_code == 200 and "Book not returned" in page.content.decode()
    assert lib_client.post(reverse("staff:core_hold_change", args=[mine.pk]), {"reason": "edited"}).status_code == 403
    assert Hold.objects.get(pk=mine.pk).reason == "Book not returned"
    assert lib_client.get(reverse("staff:core_hold_change", args=[theirs.pk])).status_code == 403


def test_place_a_hold_on_one_student(lib_client, lib_reviewer, offices, student):
    response = lib_client.post(HOLD_ADD, {"department": offices["LIB"].pk, "student": student.pk,
                                          "reason": "Book not returned", "amount": "1500"}, follow=True)
    assert "Placed 1 hold." in messages_of(response)
    hold = Hold.objects.get(student=student)
    assert (hold.department.code, hold.amount, hold.status, hold.placed_by) == (
        "LIB", Decimal("1500"), H.ACTIVE, lib_reviewer)


def test_place_holds_by_pasted_registration_numbers(lib_client, offices):
    students = factories.StudentFactory.create_batch(3)
    pasted = "\n".join(s.registration_number.lower() + "  " for s in students)
    response = lib_client.post(HOLD_ADD, {"department": offices["LIB"].pk, "registration_numbers": pasted,
                                          "reason": "Overdue books"}, follow=True)
    assert "Placed 3 holds." in messages_of(response)
    assert Hold.objects.filter(department=offices["LIB"], reason="Overdue books").count() == 3


def test_place_hold_refusals(lib_client, offices, student):
    # another office: not a choice
    response = lib_client.post(HOLD_ADD, {"department": offices["SPT"].pk, "student": student.pk, "reason": "x"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    # an unknown registration number
    response = lib_client.post(HOLD_ADD, {"department": offices["LIB"].pk, "registration_numbers": "ZZ/ZZ/0001/2020",
                                          "reason": "x"})
    assert "Not found: ZZ/ZZ/0001/2020" in response.content.decode()
    # the service's own refusal (negative amount) is a form error
    response = lib_client.post(HOLD_ADD, {"department": offices["LIB"].pk, "student": student.pk,
                                          "reason": "Fine", "amount": "-5"})
    assert response.status_code == 200
    assert "cannot be negative" in str(response.context["adminform"].form.errors)
    assert not Hold.objects.exists()


def test_release_and_waive_holds(lib_client, lib_reviewer, offices, student):
    one, two, three = (factories.HoldFactory(department=offices["LIB"], student=student, reason=r)
                       for r in ("a", "b", "c"))
    theirs = factories.HoldFactory(department=offices["SPT"], student=student, reason="jersey")
    # asked first, as on the hold page: the clerk's own holds named and counted, the reason optional
    page = act(lib_client, HOLDS, "release_selected", [one.pk, theirs.pk])
    body = page.content.decode()
    assert page.status_code == 200 and "Release the selected holds" in body and "What settled it" in body
    assert f"{student.registration_number}" in body and "jersey" not in body
    assert (status_of(one), status_of(theirs)) == (H.ACTIVE, H.ACTIVE)
    response = act(lib_client, HOLDS, "release_selected", [one.pk, theirs.pk], confirm="yes",
                   reason="  Books returned 3 Dec ")
    text = " ".join(messages_of(response))
    assert "Released 1 hold." in text and "1 hold is not among your offices' holds" in text and "SPT" not in text
    assert (status_of(one), status_of(theirs)) == (H.RELEASED, H.ACTIVE)
    assert Hold.objects.get(pk=one.pk).release_reason == "Books returned 3 Dec"
    response = act(lib_client, HOLDS, "release_selected", [three.pk], confirm="yes", reason="")
    assert "Released 1 hold." in messages_of(response) and status_of(three) == H.RELEASED
    three = factories.HoldFactory(department=offices["LIB"], student=student, reason="c2")

    page = act(lib_client, HOLDS, "waive_selected", [two.pk, three.pk], confirm="yes", reason="")
    assert "Write the reason" in page.content.decode()
    assert (status_of(two), status_of(three)) == (H.ACTIVE, H.ACTIVE)
    response = act(lib_client, HOLDS, "waive_selected", [two.pk, three.pk], confirm="yes", reason="Lost in flood")
    assert "Waived 2 holds." in messages_of(response)
    assert set(Hold.objects.filter(pk__in=[two.pk, three.pk]).values_list("release_reason", flat=True)) == {
        "Lost in flood"}


def test_student_autocomplete_for_the_hold_form(lib_client, student):
    response = lib_client.get(reverse("staff:autocomplete"), {
        "app_label": "core", "model_name": "hold", "field_name": "student", "term": student.last_name})
    assert response.status_code == 200
    assert str(student.pk) in [r["id"] for r in response.json()["results"]]


def test_a_school_limited_clerk_looks_up_and_names_only_their_schools_students(client, offices, make_reviewer,
                                                                              open_request):
    spa = factories.SchoolFactory(code="SPA")
    mine = factories.StudentFactory(last_name="Wanjiru")
    neighbour = factories.StudentFactory(school=spa, last_name="Wanjiru")
    open_request(mine), open_request(neighbour)
    client.force_login(make_reviewer("SCH", schools=[mine.school]))
    # the hold form's search lists this school's student, not the neighbour in another school
    response = client.get(reverse("staff:autocomplete"), {
        "app_label": "core", "model_name": "hold", "field_name": "student", "term": "Wanjiru"})
    assert [r["id"] for r in response.json()["results"]] == [str(mine.pk)]
    # typed, the neighbour's number is "not found", like a number nobody has
    response = client.post(HOLD_ADD, {"department": offices["SCH"].pk, "reason": "Project report",
                                      "registration_numbers": f"{neighbour.registration_number}\nZZ/ZZ/0001/2020"})
    assert f"Not found: {neighbour.registration_number}, ZZ/ZZ/0001/2020." in response.content.decode()
    # and a forged id is not a valid choice, as an id of nothing is not
    response = client.post(HOLD_ADD, {"department": offices["SCH"].pk, "student": neighbour.pk, "reason": "x"})
    assert "Select a valid choice" in response.content.decode()
    assert not Hold.objects.exists()
    response = client.post(HOLD_ADD, {"department": offices["SCH"].pk, "reason": "Project report",
                                      "registration_numbers": mine.registration_number}, follow=True)
    assert "Placed 1 hold." in messages_of(response)


# --- delegations ----------------------------------------------------------------------------------------

def test_delegate_and_end(lib_client, lib_reviewer, make_reviewer, offices, clearance, approval):
    colleague = make_reviewer("GOWN")
    today = timezone.localdate()
    response = lib_client.post(DELEGATION_ADD, {
        "department": offices["LIB"].pk, "to_user": colleague.pk, "starts_on": today.isoformat(),
        "ends_on": (today + datetime.timedelta(days=3)).isoformat(), "reason": "Annual leave"}, follow=True)
    assert response.status_code == 200
    delegation = Delegation.objects.get(from_user=lib_reviewer)
    assert delegation.to_user == colleague
    assert permissions.can_decide(colleague, approval(clearance, "LIB"))
    assert {d.pk for d in rows(lib_client.get(DELEGATIONS))} == {delegation.pk}
    assert lib_client.get(reverse("staff:core_delegation_change", args=[delegation.pk])).status_code == 200
    others = factories.DelegationFactory(department=offices["SPT"], from_user=make_reviewer("SPT"), to_user=colleague)
    assert lib_client.get(reverse("staff:core_delegation_change", args=[others.pk])).status_code == 403

    response = act(lib_client, DELEGATIONS, "end_selected", [delegation.pk])
    assert "Ended 1 delegation." in messages_of(response)
    delegation.refresh_from_db()
    assert delegation.revoked_at is not None
    assert not permissions.can_decide(colleague, approval(clearance, "LIB"))


def test_delegation_refusals(lib_client, lib_reviewer, make_reviewer, offices):
    colleague = make_reviewer("GOWN")
    today = timezone.localdate()
    # an office one does not review is not a choice
    response = lib_client.post(DELEGATION_ADD, {"department": offices["SPT"].pk, "to_user": colleague.pk,
                                                "starts_on": today, "ends_on": today})
    assert "Select a valid choice" in response.content.decode()
    # the service's refusal (already over) is a form error
    past = today - datetime.timedelta(days=5)
    response = lib_client.post(DELEGATION_ADD, {"department": offices["LIB"].pk, "to_user": colleague.pk,
                                                "starts_on": past - datetime.timedelta(days=2), "ends_on": past})
    assert "would already be over" in response.content.decode()
    assert not Delegation.objects.exists()
    # ending someone else's delegation
    spt = make_reviewer("SPT")
    theirs = factories.DelegationFactory(department=offices["SPT"], from_user=spt, to_user=lib_reviewer)
    response = act(lib_client, DELEGATIONS, "end_selected", [theirs.pk])
    assert any("Only the reviewer who delegated" in m for m in messages_of(response))
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --- dashboard ------------------------------------------------------------------------------------------

def test_dashboard_numbers(client, make_reviewer, open_request, offices):
    reviewer = make_reviewer("LIB", "SPT")
    client.force_login(reviewer)
    requests = [open_request(factories.StudentFactory()) for _ in range(4)]
    lib = ClearanceApproval.objects.filter(department__code="LIB", request__in=requests).order_by("pk")
    spt = ClearanceApproval.objects.filter(department__code="SPT", request__in=requests).order_by("pk")
    ClearanceApproval.objects.filter(pk=lib[0].pk).update(waiting_since=timezone.now() - datetime.timedelta(days=12))
    ClearanceApproval.objects.filter(pk=spt[0].pk).update(waiting_since=timezone.now() - datetime.timedelta(days=9))
    approvals_approve(approval_ids=[lib[1].pk, spt[1].pk, spt[2].pk], acting_user=reviewer).raise_if_refused()
    # another office's overdue item does not count
    ClearanceApproval.objects.filter(department__code="GOWN").update(
        waiting_since=timezone.now() - datetime.timedelta(days=30))

    response = client.get(reverse("staff:index"))
    assert response.status_code == 200
    queue = response.context["queue"]
    assert (queue["pending"], queue["overdue"], queue["decided_this_week"]) == (5, 2, 3)
    assert queue["oldest_days"] == 12 and queue["oldest"].pk == lib[0].pk
    by_office = {r["department__code"]: (r["pending"], r["overdue"]) for r in queue["departments"]}
    assert by_office == {"LIB": (3, 1), "SPT": (2, 1)}
    html = response.content.decode()
    assert '<span data-kpi="pending">5</span>' in html
    assert "data-kpi=\"overdue\" class=\"text-red-600" in html
    assert '<span data-kpi="decided-this-week">3</span>' in html


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_the_dashboards_overdue_and_oldest_are_of_what_waits_as_the_list_it_links_to(client, make_reviewer,
                                                                                   open_request):
    reviewer = make_reviewer("REG")
    client.force_login(reviewer)
    blocked, cleared = open_request(factories.StudentFactory()), open_request(factories.StudentFactory())
    long_ago = timezone.now() - datetime.timedelta(days=40)
    ClearanceApproval.objects.filter(department__code="REG").update(waiting_since=long_ago)
    stage_one = ClearanceApproval.objects.filter(request=cleared).exclude(department__code="REG")
    approvals_approve(approval_ids=list(stage_one.filter(status=A.PENDING).values_list("pk", flat=True)),
                      acting_user=factories.UserFactory(is_superuser=True)).raise_if_refused()
    queue = client.get(reverse("staff:index")).context["queue"]
    waiting_reg = ClearanceApproval.objects.get(request=cleared, department__code="REG")
    # both REG items pending and 40 days old; only the one whose stage is open is the office's to clear
    assert (queue["pending"], queue["overdue"], queue["oldest"].pk) == (2, 1, waiting_reg.pk)
    listed_overdue = {a.pk for a in client.get(QUEUE + "?overdue=yes").context["cl"].result_list}
    assert listed_overdue == {waiting_reg.pk}


# --- queries ------------------------------------------------------------------------------------------

def _queue_with(n, open_request, offices):
    for _ in range(n):
        request = open_request(factories.StudentFactory())
        factories.HoldFactory(department=offices["LIB"], student=request.student, amount=Decimal("10"))


def test_queue_queries_do_not_grow_with_page_size(lib_client, open_request, offices, django_assert_max_num_queries):
    _queue_with(1, open_request, offices)
    with CaptureQueriesContext(connection) as one_row:
        response = lib_client.get(QUEUE)
    assert len(rows(response)) == 1
    measured = len(one_row)
    assert measured <= 15, [q["sql"] for q in one_row.captured_queries]
    _queue_with(99, open_request, offices)
    with django_assert_max_num_queries(measured):
        response = lib_client.get(QUEUE + "?all=")
    assert len(rows(response)) == 100
    assert response.content.decode().count("Book not returned (KES 10.00)") == 100


def _bulk_approve_via_admin(client, n, cycle, registry_user, year):
    factories.StudentFactory.create_batch(n, expected_graduation_year=year)
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=year)
    ids = list(ClearanceApproval.objects.filter(request__student__expected_graduation_year=year,
                                                department__code="LIB").values_list("pk", flat=True))
    assert len(ids) == n
    with CaptureQueriesContext(connection) as ctx:
        response = act(client, QUEUE, "approve_selected", ids, confirm="yes")
    assert f"Approved {n} clearance items." in messages_of(response)
    assert ClearanceApproval.history.filter(id__in=ids, status=A.APPROVED).count() == n
    return len(ctx)


def test_bulk_approve_queries_grow_with_batches_not_rows(lib_client, cycle, registry_user, offices,
                                                         sqlite_param_limit):
    for_10 = _bulk_approve_via_admin(lib_client, 10, cycle, registry_user, 2030)
    for_500 = _bulk_approve_via_admin(lib_client, 500, cycle, registry_user, 2031)
    assert for_500 < for_10 + 5, (for_10, for_500)


# --- what the clerk saw --------------------------------------------------------------------------------

def test_the_decision_page_carries_the_item_as_shown_and_refuses_it_once_changed(lib_client, clearance, approval,
                                                                                 make_reviewer):
    lib = approval(clearance, "LIB")
    page = lib_client.get(detail(lib))
    seen = page.context["adminform"].form["seen"].value()
    assert seen == lib.state_token and f'name="seen" value="{seen}"' in page.content.decode()
    other = make_reviewer("LIB", email="lib2@clearance.test")
    approvals_approve(approval_ids=[lib.pk], acting_user=other).raise_if_refused()
    response = lib_client.post(detail(lib), {"decision": "reject", "reason": "Two books out", "seen": seen})
    assert response.status_code == 200
    body = response.content.decode()
    assert "changed since you opened it: approved by lib2@clearance.test at" in body and "reload" in body
    assert status_of(lib) == A.APPROVED


def test_bulk_actions_carry_each_row_as_shown_and_refuse_the_rows_changed_since(lib_client, offices, open_request,
                                                                               superuser):
    first, second = (open_request(factories.StudentFactory()).approvals.get(department__code="LIB") for _ in range(2))
    page = lib_client.get(QUEUE)
    body = page.content.decode()
    assert f'name="seen" value="{first.pk}:{first.state_token}"' in body
    seen = [f"{a.pk}:{a.state_token}" for a in (first, second)]
    approvals_approve(approval_ids=[second.pk], acting_user=superuser).raise_if_refused()
    response = act(lib_client, QUEUE, "approve_selected", [first.pk, second.pk], seen=seen, confirm="yes")
    text = " ".join(messages_of(response)) + response.content.decode()
    assert "Approved 1 clearance item." in text
    assert "changed since you opened it: approved by admin@clearance.test" in text
    # the reason page of a bulk reject carries them to the confirmation
    page = act(lib_client, QUEUE, "reject_selected", [first.pk], seen=[f"{first.pk}:stale"])
    assert 'name="seen" value="%s:stale"' % first.pk in page.content.decode()
    response = act(lib_client, QUEUE, "reject_selected", [first.pk], seen=[f"{first.pk}:stale"], confirm="yes",
                   reason="Book")
    assert "changed since you opened it" in " ".join(messages_of(response)) + response.content.decode()
    assert status_of(first) == A.APPROVED


@pytest.mark.parametrize("junk", ["", "abc", "1:", ":x", "²:x", "99999999999999999999999:x"])
def test_junk_in_what_the_clerk_saw_is_ignored_not_a_500(lib_client, clearance, approval, junk):
    lib = approval(clearance, "LIB")
    response = act(lib_client, QUEUE, "approve_selected", [lib.pk], seen=[junk], seen_at=junk, confirm="yes")
    assert response.status_code == 200
    assert status_of(lib) == A.APPROVED


def test_the_queue_badge_counts_what_came_in_since_the_reviewer_last_looked(client, lib_reviewer, open_request,
                                                                            offices):
    from clearance_admin.staff import queue_badge
    from core import permissions as perms
    from tests.conftest import _with_role
    _with_role(lib_reviewer, perms.STAFF)
    client.force_login(lib_reviewer)
    first = open_request(factories.StudentFactory())
    home = client.get("/staff/")
    assert queue_badge(home.wsgi_request) == "1 new"
    client.get("/staff/core/clearanceapproval/")                 # looked at the queue
    assert queue_badge(client.get("/staff/").wsgi_request) == ""
    open_request(factories.StudentFactory())
    assert queue_badge(client.get("/staff/").wsgi_request) == "1 new"
    assert first.pk


def test_the_delegation_form_preselects_the_delegators_one_office(client, lib_reviewer):
    from core import permissions as perms
    from tests.conftest import _with_role
    _with_role(lib_reviewer, perms.STAFF)
    client.force_login(lib_reviewer)
    page = client.get("/staff/core/delegation/add/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.initial["department"] == perms.granted_departments(lib_reviewer).get().pk
