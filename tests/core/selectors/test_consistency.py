"""The consistency checker: each invariant's clean case and each kind of violation, built directly
with the ORM (bypassing the services: the checker must see what they would never write)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import ClearanceApproval, ClearanceRequest, Department, FinanceRecord, Hold
from core.selectors import consistency
from core.selectors.consistency import (RULE_BALANCE_HOLD, RULE_FINANCE_DECISION, RULE_STAGE_OPEN, RULE_STATUS, Violation,
                                        balance_hold_problems, consistency_snapshot, consistency_violations,
                                        request_status_problem)
from core.services.status import derive_request_status
from tests import factories
from tests.consistency import assert_consistent

A = ClearanceApproval.Status
R = ClearanceRequest.Status
H = Hold.Status
S = Hold.Source

pytestmark = pytest.mark.django_db


# --- building blocks ------------------------------------------------------------------------------

def office(code, stage=1, **fields):
    return factories.DepartmentFactory(code=code, stage=stage, **fields)


@pytest.fixture
def fin():
    return office("FIN", type=Department.Type.FINANCE)


@pytest.fixture
def lib():
    return office("LIB", type=Department.Type.LIBRARY)


def spt():
    """An office after every other one (stage 3), still pending in the finance cases: with it the
    request stays open whatever LIB and FIN decide."""
    return office("SPT", stage=3)


def make_request(decisions: dict, *, student=None, cycle=None, status=None, **fields) -> ClearanceRequest:
    """A request with one approval per office in `decisions` ({Department: approval status}); its
    status is the derived one unless `status` says otherwise."""
    now = timezone.now()
    if status is None:
        status = derive_request_status(decisions.values())
    if status == R.COMPLETED:
        fields.setdefault("completed_at", now)
    if status == R.REVOKED:
        fields.setdefault("revoked_at", now)
        fields.setdefault("revoked_reason", "Fraud")
    request = factories.ClearanceRequestFactory(student=student or factories.StudentFactory(),
                                                cycle=cycle or factories.ClearanceCycleFactory(), status=status,
                                                **fields)
    for department, decision in decisions.items():
        factories.ClearanceApprovalFactory(
            request=request, department=department, status=decision,
            decided_at=None if decision == A.PENDING else now,
            reason="Because" if decision in (A.REJECTED, A.WAIVED) else "")
    return request


def import_hold(student, amount, *, department=None, status=H.ACTIVE, **fields):
    if department is None:
        department = Department.objects.get(code="FIN")
    if status != H.ACTIVE:
        fields.update(released_at=timezone.now(), release_reason="Paid")
    return factories.HoldFactory(student=student, department=department, source=S.BALANCE_IMPORT, status=status,
                                 amount=amount, reason=f"Outstanding fee balance of KES {amount}", **fields)


def balance(student, amount):
    return factories.FinanceRecordFactory(student=student, tuition_balance=Decimal(amount))


def found(rule=None) -> list[Violation]:
    return [v for v in consistency_violations() if rule is None or v.rule == rule]


# --- 1. request status ----------------------------------------------------------------------------

@pytest.mark.parametrize("decisions", [
    [], [A.PENDING, A.PENDING], [A.APPROVED, A.PENDING], [A.WAIVED, A.PENDING], [A.REJECTED, A.APPROVED],
    [A.APPROVED, A.WAIVED],
], ids=lambda d: "-".join(d) or "none")
def test_derived_status_is_clean(decisions):
    offices = [office(f"O{i}") for i in range(len(decisions))]
    make_request(dict(zip(offices, decisions)))
    assert found() == []


def test_completed_and_revoked_requests_stay_as_they_are():
    lib, spt = office("LIB"), office("SPT")
    # completed, then a later rejection: rule 4 keeps it completed; revoked whatever its approvals
    make_request({lib: A.REJECTED, spt: A.APPROVED}, status=R.COMPLETED)
    make_request({lib: A.APPROVED, spt: A.APPROVED}, status=R.REVOKED)
    assert found() == []


@pytest.mark.parametrize("decisions, stored, derived", [
    ([A.REJECTED, A.APPROVED], R.IN_PROGRESS, R.ON_HOLD),
    ([A.APPROVED, A.PENDING], R.PENDING, R.IN_PROGRESS),
    ([A.APPROVED, A.WAIVED], R.IN_PROGRESS, R.COMPLETED),
    ([A.PENDING, A.PENDING], R.ON_HOLD, R.PENDING),
    ([], R.IN_PROGRESS, R.PENDING),
])
def test_a_status_other_than_the_derived_one_is_named(decisions, stored, derived):
    offices = [office(f"O{i}") for i in range(len(decisions))]
    request = make_request(dict(zip(offices, decisions)), status=stored)
    make_request({offices[0]: A.PENDING} if offices else {})           # a clean neighbour stays unnamed
    [v] = found()
    assert (v.rule, v.model, v.pk) == (RULE_STATUS, "ClearanceRequest", request.pk)
    assert v.label == f"{request.student.registration_number} ({request.cycle.name})"
    assert f"status is {stored}" in v.message and f"make it {derived}" in v.message


def test_the_message_counts_the_approvals_by_status():
    a, b, c = office("LIB"), office("SPT"), office("SCH")
    make_request({a: A.REJECTED, b: A.PENDING, c: A.PENDING}, status=R.PENDING)
    [v] = found()
    assert "approvals (2 pending, 1 rejected)" in v.message


def test_a_revoked_request_without_its_date_is_named():
    request = make_request({office("LIB"): A.APPROVED}, status=R.REVOKED, revoked_at=None)
    [v] = found()
    assert (v.rule, v.pk) == (RULE_STATUS, request.pk)
    assert "revoked, but no revocation date" in v.message


def test_a_completed_request_without_its_date_is_named():
    # the database refuses it (request_completed_has_date), so the rule is driven directly
    assert "no completion date" in request_status_problem(R.COMPLETED, {A.APPROVED: 2}, completed_at=None)
    assert request_status_problem(R.COMPLETED, {A.REJECTED: 1}, completed_at=timezone.now()) is None


# --- 2. rule 5: holds follow the stored balance ---------------------------------------------------

def test_balances_and_their_holds_are_clean(fin, lib):
    owing = factories.StudentFactory()
    balance(owing, "12500.00")
    import_hold(owing, Decimal("12500"))
    balance(factories.StudentFactory(), "0")                       # nothing owed, no hold
    balance(factories.StudentFactory(), "-1200")                   # a credit, no hold
    factories.StudentFactory()                                     # no finance record, no hold
    paid = factories.StudentFactory()
    balance(paid, "0")
    import_hold(paid, Decimal("300"), status=H.RELEASED)           # released: not active
    by_hand = factories.StudentFactory()
    balance(by_hand, "0")
    factories.HoldFactory(student=by_hand, department=fin, source=S.MANUAL, amount=Decimal("50"))  # not the import's
    other = factories.StudentFactory()
    balance(other, "0")
    import_hold(other, Decimal("80"), department=lib)              # another office's: not FIN
    assert found() == []


def test_a_balance_above_the_threshold_without_its_hold_is_named(fin):
    student = factories.StudentFactory()
    balance(student, "12500")
    factories.HoldFactory(student=student, department=fin, source=S.MANUAL, amount=Decimal("12500"))
    [v] = found()
    assert (v.rule, v.model, v.pk, v.label) == (RULE_BALANCE_HOLD, "Student", student.pk,
                                               student.registration_number)
    assert "balance KES 12,500.00 is above the threshold (KES 0.00)" in v.message
    assert "no active FIN hold from the balance import" in v.message


@pytest.mark.parametrize("amount", [Decimal("10000"), None])
def test_a_hold_of_another_amount_is_named(fin, amount):
    student = factories.StudentFactory()
    balance(student, "12500")
    hold = import_hold(student, amount)
    [v] = found()
    assert (v.rule, v.model, v.pk, v.label) == (RULE_BALANCE_HOLD, "Hold", hold.pk, student.registration_number)
    assert "balance KES 12,500.00" in v.message
    assert f"hold #{hold.pk} is for {'KES 10,000.00' if amount else 'no amount'}" in v.message


@pytest.mark.parametrize("stored, why", [
    ("0", "balance KES 0.00 is not above the threshold"),
    ("-500", "balance -KES 500.00 is not above the threshold"),
    (None, "there is no finance record (no balance)"),
])
def test_an_import_hold_where_none_should_be_is_named(fin, stored, why):
    student = factories.StudentFactory()
    if stored is not None:
        balance(student, stored)
    hold = import_hold(student, Decimal("700"))
    [v] = found()
    assert (v.rule, v.model, v.pk, v.label) == (RULE_BALANCE_HOLD, "Hold", hold.pk, student.registration_number)
    assert why in v.message and f"hold #{hold.pk} of KES 700.00 is active" in v.message


def test_more_than_one_import_hold_is_named():
    # one_active_import_hold_per_student_department refuses a second one, so the rule is driven directly
    [(model, pk, message)] = balance_hold_problems(Decimal("900"), [(8, Decimal("900")), (5, Decimal("400"))],
                                                   Decimal("0"))
    assert (model, pk) == ("Student", None)
    assert "2 active FIN import holds (#5 of KES 400.00, #8 of KES 900.00); exactly one expected" in message
    # at or below the threshold every one of them is wrong, each on its own line
    assert [p[1] for p in balance_hold_problems(Decimal("0"), [(5, None), (8, Decimal("1"))], Decimal("0"))] == [5, 8]


def test_the_threshold_is_the_setting(fin, settings):
    settings.FINANCE_HOLD_THRESHOLD = 1000
    below, above, held_below = (factories.StudentFactory() for _ in range(3))
    balance(below, "1000")                                          # at the threshold: no hold wanted
    balance(above, "1000.01")
    balance(held_below, "600")
    hold = import_hold(held_below, Decimal("600"))
    assert {(v.model, v.pk) for v in found()} == {("Student", above.pk), ("Hold", hold.pk)}


def test_no_active_finance_office_no_balance_rule(fin):
    student = factories.StudentFactory()
    balance(student, "12500")
    fin.is_active = False
    fin.save()
    assert found() == []


# --- 3. rule 5: the finance decision follows the holds --------------------------------------------

@pytest.fixture
def staged(fin, lib):
    """FIN in stage 2, after LIB in stage 1."""
    fin.stage = 2
    fin.save()
    return fin, lib


def _fin_case(fin, lib, fin_status, *, held, lib_status=A.APPROVED):
    student = factories.StudentFactory()
    balance(student, "0")
    if held:
        factories.HoldFactory(student=student, department=fin, source=S.MANUAL, reason="Damaged lab coat")
    request = make_request({lib: lib_status, fin: fin_status, spt(): A.PENDING}, student=student)
    return ClearanceApproval.objects.get(request=request, department=fin)


@pytest.mark.parametrize("fin_status, held, lib_status, wrong", [
    # no FIN hold, earlier stage cleared: approved, or waived
    (A.APPROVED, False, A.APPROVED, None),
    (A.WAIVED, False, A.APPROVED, None),
    (A.PENDING, False, A.APPROVED, "pending, though no FIN hold is active: should be approved"),
    (A.REJECTED, False, A.WAIVED, "rejected, though no FIN hold is active: should be approved"),
    # a FIN hold: rejected, or waived (the office's override)
    (A.REJECTED, True, A.APPROVED, None),
    (A.WAIVED, True, A.APPROVED, None),
    (A.APPROVED, True, A.APPROVED, "approved, though a FIN hold is active: should be rejected"),
    (A.PENDING, True, A.PENDING, "pending, though a FIN hold is active: should be rejected"),
    # no FIN hold but the earlier stage is open: the approve is not due yet; one made before the
    # stage re-opened (LIB rejected after FIN was approved) stands
    (A.PENDING, False, A.PENDING, None),
    (A.REJECTED, False, A.REJECTED, None),
    (A.APPROVED, False, A.REJECTED, None),
])
def test_the_finance_decision_follows_the_holds(staged, fin_status, held, lib_status, wrong):
    approval = _fin_case(*staged, fin_status, held=held, lib_status=lib_status)
    violations = found()
    if wrong is None:
        assert violations == []
    else:
        [v] = violations
        assert (v.rule, v.model, v.pk) == (RULE_FINANCE_DECISION, "ClearanceApproval", approval.pk)
        assert v.label == (f"FIN approval of {approval.request.student.registration_number} "
                           f"({approval.request.cycle.name})")
        assert v.message.startswith(wrong)


def test_the_message_names_the_holds(fin, lib):
    student = factories.StudentFactory()
    balance(student, "4200")
    imported = import_hold(student, Decimal("4200"))
    manual = factories.HoldFactory(student=student, department=fin, source=S.MANUAL, reason="Damaged lab coat")
    make_request({lib: A.APPROVED, fin: A.APPROVED, spt(): A.PENDING}, student=student)
    [v] = found()
    assert v.message == (f"approved, though a FIN hold is active: should be rejected (holds: "
                         f"#{imported.pk} balance_import KES 4,200.00; #{manual.pk} manual “Damaged lab coat”)")


def test_same_stage_offices_do_not_hold_finance_back(fin, lib):
    # all in stage 1 (fully parallel): LIB pending does not excuse a pending FIN approval
    approval = _fin_case(fin, lib, A.PENDING, held=False, lib_status=A.PENDING)
    assert [v.pk for v in found(RULE_FINANCE_DECISION)] == [approval.pk]


def test_holds_that_do_not_count(fin, lib):
    student = factories.StudentFactory()
    balance(student, "0")
    factories.HoldFactory(student=student, department=lib, reason="Book")                  # not FIN's
    factories.HoldFactory(student=student, department=fin, status=H.RELEASED, released_at=timezone.now())
    make_request({lib: A.REJECTED, fin: A.APPROVED, spt(): A.PENDING}, student=student)
    assert found() == []


@pytest.mark.parametrize("closed", [R.COMPLETED, R.REVOKED])
def test_completed_and_revoked_requests_are_left_alone(fin, lib, closed):
    student = factories.StudentFactory()
    balance(student, "0")
    factories.HoldFactory(student=student, department=fin, reason="Later hold")
    make_request({lib: A.APPROVED, fin: A.APPROVED}, student=student, status=closed)
    other = factories.StudentFactory()
    balance(other, "0")
    make_request({lib: A.APPROVED, fin: A.PENDING}, student=other, status=closed)
    assert found() == []


def test_without_auto_clear_the_decision_is_the_office_s(fin, lib, settings):
    settings.FINANCE_AUTO_CLEAR = False
    _fin_case(fin, lib, A.PENDING, held=False)
    _fin_case(fin, lib, A.APPROVED, held=True)
    assert found() == []


# --- the checker as a whole -------------------------------------------------------------------------

def test_rules_are_reported_in_order_each_by_id(fin, lib):
    wrong_status = make_request({lib: A.REJECTED}, status=R.PENDING)
    owing = factories.StudentFactory()
    balance(owing, "99")
    pending_fin = _fin_case(fin, lib, A.PENDING, held=False)
    later_pending_fin = _fin_case(fin, lib, A.PENDING, held=False)
    assert [(v.rule, v.pk) for v in consistency_violations()] == [
        (RULE_STATUS, wrong_status.pk), (RULE_BALANCE_HOLD, owing.pk),
        (RULE_FINANCE_DECISION, pending_fin.pk), (RULE_FINANCE_DECISION, later_pending_fin.pk)]
    assert len(consistency_violations(limit=2)) == 2
    assert str(consistency_violations(limit=1)[0]) == (
        f"request-status: {wrong_status.student.registration_number} ({wrong_status.cycle.name}): "
        "status is pending, but its approvals (1 rejected) make it on_hold")


def _world(n: int, fin, lib):
    """n students, each with a request (LIB and FIN) and a finance record; of every eight, one
    breaks each invariant in its own way and three are clean."""
    for i in range(n):
        kind = i % 8
        student = factories.StudentFactory()
        owes = kind in (1, 2, 4, 5)
        balance(student, "2500" if owes else "0")
        if owes and kind != 1:                      # 1: no hold for the balance
            import_hold(student, Decimal("1") if kind == 2 else Decimal("2500"))   # 2: another amount
        fin_status = A.REJECTED if owes else A.APPROVED
        if kind == 3:
            fin_status = A.PENDING                  # 3: pending with no hold
        if kind == 4:
            fin_status = A.APPROVED                 # 4: approved though held
        make_request({lib: A.APPROVED, fin: fin_status, spt(): A.PENDING}, student=student,
                     status=R.PENDING if kind == 0 else None)   # 0: a status not derived


def test_chunks_see_every_row_once(fin, lib, monkeypatch):
    _world(23, fin, lib)
    whole = consistency_violations()
    assert {v.rule for v in whole} == {RULE_STATUS, RULE_BALANCE_HOLD, RULE_FINANCE_DECISION}
    monkeypatch.setattr(consistency, "CHUNK", 3)
    assert consistency_violations() == whole
    monkeypatch.setattr(consistency, "CHUNK", 1)
    assert consistency_violations() == whole


def test_queries_do_not_grow_with_rows(fin, lib, django_assert_max_num_queries):
    def queries(n):
        ClearanceApproval.objects.all().delete()
        ClearanceRequest.objects.all().delete()
        Hold.objects.all().delete()
        FinanceRecord.objects.all().delete()
        _world(n, fin, lib)
        with CaptureQueriesContext(connection) as ctx:
            violations = consistency_violations()
        assert {v.rule for v in violations} == {RULE_STATUS, RULE_BALANCE_HOLD, RULE_FINANCE_DECISION}
        assert len(violations) == n // 8 * 6                   # kind 1 breaks two: no hold, and rejected
        assert sum("(holds: #" in v.message for v in violations) == n // 8   # the details were read
        return len(ctx.captured_queries)

    small, large = queries(8), queries(8 * 25)
    assert small == large
    with django_assert_max_num_queries(11):          # one more per rule 4 (stage open), none per row
        consistency_violations()


def test_assert_consistent_lists_every_violation(fin, lib):
    assert_consistent()                                             # an empty world is consistent
    make_request({lib: A.REJECTED}, status=R.PENDING)
    owing = factories.StudentFactory()
    balance(owing, "99")
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_consistent()
    text = str(failure.value)
    assert text.startswith("2 consistency violations:")
    assert "request-status: " in text and f"balance-hold: {owing.registration_number}: " in text


def test_the_checker_agrees_with_the_services(offices, open_request, registry_user, superuser):
    """Worlds the services build are clean: a balance imported, its hold placed, finance following."""
    import io

    import openpyxl
    from django.core.files.base import ContentFile

    from core.services.balances import balances_import_apply, balances_import_preview
    owing, clear = factories.StudentFactory(), factories.StudentFactory()
    for student in (owing, clear):
        open_request(student)
    wb = openpyxl.Workbook()
    for row in (["Reg No", "Balance"], [owing.registration_number, 3000], [clear.registration_number, 0]):
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    bi = balances_import_preview(file=ContentFile(out.getvalue(), name="b.xlsx"), acting_user=None, system=True)
    balances_import_apply(balance_import=bi, acting_user=None, system=True)
    assert_consistent()
    assert set(ClearanceApproval.objects.filter(department__code="FIN").values_list("status", flat=True)) == {
        A.REJECTED, A.APPROVED}


@pytest.mark.django_db(transaction=True)
def test_one_snapshot_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the snapshot is PostgreSQL's REPEATABLE READ")
    with consistency_snapshot():
        assert connection.in_atomic_block
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone()[0] == "repeatable read"
            cursor.execute("SHOW transaction_read_only")
            assert cursor.fetchone()[0] == "on"
    assert not connection.in_atomic_block


def test_no_import_hold_above_the_threshold_is_right_only_after_a_release_for_a_payment():
    assert balance_hold_problems(Decimal("900"), [], Decimal("0"), paid_release=True) == []
    [(model, _, message)] = balance_hold_problems(Decimal("900"), [], Decimal("0"))
    assert model == "Student" and "no active FIN hold" in message


def test_an_import_hold_released_by_hand_is_still_a_violation(db, offices, finance_user):
    """Only a release for a payment excuses the missing hold; the latest import hold decides."""
    from core.models import FinanceRecord, Hold
    s = factories.StudentFactory()
    FinanceRecord.objects.create(student=s, tuition_balance=Decimal("500"))
    old = factories.HoldFactory(student=s, department=offices["FIN"], source=Hold.Source.BALANCE_IMPORT,
                                amount=Decimal("500"), status=Hold.Status.RELEASED,
                                released_for_payment=factories.PaymentFactory(student=s))
    assert not [v for v in consistency_violations() if v.rule == "balance-hold"]
    factories.HoldFactory(student=s, department=offices["FIN"], source=Hold.Source.BALANCE_IMPORT,
                          amount=Decimal("500"), status=Hold.Status.RELEASED)     # a later import's, released
    assert [v.label for v in consistency_violations() if v.rule == "balance-hold"] == [s.registration_number]
    assert old.pk


# --- 4. the stored "stage open" -----------------------------------------------------------------------

def test_a_stored_stage_open_that_disagrees_with_the_earlier_stages_is_reported_both_ways():
    lib, reg = office("LIB"), office("REG", stage=2)
    closed = make_request({lib: A.PENDING, reg: A.PENDING})
    opened = make_request({lib: A.APPROVED, reg: A.PENDING})
    assert found() == []                                    # the factory stores it as the services do
    ClearanceApproval.objects.filter(request=closed, department=reg).update(stage_open=True)
    ClearanceApproval.objects.filter(request=opened, department=reg).update(stage_open=False)
    messages = {(v.rule, v.pk): v.message for v in found()}
    assert messages == {
        (RULE_STAGE_OPEN, ClearanceApproval.objects.get(request=closed, department=reg).pk):
            "stored as waiting (stage open), but an earlier stage still has an item to clear",
        (RULE_STAGE_OPEN, ClearanceApproval.objects.get(request=opened, department=reg).pk):
            "stored as not yet open, but every earlier stage is cleared"}

