"""Who changed what, when, from which IP and why (simple-history with HistoricalAudit)."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.http import HttpResponse
from django.test import RequestFactory

from core.history import AuditContextMiddleware, audit_context, client_ip, current_ip
from core.models import ClearanceApproval
from core.services.approvals import approval_reject, approval_resubmit, approvals_approve
from core.services.holds import hold_place

pytestmark = pytest.mark.django_db


def test_history_shows_who_when_from_where_and_why(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    with audit_context(ip="10.1.2.3"):
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="Two books overdue")
    record = lib.history.first()
    assert record.status == ClearanceApproval.Status.REJECTED
    assert record.history_user == lib_reviewer
    assert record.ip_address == "10.1.2.3"
    assert "Two books overdue" in record.history_change_reason
    assert record.history_date is not None
    assert record.history_type == "~"
    # the opening record is older and came from elsewhere
    opening = lib.history.last()
    assert opening.history_date < record.history_date
    assert opening.ip_address is None


def test_ip_is_only_recorded_inside_the_context(clearance, approval, lib_reviewer):
    with audit_context(ip="10.1.2.3"):
        assert current_ip() == "10.1.2.3"
    assert current_ip() is None
    approvals_approve(approval_ids=[approval(clearance, "LIB").pk], acting_user=lib_reviewer)
    assert approval(clearance, "LIB").history.first().ip_address is None


def test_single_saves_get_the_ip_too(clearance, approval, lib_reviewer, student):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    with audit_context(ip="2001:db8::7"):
        approval_resubmit(approval=lib, acting_user=student.user, response="Returned it")
    record = lib.history.first()
    assert (record.history_user, record.ip_address) == (student.user, "2001:db8::7")
    request_record = clearance.history.filter(history_change_reason="Re-submission").first()
    assert request_record.ip_address == "2001:db8::7"


def test_audit_context_reason_is_the_default_change_reason(offices, student, lib_reviewer):
    with audit_context(reason="Nightly overdue-books rule"):
        hold = hold_place(department=offices["LIB"], student=student, reason="Overdue", acting_user=lib_reviewer)
    # a service's own reason wins over the context's
    assert hold.history.get().history_change_reason == "Hold placed: Overdue"
    with audit_context(reason="Nightly overdue-books rule"):
        student.phone = "0700000000"
        student.save()
    assert student.history.first().history_change_reason == "Nightly overdue-books rule"


def _middleware_calling(service):
    seen = {}

    def get_response(request):
        seen["ip"] = current_ip()
        service()
        return HttpResponse("ok")
    return AuditContextMiddleware(get_response), seen


def test_middleware_records_the_remote_address(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    middleware, seen = _middleware_calling(
        lambda: approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue"))
    response = middleware(RequestFactory().post("/staff/", REMOTE_ADDR="192.0.2.44"))
    assert response.status_code == 200
    assert seen["ip"] == "192.0.2.44"
    record = lib.history.first()
    assert (record.ip_address, record.history_user) == ("192.0.2.44", lib_reviewer)
    assert current_ip() is None  # reset after the request


def test_middleware_resets_the_ip_even_when_the_view_fails(clearance):
    def boom(request):
        raise RuntimeError("view failed")
    with pytest.raises(RuntimeError):
        AuditContextMiddleware(boom)(RequestFactory().get("/", REMOTE_ADDR="192.0.2.1"))
    assert current_ip() is None


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert client_ip(request) == "10.0.0.1"


@pytest.mark.parametrize("hops, forwarded, expected", [
    (1, "198.51.100.7", "198.51.100.7"),
    # the client wrote "6.6.6.6" itself; our one proxy appended the address it really came from
    (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),
    (2, "6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
    (2, "198.51.100.7", "10.0.0.1"),                 # shorter than the proxies we have: not through them
    (1, "not-an-address", "10.0.0.1"),
    (1, "", "10.0.0.1"),
    (1, "2001:db8::1", "2001:db8::1"),
])
def test_the_right_most_address_added_by_the_trusted_proxies_is_recorded(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_the_address_behind_the_proxy_reaches_history(clearance, approval, lib_reviewer, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    lib = approval(clearance, "LIB")
    middleware, _ = _middleware_calling(
        lambda: approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue"))
    middleware(RequestFactory().post("/staff/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7"))
    assert lib.history.first().ip_address == "198.51.100.7"


def test_every_domain_model_has_history_with_an_ip_column():
    domain = ["User", "School", "AcademicDepartment", "Programme", "Student", "Department", "ClearanceCycle",
              "ClearanceRequest", "ClearanceApproval", "Hold", "FinanceRecord", "BalanceImport", "Payment",
              "GownIssuance", "Notification", "Certificate", "Delegation"]
    for name in domain:
        model = apps.get_model("core", name)
        historical = apps.get_model("core", f"Historical{name}")
        assert hasattr(model, "history"), name
        assert "ip_address" in {f.name for f in historical._meta.get_fields()}, name
