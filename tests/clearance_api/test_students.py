"""A student's own clearance through the API (part 2), and the scoping matrix role × endpoint
(API keys included): a student reaches nothing of another student — 404, not 403 — and other
roles get 403 on a student's endpoints."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core import permissions
from core.models import ClearanceApproval, ClearanceRequest, Notification
from core.services.approvals import approval_reject
from core.services.certificates import certificate_issue
from core.services.holds import hold_place
from tests import factories

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def me(as_user, student):
    return as_user(student.user)


def test_students_me_shows_the_record_and_the_cycles_open_to_submit(me, student, cycle):
    body = me.get("/api/students/me/").json()
    assert body["registration_number"] == student.registration_number
    assert [c["id"] for c in body["open_cycles"]] == [cycle.pk]


def test_a_login_without_a_student_record_is_told_so(as_user, make_user):
    response = as_user(make_user(permissions.STUDENT, email="new@clearance.test")).get("/api/students/me/")
    assert response.status_code == 404 and "new@clearance.test" in response.json()["detail"]


def test_submit_in_an_open_cycle_then_the_second_time_is_refused(me, student, cycle, offices):
    response = me.post("/api/clearances/", {"cycle": cycle.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["cycle"]["id"] == cycle.pk and len(body["items"]) == 6        # not a resident: no HOS
    again = me.post("/api/clearances/", {"cycle": cycle.pk}, format="json")
    assert again.status_code == 400 and "already have a clearance request" in again.json()["detail"]
    assert ClearanceRequest.objects.filter(student=student).count() == 1


@pytest.mark.parametrize("body, field", [({"cycle": "x"}, "cycle"), ({"cycle": 999999}, "cycle"),
                                         ({"cycle": 1, "reason": "holiday"}, "reason"),
                                         ({"cycle": 1, "priority": "high"}, "priority")])
def test_a_bad_submission_is_400_naming_the_field_and_writes_nothing(me, body, field, offices):
    response = me.post("/api/clearances/", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert not ClearanceRequest.objects.exists()


def test_a_closed_cycle_is_refused(me, offices):
    closed = factories.ClearanceCycleFactory(name="Old", is_closed=True)
    response = me.post("/api/clearances/", {"cycle": closed.pk}, format="json")
    assert response.status_code == 400 and not ClearanceRequest.objects.exists()


def test_clearances_show_each_office_with_reason_amount_and_what_to_do_next(me, clearance, approval, offices,
                                                                             lib_reviewer, finance_user):
    approval_reject(approval=approval(clearance, "LIB"), acting_user=lib_reviewer, reason="Two books not returned")
    hold_place(department=offices["FIN"], student=clearance.student, reason="Fee balance", amount=Decimal("2500"),
               acting_user=finance_user)
    [view] = me.get("/api/clearances/").json()
    items = {i["office"]: i for i in view["items"]}
    assert items["LIB"]["status"] == "rejected" and items["LIB"]["reason"] == "Two books not returned"
    assert items["LIB"]["can_resubmit"] and "re-submit" in items["LIB"]["next_step"]
    assert items["FIN"]["amount"] == "2500.00" and items["FIN"]["next_step"].startswith("Pay the balance")
    assert items["SPT"]["next_step"].startswith("Nothing to do: Sports")


def test_resubmit_with_a_file_puts_the_item_back_to_pending(me, clearance, approval, lib_reviewer):
    item = approval(clearance, "LIB")
    approval_reject(approval=item, acting_user=lib_reviewer, reason="Two books not returned")
    upload = SimpleUploadedFile("receipt.pdf", PDF, content_type="application/pdf")
    response = me.post(f"/api/approvals/{item.pk}/resubmit/", {"response": "Returned both", "file": upload},
                       format="multipart")
    assert response.status_code == 200, response.json()
    item.refresh_from_db()
    assert item.status == ClearanceApproval.Status.PENDING and item.student_response == "Returned both"
    assert item.response_file_name == "receipt.pdf" and item.response_file


def test_resubmit_refuses_a_file_that_is_not_a_document_and_changes_nothing(me, clearance, approval, lib_reviewer):
    item = approval(clearance, "LIB")
    approval_reject(approval=item, acting_user=lib_reviewer, reason="Two books not returned")
    upload = SimpleUploadedFile("receipt.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    response = me.post(f"/api/approvals/{item.pk}/resubmit/", {"response": "Returned", "file": upload},
                       format="multipart")
    assert response.status_code == 400 and "file" in response.json()["errors"]
    item.refresh_from_db()
    assert item.status == ClearanceApproval.Status.REJECTED and not item.response_file


def test_resubmit_of_an_item_not_rejected_or_without_a_response_is_400(me, clearance, approval):
    item = approval(clearance, "LIB")
    response = me.post(f"/api/approvals/{item.pk}/resubmit/", {"response": "Please"}, format="json")
    assert response.status_code == 400 and "Only a rejected item" in response.json()["detail"]
    assert me.post(f"/api/approvals/{item.pk}/resubmit/", {}, format="json").status_code == 400


def test_my_holds_lists_mine_only(me, student, offices, lib_reviewer):
    mine = hold_place(department=offices["LIB"], student=student, reason="Book", acting_user=lib_reviewer)
    other = factories.StudentFactory()
    hold_place(department=offices["LIB"], student=other, reason="Theirs", acting_user=lib_reviewer)
    body = me.get("/api/students/me/holds/").json()
    assert [h["id"] for h in body["results"]] == [mine.pk]


def test_notifications_list_count_read_one_and_all(me, student):
    for i in range(3):
        factories.NotificationFactory(user=student.user, title=f"N{i}")
    factories.NotificationFactory(title="Someone else's")
    assert me.get("/api/notifications/unread-count/").json() == {"unread": 3}
    listed = me.get("/api/notifications/?page_size=2").json()
    assert len(listed["results"]) == 2 and listed["next"]
    rest = me.get(listed["next"]).json()
    assert len(rest["results"]) == 1
    first = listed["results"][0]["id"]
    assert me.post(f"/api/notifications/{first}/read/").json()["is_read"] is True
    assert me.get("/api/notifications/?unread=true").json()["results"].__len__() == 2
    assert me.get("/api/notifications/?unread=maybe").status_code == 400
    assert me.post("/api/notifications/read-all/").json() == {"marked": 2}
    assert me.get("/api/notifications/unread-count/").json() == {"unread": 0}
    assert Notification.objects.filter(title="Someone else's", read_at__isnull=True).exists()


def test_a_huge_page_size_is_capped_and_a_forged_cursor_is_400(me, student, settings):
    settings.API_MAX_PAGE_SIZE = 2
    for i in range(3):
        factories.NotificationFactory(user=student.user)
    assert len(me.get("/api/notifications/?page_size=100000000").json()["results"]) == 2
    response = me.get("/api/notifications/?cursor=@@not-base64@@")
    assert response.status_code == 400 and "cursor" in response.json()["errors"]


def test_certificates_list_and_pdf(me, clearance, complete_request, registry_user, as_user):
    certificate = certificate_issue(request=complete_request(clearance), acting_user=registry_user)
    [listed] = me.get("/api/certificates/").json()["results"]
    assert listed["id"] == certificate.pk and listed["is_valid"]
    pdf = me.get(listed["pdf_url"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert pdf["Content-Disposition"].startswith("attachment")
    # the registry downloads it too (the same rule as its site's)
    assert as_user(registry_user).get(listed["pdf_url"]).status_code == 200


# --- another student's things: 404, never 403, nothing changes --------------------------------------

@pytest.fixture
def neighbour(open_request, as_user):
    other = factories.StudentFactory(with_user=True)
    other.user.groups.add(__import__("django.contrib.auth.models").contrib.auth.models.Group.objects.get(
        name=permissions.STUDENT))
    return other, open_request(other), as_user(other.user)


def test_a_student_reaches_nothing_of_another_student(me, clearance, approval, lib_reviewer, neighbour,
                                                      complete_request, registry_user):
    item = approval(clearance, "LIB")
    approval_reject(approval=item, acting_user=lib_reviewer, reason="Book")
    notification = factories.NotificationFactory(user=clearance.student.user)
    certificate_request = complete_request(neighbour[1])
    theirs = certificate_issue(request=certificate_request, acting_user=registry_user)
    _, _, other = neighbour
    for response in (other.post(f"/api/approvals/{item.pk}/resubmit/", {"response": "mine now"}, format="json"),
                     other.post(f"/api/notifications/{notification.pk}/read/"),
                     me.get(f"/api/certificates/{theirs.pk}/pdf/"),
                     other.post("/api/approvals/987654/resubmit/", {"response": "x"}, format="json")):
        assert response.status_code == 404 and set(response.json()) == {"detail", "errors"}
    item.refresh_from_db()
    notification.refresh_from_db()
    assert item.status == ClearanceApproval.Status.REJECTED and notification.read_at is None
    assert [c["id"] for c in me.get("/api/certificates/").json()["results"]] == []


# --- the matrix: role × endpoint (people by token, systems by key) ---------------------------------

STUDENT_ONLY = ["/api/students/me/", "/api/students/me/holds/", "/api/clearances/", "/api/certificates/"]
EVERYONE = ["/api/auth/me/", "/api/notifications/", "/api/notifications/unread-count/"]


@pytest.fixture
def callers(student, clearance, lib_reviewer, finance_user, registry_user, make_reviewer, make_user,
            as_user, as_key, superuser):
    clerk_system = make_reviewer("LIB", email="library-system@clearance.test")
    finance_system = make_user(permissions.FINANCE, email="finance-system@clearance.test")
    return {
        "student": as_user(student.user),
        "clerk": as_user(lib_reviewer),
        "finance": as_user(finance_user),
        "registry": as_user(registry_user),
        "superuser": as_user(superuser),
        "clerk key": as_key(clerk_system),
        "finance key": as_key(finance_system),
    }


# a superuser passes every role's gate, as on the sites, and has no student record: 404 saying so
STUDENT_GATE = {"student": 200, "superuser": 404}


def test_the_matrix_of_roles_and_endpoints(callers, clearance, approval):
    item = approval(clearance, "LIB")
    for who, client in callers.items():
        for url in STUDENT_ONLY:
            expected = STUDENT_GATE.get(who, 403)
            response = client.get(url)
            assert response.status_code == expected, (who, url, response.json())
        for url in EVERYONE:
            assert client.get(url).status_code == 200, (who, url)
        # the student's own item, not rejected, and a second request in the cycle: refused
        expected = {"student": 400, "superuser": 404}.get(who, 403)
        assert client.post(f"/api/approvals/{item.pk}/resubmit/", {"response": "x"},
                           format="json").status_code == expected, who
        assert client.post("/api/clearances/", {"cycle": clearance.cycle_id}, format="json").status_code == \
            expected, who


def test_nobody_signed_in_gets_401_everywhere_but_sign_in_and_docs(api, clearance):
    for url in STUDENT_ONLY + EVERYONE + ["/api/certificates/1/pdf/"]:
        response = api.get(url)
        assert response.status_code == 401 and set(response.json()) == {"detail", "errors"}, url
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200
