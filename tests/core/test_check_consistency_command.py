"""python manage.py check_consistency: one line per violation, a summary, exit status 1 if any."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from core.management.commands.check_consistency import CLEAN
from core.models import ClearanceApproval, ClearanceRequest, Department
from tests import factories

A = ClearanceApproval.Status
R = ClearanceRequest.Status

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[int, list[str]]:
    """(exit status, output lines) of the command."""
    out = io.StringIO()
    try:
        call_command("check_consistency", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue().splitlines()


@pytest.fixture
def broken():
    """One violation of each invariant, in the order the checker reports them."""
    fin = factories.DepartmentFactory(code="FIN", type=Department.Type.FINANCE)
    lib = factories.DepartmentFactory(code="LIB")
    now = timezone.now()
    wrong = factories.ClearanceRequestFactory(status=R.PENDING)
    factories.ClearanceApprovalFactory(request=wrong, department=lib, status=A.REJECTED, reason="Book",
                                       decided_at=now)
    owing = factories.StudentFactory()
    factories.FinanceRecordFactory(student=owing, tuition_balance=Decimal("8000"))
    pending = factories.ClearanceRequestFactory()
    factories.FinanceRecordFactory(student=pending.student, tuition_balance=Decimal("0"))
    factories.ClearanceApprovalFactory(request=pending, department=lib)
    fin_approval = factories.ClearanceApprovalFactory(request=pending, department=fin)
    return [
        f"request-status: {wrong.student.registration_number} ({wrong.cycle.name}): status is pending, but its "
        "approvals (1 rejected) make it on_hold",
        f"balance-hold: {owing.registration_number}: balance KES 8,000.00 is above the threshold (KES 0.00), "
        "but no active FIN hold from the balance import",
        f"finance-decision: FIN approval of {pending.student.registration_number} ({pending.cycle.name}): pending, "
        "though no FIN hold is active: should be approved",
    ], fin_approval


def test_a_consistent_database_exits_0_saying_so():
    assert run() == (0, [CLEAN])


def test_a_consistent_world_with_rows_exits_0():
    fin = factories.DepartmentFactory(code="FIN", type=Department.Type.FINANCE)
    request = factories.ClearanceRequestFactory(status=R.IN_PROGRESS)
    factories.ClearanceApprovalFactory(request=request, department=fin, status=A.APPROVED, decided_at=timezone.now())
    factories.ClearanceApprovalFactory(request=request, department=factories.DepartmentFactory(code="LIB"))
    factories.FinanceRecordFactory(student=request.student, tuition_balance=Decimal("-10"))
    assert run() == (0, [CLEAN])


def test_each_violation_on_a_line_then_the_count_and_exit_1(broken):
    lines, _ = broken
    code, out = run()
    assert code == 1
    assert out == [*lines, "3 violations (1 request-status, 1 balance-hold, 1 finance-decision)."]


def test_one_violation_is_singular():
    factories.DepartmentFactory(code="FIN", type=Department.Type.FINANCE)
    factories.FinanceRecordFactory(tuition_balance=Decimal("1"))
    code, out = run()
    assert (code, len(out), out[-1]) == (1, 2, "1 violation (1 balance-hold).")


def test_limit_stops_early_and_says_there_are_more(broken):
    lines, _ = broken
    code, out = run("--limit", "2")
    assert code == 1
    assert out == [*lines[:2], "2 violations shown (1 request-status, 1 balance-hold), and there are more: "
                               "stopped at --limit 2."]


def test_a_limit_that_is_not_reached_lists_them_all(broken):
    lines, _ = broken
    assert run("--limit", "3") == (1, [*lines, "3 violations (1 request-status, 1 balance-hold, "
                                               "1 finance-decision)."])


def test_a_limit_below_1_is_refused():
    with pytest.raises(CommandError, match="--limit must be 1 or more"):
        call_command("check_consistency", "--limit", "0")


def test_a_waiting_flag_that_disagrees_with_the_earlier_stages_is_a_stage_open_line():
    request = factories.ClearanceRequestFactory(status=R.PENDING)
    factories.ClearanceApprovalFactory(request=request, department=factories.DepartmentFactory(code="LIB"))
    reg = factories.ClearanceApprovalFactory(request=request, department=factories.DepartmentFactory(code="REG",
                                                                                                      stage=2))
    assert run() == (0, [CLEAN])
    ClearanceApproval.objects.filter(pk=reg.pk).update(stage_open=True)     # written past the services
    code, out = run()
    reg_no = request.student.registration_number
    assert (code, out) == (1, [f"stage-open: REG approval of {reg_no} ({request.cycle.name}): stored as waiting "
                               "(stage open), but an earlier stage still has an item to clear",
                               "1 violation (1 stage-open)."])
