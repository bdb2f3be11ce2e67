"""/student/ through the HTTP client, as a student (and as people who are not students)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from core import permissions
from core.models import ClearanceApproval, ClearanceRequest, Notification
from core.services.approvals import approvals_approve, approvals_reject
from core.services.holds import hold_place
from tests import factories
from tests.conftest import _with_role, approval_of

INDEX = "/student/"
SUBMIT = "/student/clearance/submit/"


def resubmit_url(approval):
    return reverse("student:student_resubmit", args=[approval.pk])


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def student_client(client, student):
    client.force_login(student.user)
    return client


@pytest.fixture
def neighbour(open_request):
    """Another student, with their own request, a rejection and a hold the fixture student must not see."""
    other = factories.StudentFactory(with_user=True, first_name="Nadia", last_name="Neighbour")
    _with_role(other.user, permissions.STUDENT)
    request = open_request(other)
    factories.HoldFactory(student=other, department=approval_of(request, "SPT").department,
                          reason="Neighbour's secret hold", amount=Decimal("777"))
    return other, request


# --- progress -----------------------------------------------------------------------------------

def test_student_sees_each_office_with_reasons_and_amounts(student_client, student, clearance, offices,
                                                          finance_user, lib_reviewer, neighbour):
    # a finance balance: the FIN hold rejects the FIN item naming the amount (rule 5)
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=Decimal("12500"),
               acting_user=finance_user)
    # the library holds a book: its item stays pending, but the hold shows with its amount
    hold_place(department=offices["LIB"], student=student, reason="Book not returned", amount=Decimal("300"),
               acting_user=lib_reviewer)
    approvals_approve(approval_ids=[approval_of(clearance, "SPT").pk],
                      acting_user=factories.UserFactory(is_superuser=True, is_staff=True)).raise_if_refused()

    response = student_client.get(INDEX)

    assert response.status_code == 200
    body = response.content.decode()
    assert approval_of(clearance, "FIN").status == ClearanceApproval.Status.REJECTED
    assert "Outstanding fee balance of KES 12,500.00" in body
    assert "Book not returned — KES 300.00" in body
    assert 'data-office="LIB" data-status="pending"' in body
    assert 'data-office="SPT" data-status="approved"' in body
    assert 'data-office="FIN" data-status="rejected"' in body
    assert 'id="active-holds"' in body
    assert "1 of 6 offices cleared" in body
    # the neighbour's request, hold and name are nowhere on the page
    other, other_request = neighbour
    assert "Neighbour's secret hold" not in body
    assert other.registration_number not in body
    assert f'id="request-{other_request.pk}"' not in body


def test_index_queries_do_not_grow_with_offices_and_holds(student_client, student, clearance, offices,
                                                          lib_reviewer, django_assert_max_num_queries):
    for n in range(5):
        factories.HoldFactory(student=student, department=offices["LIB"], reason=f"Book {n}", amount=Decimal("10"))
    with django_assert_max_num_queries(14):
        assert student_client.get(INDEX).status_code == 200


def test_student_without_a_student_record_gets_a_clear_page(client, make_user, cycle):
    user = make_user(permissions.STUDENT, email="unlinked@clearance.test")
    client.force_login(user)

    response = client.get(INDEX)

    assert response.status_code == 200
    assert "No student record is linked to your login" in response.content.decode()
    response = client.post(SUBMIT, {"cycle": cycle.pk}, follow=True)
    assert response.status_code == 200
    assert any("not linked to a student record" in t for t in texts(response))
    assert not ClearanceRequest.objects.exists()


# --- submit -------------------------------------------------------------------------------------

def test_submit_while_a_cycle_is_open(student_client, student, cycle, offices):
    page = student_client.get(INDEX).content.decode()
    assert "Submit clearance request" in page
    assert f'id="submit-{cycle.pk}"' in page

    response = student_client.post(SUBMIT, {"cycle": cycle.pk, "reason": "graduation"}, follow=True)

    assert response.redirect_chain[-1][0] == INDEX
    request = ClearanceRequest.objects.get(student=student, cycle=cycle)
    assert request.opened_by == student.user
    assert request.approvals.count() == 6  # not a resident: no HOS
    assert any("submitted: 6 offices" in t for t in texts(response))
    assert "Submit clearance request" not in response.content.decode()


def test_submit_refused_when_the_cycle_is_closed(student_client, student, cycle, offices):
    cycle.is_closed = True
    cycle.save()
    assert "Submit clearance request" not in student_client.get(INDEX).content.decode()

    response = student_client.post(SUBMIT, {"cycle": cycle.pk}, follow=True)

    assert any("has been closed" in t for t in texts(response))
    assert not ClearanceRequest.objects.filter(student=student).exists()


def test_submit_refused_when_a_request_is_already_open(student_client, student, clearance, cycle):
    response = student_client.post(SUBMIT, {"cycle": cycle.pk}, follow=True)

    assert any("already have a clearance request" in t for t in texts(response))
    assert ClearanceRequest.objects.filter(student=student).count() == 1


def test_submit_needs_post_and_csrf(client, student, cycle, offices):
    assert client.get(SUBMIT).status_code == 302  # anonymous: to the login page
    client.force_login(student.user)
    assert client.get(SUBMIT).status_code == 405
    from django.test import Client
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(student.user)
    assert strict.post(SUBMIT, {"cycle": cycle.pk}).status_code == 403
    assert not ClearanceRequest.objects.filter(student=student).exists()


def test_submit_unknown_cycle_is_404(student_client, student, offices):
    assert student_client.post(SUBMIT, {"cycle": "999999"}).status_code == 404
    assert student_client.post(SUBMIT, {"cycle": "abc"}).status_code == 404
    assert not ClearanceRequest.objects.exists()


# --- re-submit ----------------------------------------------------------------------------------

@pytest.fixture
def lib_rejected(clearance, lib_reviewer):
    lib = approval_of(clearance, "LIB")
    approvals_reject(approval_ids=[lib.pk], acting_user=lib_reviewer, reason="Two books not returned"
                     ).raise_if_refused()
    return approval_of(clearance, "LIB")


def test_resubmit_with_a_response(student_client, lib_rejected, clearance):
    page = student_client.get(INDEX).content.decode()
    assert "Two books not returned" in page
    assert resubmit_url(lib_rejected) in page
    assert "3 re-submissions left" in page

    response = student_client.post(resubmit_url(lib_rejected), {"response": "Returned both on Monday"}, follow=True)

    lib = approval_of(clearance, "LIB")
    assert lib.status == ClearanceApproval.Status.PENDING
    assert lib.student_response == "Returned both on Monday"
    clearance.refresh_from_db()
    assert clearance.resubmission_count == 1
    assert any("Re-submitted to Library" in t for t in texts(response))
    assert lib.history.first().history_user == clearance.student.user


def test_resubmit_without_a_response_is_refused(student_client, lib_rejected, clearance):
    response = student_client.post(resubmit_url(lib_rejected), {"response": "   "}, follow=True)

    assert any("Write a response" in t for t in texts(response))
    lib = approval_of(clearance, "LIB")
    assert lib.status == ClearanceApproval.Status.REJECTED
    assert lib.reason == "Two books not returned"
    clearance.refresh_from_db()
    assert clearance.resubmission_count == 0


def test_a_response_of_200000_characters_is_refused_and_the_form_says_the_limit(student_client, lib_rejected,
                                                                               clearance):
    assert 'maxlength="2000"' in student_client.get(INDEX).content.decode()
    response = student_client.post(resubmit_url(lib_rejected), {"response": "x" * 200_000}, follow=True)
    assert response.status_code == 200
    assert any("The response is 200,000 characters long; at most 2,000 are allowed" in t for t in texts(response))
    lib = approval_of(clearance, "LIB")
    assert (lib.status, lib.student_response) == (ClearanceApproval.Status.REJECTED, "")


def test_resubmit_refused_once_the_limit_is_reached(student_client, lib_rejected, clearance, cycle, lib_reviewer):
    cycle.max_resubmissions = 1
    cycle.save()
    student_client.post(resubmit_url(lib_rejected), {"response": "Returned one"})
    approvals_reject(approval_ids=[lib_rejected.pk], acting_user=lib_reviewer, reason="One book still out"
                     ).raise_if_refused()
    page = student_client.get(INDEX).content.decode()
    assert "used every re-submission" in page
    assert resubmit_url(lib_rejected) not in page

    response = student_client.post(resubmit_url(lib_rejected), {"response": "Returned the other"}, follow=True)

    assert any("used all 1 re-submissions" in t for t in texts(response))
    lib = approval_of(clearance, "LIB")
    assert lib.status == ClearanceApproval.Status.REJECTED
    assert lib.reason == "One book still out"
    clearance.refresh_from_db()
    assert clearance.resubmission_count == 1


def test_resubmit_of_a_pending_item_is_refused(student_client, clearance):
    spt = approval_of(clearance, "SPT")
    response = student_client.post(resubmit_url(spt), {"response": "Please"}, follow=True)
    assert any("Only a rejected item can be re-submitted" in t for t in texts(response))
    assert approval_of(clearance, "SPT").student_response == ""


def test_another_students_item_is_404_and_nothing_changes(student_client, neighbour, lib_reviewer, clearance):
    other, other_request = neighbour
    theirs = approval_of(other_request, "LIB")
    approvals_reject(approval_ids=[theirs.pk], acting_user=lib_reviewer, reason="Their book").raise_if_refused()

    response = student_client.post(resubmit_url(theirs), {"response": "I did it for them"})

    assert response.status_code == 404
    theirs = approval_of(other_request, "LIB")
    assert theirs.status == ClearanceApproval.Status.REJECTED
    assert theirs.student_response == ""
    other_request.refresh_from_db()
    assert other_request.resubmission_count == 0
    assert student_client.post(reverse("student:student_resubmit", args=[987654]),
                               {"response": "x"}).status_code == 404


# --- notifications ------------------------------------------------------------------------------

@pytest.fixture
def notes(student, neighbour):
    other, _ = neighbour
    mine = [factories.NotificationFactory(user=student.user, title=f"Mine {n}") for n in range(3)]
    theirs = factories.NotificationFactory(user=other.user, title="Theirs only")
    return mine, theirs


NOTIFICATIONS = "/student/core/notification/"


def test_notifications_list_only_own(student_client, notes, student):
    mine, theirs = notes
    response = student_client.get(NOTIFICATIONS)
    body = response.content.decode()
    assert response.status_code == 200
    for n in mine:
        assert n.title in body
    assert "Theirs only" not in body
    unread = Notification.objects.filter(user=student.user, read_at__isnull=True).count()
    assert unread >= 3
    # the sidebar badge counts the unread ones
    from clearance_admin.student import unread_badge
    assert unread_badge(response.wsgi_request) == str(unread)


def test_mark_read_in_bulk(student_client, notes, student):
    mine, theirs = notes
    response = student_client.post(NOTIFICATIONS, {
        "action": "mark_read", "_selected_action": [mine[0].pk, mine[1].pk, theirs.pk]}, follow=True)

    assert response.status_code == 200
    assert any("Marked 2 notifications as read" in t for t in texts(response))
    assert Notification.objects.get(pk=mine[0].pk).read_at is not None
    assert Notification.objects.get(pk=mine[1].pk).read_at is not None
    assert Notification.objects.get(pk=mine[2].pk).read_at is None
    assert Notification.objects.get(pk=theirs.pk).read_at is None  # outside the scope: untouched


def test_mark_one_read(student_client, notes):
    mine, _ = notes
    # opening it marks it read (test_opening_a_notification_marks_it_read); the POST does it without
    read_url = reverse("student:core_notification_mark_read", args=[mine[2].pk])
    response = student_client.post(read_url, follow=True)

    assert any("Marked as read" in t for t in texts(response))
    assert Notification.objects.get(pk=mine[2].pk).read_at is not None


def test_another_students_notification_is_refused(student_client, notes):
    _, theirs = notes
    assert student_client.get(f"{NOTIFICATIONS}{theirs.pk}/change/").status_code == 403
    assert student_client.post(reverse("student:core_notification_mark_read", args=[theirs.pk])).status_code == 403
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert student_client.get(f"{NOTIFICATIONS}{theirs.pk}/history/").status_code in (403, 404)


def test_notifications_cannot_be_added_or_deleted(student_client, notes):
    mine, _ = notes
    assert student_client.get(f"{NOTIFICATIONS}add/").status_code == 403
    assert student_client.post(f"{NOTIFICATIONS}{mine[0].pk}/delete/", {"post": "yes"}).status_code == 403
    assert Notification.objects.filter(pk=mine[0].pk).exists()


# --- who may use /student/ ----------------------------------------------------------------------

@pytest.mark.parametrize("who", ["lib_reviewer", "finance_user", "registry_user"])
def test_staff_finance_and_registry_are_refused_at_student(client, request, who, offices):
    user = request.getfixturevalue(who)
    client.force_login(user)

    response = client.get(INDEX, follow=True)

    assert response.redirect_chain and "/student/login/" in response.redirect_chain[-1][0]
    body = response.content.decode()
    assert "This site is for students" in body
    assert 'id="student-dashboard"' not in body


def test_a_superuser_is_not_a_student(client, superuser):
    client.force_login(superuser)
    response = client.get(INDEX, follow=True)
    assert "/student/login/" in response.redirect_chain[-1][0]
    assert "This site is for students" in response.content.decode()


def test_staff_cannot_post_to_student_views(client, lib_reviewer, clearance, lib_rejected):
    client.force_login(lib_reviewer)
    response = client.post(resubmit_url(lib_rejected), {"response": "sneaky"})
    assert response.status_code == 302 and "/student/login/" in response["Location"]
    assert approval_of(clearance, "LIB").status == ClearanceApproval.Status.REJECTED


@pytest.mark.parametrize("site", ["/staff/", "/finance/", "/registry/", "/admin/"])
def test_student_is_refused_at_other_sites_with_a_pointer_to_student(student_client, site, student):
    response = student_client.get(site, follow=True)

    assert response.redirect_chain and f"{site}login/" in response.redirect_chain[-1][0]
    body = response.content.decode()
    assert student.user.email in body
    assert "/student/" in body
    assert "can use /student/" in body


# --- certificate ----------------------------------------------------------------------------------

@pytest.fixture
def my_certificate(clearance, complete_request, registry_user):
    from core.services.certificates import certificate_issue
    return certificate_issue(request=complete_request(clearance), acting_user=registry_user)


def test_student_downloads_their_certificate_from_the_dashboard(student_client, student, my_certificate):
    import io
    from pypdf import PdfReader
    pdf_url = reverse("student:certificate_pdf", args=[my_certificate.pk])
    body = student_client.get(INDEX).content.decode()
    assert f'href="{pdf_url}"' in body

    response = student_client.get(pdf_url)

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    text = " ".join(PdfReader(io.BytesIO(response.content)).pages[0].extract_text().split())
    assert student.full_name in text and student.registration_number in text and my_certificate.code in text


def test_a_student_cannot_download_another_students_certificate(student_client, open_request, complete_request,
                                                                registry_user, my_certificate):
    from core.services.certificates import certificate_issue
    other = factories.StudentFactory(with_user=True)
    _with_role(other.user, permissions.STUDENT)
    theirs = certificate_issue(request=complete_request(open_request(other)), acting_user=registry_user)

    assert student_client.get(reverse("student:certificate_pdf", args=[theirs.pk])).status_code == 404
    assert student_client.get(reverse("student:certificate_pdf", args=[987654])).status_code == 404
    body = student_client.get(INDEX).content.decode()
    assert reverse("student:certificate_pdf", args=[theirs.pk]) not in body


def test_a_revoked_certificate_is_not_downloadable_by_the_student(student_client, clearance, my_certificate,
                                                                  registry_user):
    from core.services.requests import request_revoke
    pdf_url = reverse("student:certificate_pdf", args=[my_certificate.pk])
    request_revoke(request=clearance, acting_user=registry_user, reason="Library hold placed after completion")

    assert student_client.get(pdf_url).status_code == 404
    body = student_client.get(INDEX).content.decode()
    assert pdf_url not in body and "Library hold placed after completion" in body


def test_other_roles_cannot_use_the_students_certificate_url(client, my_certificate, lib_reviewer, registry_user):
    pdf_url = reverse("student:certificate_pdf", args=[my_certificate.pk])
    for user in (lib_reviewer, registry_user):
        client.force_login(user)
        response = client.get(pdf_url)
        assert response.status_code == 302 and "/student/login/" in response["Location"]


def test_opening_a_notification_marks_it_read(student_client, student):
    n = factories.NotificationFactory(user=student.user, title="LIB: rejected")
    page = student_client.get(f"/student/core/notification/{n.pk}/change/")
    assert page.status_code == 200
    assert Notification.objects.get(pk=n.pk).read_at is not None
    theirs = factories.NotificationFactory(title="Someone else's")
    assert student_client.get(f"/student/core/notification/{theirs.pk}/change/").status_code == 403
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_a_student_turns_the_emails_off_and_on(student_client, student):
    page = student_client.get("/student/").content.decode()
    assert 'id="email-setting"' in page and "Turn them off" in page
    student_client.post("/student/settings/email/", {"on": "0"})
    student.user.refresh_from_db()
    assert student.user.email_notifications is False
    assert "Turn them on" in student_client.get("/student/").content.decode()
    student_client.post("/student/settings/email/", {"on": "1"})
    student.user.refresh_from_db()
    assert student.user.email_notifications is True
    assert student_client.get("/student/settings/email/").status_code == 405


def test_moments_read_the_same_24_hour_way_on_every_page(student_client, student):
    import datetime as dt

    from django.utils import timezone as tz
    n = factories.NotificationFactory(user=student.user, title="Held")
    Notification.objects.filter(pk=n.pk).update(
        created_at=tz.make_aware(dt.datetime(2026, 12, 4, 14, 50), tz.get_current_timezone()))
    listed = student_client.get("/student/core/notification/").content.decode()
    opened = student_client.get(f"/student/core/notification/{n.pk}/change/").content.decode()
    for html in (listed, opened):
        assert "14:50" in html and "p.m." not in html


# --- the phone page: cards, days waiting, no admin clutter ---------------------------------------

def _card(body: str, code: str) -> str:
    start = body.index(f'data-office="{code}"')
    return body[start:body.index("</article>", start)]


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_days_waiting_only_where_the_office_has_the_item(student_client, clearance, superuser):
    approvals_approve(approval_ids=[approval_of(clearance, "LIB").pk], acting_user=superuser).raise_if_refused()

    body = student_client.get(INDEX).content.decode()

    lib, spt, reg = _card(body, "LIB"), _card(body, "SPT"), _card(body, "REG")
    assert 'data-waits="no"' in lib and "days-waiting" not in lib          # approved: waits for nobody
    assert "Nothing to do: this office has cleared you." in lib
    assert 'data-waits="no"' in reg and "days-waiting" not in reg          # stage 2, stage 1 not cleared
    assert "Opens once" in reg and "Not open yet" in reg
    assert 'data-waits="yes"' in spt and "days-waiting" in spt             # pending in an open stage
    assert "Where to go" in spt


def test_no_admin_clutter_on_the_students_pages(student_client, notes, lib_rejected):
    for url in (INDEX, NOTIFICATIONS):
        body = student_client.get(url).content.decode()
        assert "Select all rows" not in body, url
        assert 'class="action-select' not in body and "action-toggle" not in body, url
        assert 'type="checkbox"' not in body, url


def test_a_notification_is_shown_whole(student_client, student):
    message = ("Library rejected your clearance. Reason: 2 books not returned: 'Introduction to Algorithms', "
               "'Clean Code', 'The Pragmatic Programmer' and 'Structure and Interpretation of Computer Programs'")
    factories.NotificationFactory(user=student.user, title="LIB: rejected", message=message)
    for url in (INDEX, NOTIFICATIONS):
        body = student_client.get(url).content.decode()
        assert message.replace("'", "&#x27;") in body, url


def test_mark_all_read_from_the_list(student_client, notes):
    mine, theirs = notes
    page = student_client.get(NOTIFICATIONS).content.decode()
    assert 'id="mark-all-read"' in page
    response = student_client.post(NOTIFICATIONS, {"action": "mark_read", "select_across": "1", "index": "0",
                                                   "_selected_action": [mine[0].pk]}, follow=True)
    assert any("Marked 3 notifications as read" in t for t in texts(response))
    assert not Notification.objects.filter(user=mine[0].user, read_at__isnull=True).exists()
    assert Notification.objects.get(pk=theirs.pk).read_at is None


# --- re-submit with a file ----------------------------------------------------------------------

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


def _upload(name="return-slip.pdf", content=PDF):
    from django.core.files.uploadedfile import SimpleUploadedFile
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def response_download_url(site, approval):
    return reverse(f"{site}:file_download", args=["response", approval.pk])


def test_resubmit_with_a_file_stores_it_for_the_student_and_the_office(student_client, client, lib_rejected,
                                                                     clearance, lib_reviewer, make_reviewer,
                                                                     registry_user):
    assert 'enctype="multipart/form-data"' in student_client.get(INDEX).content.decode()

    response = student_client.post(resubmit_url(lib_rejected), {"response": "Returned both; slip attached",
                                                                "file": _upload()}, follow=True)

    assert any("Re-submitted to Library with return-slip.pdf" in t for t in texts(response))
    lib = approval_of(clearance, "LIB")
    assert lib.status == ClearanceApproval.Status.PENDING
    assert lib.response_file_name == "return-slip.pdf"
    assert lib.response_file.name.startswith("responses/") and "return-slip" not in lib.response_file.name
    # the student's page links it through the access-checked view
    body = response.content.decode()
    assert response_download_url("student", lib) in body
    download = student_client.get(response_download_url("student", lib))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert 'filename="return-slip.pdf"' in download["Content-Disposition"]
    # the office reviewing the item sees it on its item page and downloads it
    client.force_login(lib_reviewer)
    item_page = client.get(reverse("staff:core_clearanceapproval_change", args=[lib.pk])).content.decode()
    assert response_download_url("staff", lib) in item_page and "return-slip.pdf" in item_page
    assert client.get(response_download_url("staff", lib)).status_code == 200
    # another office's reviewer and the registry: no such file
    client.force_login(make_reviewer("SPT", email="spt.only@clearance.test"))
    assert client.get(response_download_url("staff", lib)).status_code == 404
    client.force_login(registry_user)
    assert client.get(response_download_url("registry", lib)).status_code == 404


def test_another_students_file_is_404(student_client, neighbour, lib_reviewer, clearance):
    other, other_request = neighbour
    theirs = approval_of(other_request, "LIB")
    approvals_reject(approval_ids=[theirs.pk], acting_user=lib_reviewer, reason="Their book").raise_if_refused()
    from core.services.approvals import approval_resubmit
    approval_resubmit(approval=theirs, acting_user=other.user, response="Returned", file=_upload("theirs.pdf"))
    theirs.refresh_from_db()
    assert theirs.response_file

    assert student_client.get(response_download_url("student", theirs)).status_code == 404
    assert student_client.get(reverse("student:file_download", args=["response", 987654])).status_code == 404


@pytest.mark.parametrize("name, content, says", [
    ("return-slip.pdf", b"<html><script>alert(1)</script></html>", "a web page or XML"),
    ("slip.pdf", b"MZ\x90\x00 program", "a Windows program"),
    ("slip.png", PDF, "named .png but is a PDF document"),
])
def test_a_file_that_lies_about_its_type_is_refused_and_nothing_changes(student_client, lib_rejected, clearance,
                                                                      name, content, says):
    response = student_client.post(resubmit_url(lib_rejected), {"response": "Returned both",
                                                                "file": _upload(name, content)}, follow=True)

    assert response.status_code == 200
    messages = texts(response)
    assert any(says in t and t.startswith("Library:") for t in messages), messages
    lib = approval_of(clearance, "LIB")
    assert (lib.status, lib.student_response, lib.response_file.name) == (ClearanceApproval.Status.REJECTED, "", "")
    clearance.refresh_from_db()
    assert clearance.resubmission_count == 0


def test_two_files_are_refused(student_client, lib_rejected, clearance):
    response = student_client.post(resubmit_url(lib_rejected), {"response": "Both",
                                                                "file": [_upload("a.pdf"), _upload("b.pdf")]},
                                   follow=True)
    assert any("send one file" in t for t in texts(response))
    assert approval_of(clearance, "LIB").status == ClearanceApproval.Status.REJECTED


def test_a_resubmission_without_a_file_clears_the_earlier_one(student_client, lib_rejected, clearance, lib_reviewer):
    student_client.post(resubmit_url(lib_rejected), {"response": "Slip attached", "file": _upload()})
    approvals_reject(approval_ids=[lib_rejected.pk], acting_user=lib_reviewer, reason="Wrong slip").raise_if_refused()
    student_client.post(resubmit_url(lib_rejected), {"response": "I returned them in person"})
    lib = approval_of(clearance, "LIB")
    assert (lib.student_response, lib.response_file.name, lib.response_file_name) == (
        "I returned them in person", "", "")
    # history keeps the file that went with the first response
    assert lib.history.filter(response_file_name="return-slip.pdf").exists()
