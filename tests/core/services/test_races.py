"""Races between real database connections (threads, PostgreSQL): two offices deciding one request
at the same instant, and one item decided twice at once. Each widens the window between reading
and writing with a short pause, so that without the locks the race is lost nearly every round."""
from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from core.models import ClearanceApproval, ClearanceRequest
from core.services import approvals as approval_services
from core.services.status import derive_request_status
from tests import factories
from tests.consistency import assert_consistent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL"),
]

A = ClearanceApproval.Status
R = ClearanceRequest.Status
ROUNDS = 5
PAUSE = 0.05


def _at_once(*calls):
    """Run each call in its own thread and connection, released together; returns what each
    returned or raised."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # the refusal is the result under test
            results[i] = exc
        finally:
            connection.close()
    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def _slowed(monkeypatch, name):
    """Pause after the service has read what it decides on, before it writes."""
    original = getattr(approval_services, name)

    def slow(*args, **kwargs):
        result = original(*args, **kwargs)
        time.sleep(PAUSE)
        return result
    monkeypatch.setattr(approval_services, name, slow)


def test_two_offices_deciding_one_request_at_once_leave_it_in_its_derived_status(
        offices, open_request, make_reviewer, superuser, monkeypatch):
    """Two races on one request, each round: LIB and HOS approve the last two open items at once
    (it must complete), and LIB re-opens its rejection while HOS rejects (it must stay on hold).
    Without the request lock each side derives the status from the other's state before it
    changed, and the request ends in progress in both."""
    lib, hos = make_reviewer("LIB"), make_reviewer("HOS")
    _slowed(monkeypatch, "_open_request_filter")
    for _ in range(ROUNDS):
        request = open_request(factories.StudentFactory(is_resident=True))
        others = request.approvals.filter(status=A.PENDING).exclude(department__code__in=["LIB", "HOS"])
        approval_services.approvals_approve(approval_ids=list(others.values_list("pk", flat=True)),
                                            acting_user=superuser).raise_if_refused()
        lib_item = request.approvals.get(department__code="LIB")
        hos_item = request.approvals.get(department__code="HOS")
        results = _at_once(lambda: approval_services.approval_approve(approval=lib_item, acting_user=lib),
                           lambda: approval_services.approval_approve(approval=hos_item, acting_user=hos))
        assert not [r for r in results if isinstance(r, Exception)], results
        request.refresh_from_db()
        assert request.status == R.COMPLETED

        request = open_request(factories.StudentFactory(is_resident=True))
        lib_item = request.approvals.get(department__code="LIB")
        hos_item = request.approvals.get(department__code="HOS")
        approval_services.approval_reject(approval=lib_item, acting_user=lib, reason="Book")
        results = _at_once(
            lambda: approval_services.approval_reopen(approval=lib_item, acting_user=lib),
            lambda: approval_services.approval_reject(approval=hos_item, acting_user=hos, reason="Key not returned"))
        assert not [r for r in results if isinstance(r, Exception)], results
        request.refresh_from_db()
        statuses = list(request.approvals.values_list("status", flat=True))
        assert request.status == derive_request_status(statuses) == R.ON_HOLD
        assert_consistent()


def test_one_item_decided_twice_at_once_is_decided_once_and_the_other_is_told(offices, clearance, approval,
                                                                              lib_reviewer, monkeypatch):
    _slowed(monkeypatch, "_open_request_filter")
    for _ in range(ROUNDS):
        item = approval(clearance, "LIB")
        seen = item.state_token                      # one clerk, the page open on two instances
        results = _at_once(
            lambda: approval_services.approval_approve(approval=item, acting_user=lib_reviewer, seen=seen),
            lambda: approval_services.approval_reject(approval=item, acting_user=lib_reviewer, reason="Book",
                                                      seen=seen))
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(refused) == 1, results
        assert refused[0].messages[0].startswith("changed since you opened it: ")
        decided = [r for r in results if not isinstance(r, Exception)][0]
        stored = approval(clearance, "LIB")
        assert stored.status == decided.status          # the one that succeeded is what stands
        assert stored.history.filter(status__in=[A.APPROVED, A.REJECTED]).count() >= 1
        assert_consistent()
        # back to pending for the next round
        if stored.status == A.REJECTED:
            approval_services.approval_reopen(approval=stored, acting_user=lib_reviewer)
        else:
            approval_services.approval_reject(approval=stored, acting_user=lib_reviewer, reason="again")
            approval_services.approval_reopen(approval=approval(clearance, "LIB"), acting_user=lib_reviewer)


def test_a_finance_hold_placed_while_an_import_clears_the_student_keeps_the_finance_item_rejected(
        offices, open_request, finance_user, monkeypatch):
    """The import releases the student's balance hold and follows (approve) while the office places
    a hold by hand at the same instant: whichever runs last must see the other's hold change, so the
    finance item ends rejected for the hold placed by hand."""
    import io

    import openpyxl
    from django.core.files.base import ContentFile

    from core.models import FinanceRecord, Hold
    from core.services import finance as finance_services
    from core.services.balances import balances_import_apply, balances_import_preview
    from core.services.holds import hold_place

    original = finance_services._lock_open_requests

    def slow_lock(fin, ids):
        locked = original(fin, ids)
        time.sleep(PAUSE * 4)        # between taking the locks and reading the holds
        return locked
    monkeypatch.setattr(finance_services, "_lock_open_requests", slow_lock)
    for round_ in range(3):
        student = factories.StudentFactory()
        factories.FinanceRecordFactory(student=student, tuition_balance=500)
        factories.HoldFactory(department=offices["FIN"], student=student, amount=500, source=Hold.Source.BALANCE_IMPORT,
                              reason="Outstanding fee balance of KES 500.00")
        request = open_request(student)
        fin = request.approvals.get(department__code="FIN")
        assert fin.status == A.REJECTED
        wb = openpyxl.Workbook()
        wb.active.append(["Reg No", "Balance"])
        wb.active.append([student.registration_number, 0])
        out = io.BytesIO()
        wb.save(out)
        bi = balances_import_preview(file=ContentFile(out.getvalue(), name=f"paid{round_}.xlsx"),
                                     acting_user=finance_user)
        results = _at_once(
            lambda: balances_import_apply(balance_import=bi, acting_user=finance_user),
            lambda: hold_place(department=offices["FIN"], student=student, reason="Cheque bounced", amount=500,
                               acting_user=finance_user))
        assert not [r for r in results if isinstance(r, Exception)], results
        assert FinanceRecord.objects.get(student=student).tuition_balance == 0
        active = list(Hold.objects.filter(student=student, department__code="FIN", status=Hold.Status.ACTIVE)
                      .values_list("source", flat=True))
        assert active == [Hold.Source.MANUAL]
        fin.refresh_from_db()
        assert (fin.status, fin.reason) == (A.REJECTED, "Outstanding fee balance of KES 500.00")
        request.refresh_from_db()
        assert request.status == R.ON_HOLD
        assert_consistent()


# --- the gown store: two clerks at once ------------------------------------------------------------

def _slowed_gowns(monkeypatch, name):
    """Pause inside a gown service after it has read what it decides on (after its locks)."""
    from core.services import gowns as gown_services
    original = getattr(gown_services, name)

    def slow(*args, **kwargs):
        result = original(*args, **kwargs)
        time.sleep(PAUSE)
        return result
    monkeypatch.setattr(gown_services, name, slow)


def test_two_clerks_issuing_one_gown_code_at_once_issue_it_once(offices, make_reviewer, settings, monkeypatch):
    """Both check that the code is not out, then insert: the code's partial unique index referees
    and the loser is told the gown is out, never a database error (a 500)."""
    from core.models import GownIssuance
    from core.services.gowns import gown_issue
    settings.GOWN_REQUIRES_COMPLETED = False
    clerks = make_reviewer("GOWN"), make_reviewer("GOWN")
    _slowed_gowns(monkeypatch, "not_cleared_reason")
    for round_ in range(ROUNDS):
        students = factories.StudentFactory(), factories.StudentFactory()
        code = f"RACE-{round_}"
        results = _at_once(*[lambda s=s, c=c: gown_issue(student=s, gown_code=code, size="M", acting_user=c)
                             for s, c in zip(students, clerks)])
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(refused) == 1 and len([r for r in results if isinstance(r, GownIssuance)]) == 1, results
        assert refused[0].messages[0].startswith(f"Gown {code} is out with another student")
        assert GownIssuance.objects.filter(gown_code=code, returned_at__isnull=True).count() == 1


def test_two_gowns_issued_to_one_student_at_once_issue_one(offices, make_reviewer, settings, monkeypatch):
    from core.models import GownIssuance
    from core.services.gowns import gown_issue
    settings.GOWN_REQUIRES_COMPLETED = False
    clerks = make_reviewer("GOWN"), make_reviewer("GOWN")
    _slowed_gowns(monkeypatch, "not_cleared_reason")
    for round_ in range(ROUNDS):
        student = factories.StudentFactory()
        results = _at_once(*[lambda c=c, i=i: gown_issue(student=student, gown_code=f"ONE-{round_}-{i}", size="M",
                                                         acting_user=c) for i, c in enumerate(clerks)])
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(refused) == 1, results
        assert "already has a gown that has not been returned" in refused[0].messages[0]
        assert GownIssuance.objects.filter(student=student).count() == 1


def test_two_clerks_refunding_one_deposit_at_once_refund_it_once(offices, make_reviewer, monkeypatch):
    from decimal import Decimal

    from core.models import GownIssuance
    from core.services.gowns import gown_deposit_refund, gown_return
    clerks = make_reviewer("GOWN"), make_reviewer("GOWN")
    _slowed_gowns(monkeypatch, "_amount")
    for round_ in range(ROUNDS):
        gown = factories.GownIssuanceFactory(gown_code=f"REFUND-{round_}")
        results = _at_once(*[lambda c=c: gown_return(gown=gown, acting_user=c) for c in clerks])
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(refused) == 1 and "already returned" in refused[0].messages[0], results
        results = _at_once(*[lambda c=c: gown_deposit_refund(gown=gown, acting_user=c) for c in clerks])
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(refused) == 1 and "already settled (refunded)" in refused[0].messages[0], results
        stored = GownIssuance.objects.get(pk=gown.pk)
        assert (stored.deposit_status, stored.refunded_amount) == (GownIssuance.DepositStatus.REFUNDED, Decimal("2000"))
        assert stored.history.filter(history_change_reason="Deposit refunded").count() == 1


def test_two_overlapping_delegations_made_at_once_make_one(offices, make_reviewer, make_user, monkeypatch):
    import datetime

    from django.utils import timezone

    from core import permissions
    from core.models import Delegation
    from core.services import delegations
    lib = offices["LIB"]
    first, second = make_reviewer("LIB"), make_reviewer("LIB")
    colleague = make_user(permissions.STAFF)
    original = delegations.save_tracked

    def slow(*args, **kwargs):           # the read-to-write window: after the overlap check, before the write
        time.sleep(PAUSE)
        return original(*args, **kwargs)
    monkeypatch.setattr(delegations, "save_tracked", slow)
    today = timezone.localdate()

    def delegate(reviewer, days):
        return lambda: delegations.delegation_create(department=lib, from_user=reviewer, to_user=colleague,
                                                     starts_on=today, ends_on=today + datetime.timedelta(days=days),
                                                     acting_user=reviewer)
    results = _at_once(delegate(first, 5), delegate(second, 9))
    assert Delegation.objects.filter(to_user=colleague, department=lib).count() == 1
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 1 and "already has LIB" in str(refused[0])
