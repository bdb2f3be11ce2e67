"""A verified payment that covers the balance of the student's last import releases the FIN hold
that import placed (holds_release_paid): the reason names the payment and the import, the FIN
approval follows, the consistency checker agrees, and the next import is authoritative."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from core.models import ClearanceApproval, FinanceRecord, Hold, Notification
from core.selectors.finance import payments_hold_coverage
from core.services.balances import balances_import_apply, balances_import_preview
from core.services.holds import hold_release_paid, holds_release_paid
from tests import factories
from tests.conftest import approval_of
from tests.consistency import assert_consistent

A = ClearanceApproval.Status
H = Hold.Status


def apply_balances(user, balances: dict):
    rows = "\n".join(f"{reg},{amount}" for reg, amount in balances.items())
    bi = balances_import_preview(file=ContentFile(f"Reg No,Balance\n{rows}\n".encode(), name="b.csv"),
                                 acting_user=user)
    return balances_import_apply(balance_import=bi, acting_user=user)


@pytest.fixture
def owing(student, clearance, finance_user):
    """The fixture student (open request) owes 12,500 by an import: FIN held, rejected."""
    bi = apply_balances(finance_user, {student.registration_number: "12500"})
    assert approval_of(clearance, "FIN").status == A.REJECTED
    return bi


def pay(student, amount, *, verified=True, after=None, by=None, code=None):
    paid_at = (after or timezone.now()) + datetime.timedelta(minutes=5)
    return factories.PaymentFactory(student=student, amount=Decimal(amount), paid_at=paid_at,
                                    verified_at=timezone.now() if verified else None, verified_by=by,
                                    **({"transaction_code": code} if code else {}))


def active_import_hold(student):
    return Hold.objects.filter(student=student, department__code="FIN", source=Hold.Source.BALANCE_IMPORT,
                               status=H.ACTIVE).first()


def test_a_covering_payment_releases_the_import_hold_and_the_fin_approval_follows(
        owing, student, clearance, finance_user, django_capture_on_commit_callbacks):
    hold = active_import_hold(student)
    payment = pay(student, "12500", after=owing.applied_at, by=finance_user, code="QK12AB34CD")
    with django_capture_on_commit_callbacks(execute=True):
        released = hold_release_paid(payment=payment, acting_user=finance_user)
    assert released.pk == hold.pk and released.status == H.RELEASED and released.released_by == finance_user
    assert released.released_for_payment == payment
    assert released.release_reason == f"released: payment QK12AB34CD covers the balance of import #{owing.pk}"
    assert Hold.history.filter(id=hold.pk).latest("history_date").history_change_reason == released.release_reason
    assert approval_of(clearance, "FIN").status == A.APPROVED          # FINANCE_AUTO_CLEAR follows
    assert Notification.objects.filter(user=student.user, title="FIN released a hold").exists()
    assert_consistent()        # no active hold above the threshold: the payment covers it


def test_the_next_import_places_the_hold_again_when_the_finance_system_still_shows_a_balance(
        owing, student, clearance, finance_user):
    hold_release_paid(payment=pay(student, "12500", after=owing.applied_at, by=finance_user),
                      acting_user=finance_user)
    apply_balances(finance_user, {student.registration_number: "12500"})     # the same balance: still owed
    assert active_import_hold(student).amount == Decimal("12500")
    assert approval_of(clearance, "FIN").status == A.REJECTED
    assert_consistent()


def test_several_payments_since_the_import_together_cover_it(owing, student, finance_user):
    pay(student, "5000", after=owing.applied_at, by=finance_user)
    second = pay(student, "7500", after=owing.applied_at, by=finance_user)
    result = holds_release_paid(payment_ids=[second.pk], acting_user=finance_user)
    assert result.done == [second.pk] and active_import_hold(student) is None


@pytest.mark.parametrize("case,words", [
    ("unverified", "not verified yet"),
    ("short", "does not cover the balance: import #{bi} shows KES 12,500.00, verified payments since then come to "
              "KES 12,000.00, KES 500.00 is still owed"),
    ("before", "paid before import #{bi} was applied"),
])
def test_refused_with_a_reason_and_nothing_changes(owing, student, clearance, finance_user, case, words):
    if case == "unverified":
        payment = pay(student, "12500", after=owing.applied_at, verified=False)
    elif case == "short":
        payment = pay(student, "12000", after=owing.applied_at, by=finance_user)
    else:
        payment = pay(student, "12500", after=owing.applied_at - datetime.timedelta(days=1), by=finance_user)
    result = holds_release_paid(payment_ids=[payment.pk], acting_user=finance_user)
    assert result.done == [] and words.format(bi=owing.pk) in result.refused[0].reason
    assert active_import_hold(student) is not None and approval_of(clearance, "FIN").status == A.REJECTED


def test_refused_when_there_is_no_import_hold(student, clearance, finance_user, offices):
    factories.HoldFactory(student=student, department=offices["FIN"], reason="Library fine passed on")  # by hand
    payment = pay(student, "100", by=finance_user)
    with pytest.raises(ValidationError, match="has no active FIN hold from a balance import"):
        hold_release_paid(payment=payment, acting_user=finance_user)


def test_a_payment_of_a_student_with_a_hand_placed_fin_hold_releases_only_the_import_hold(
        owing, student, clearance, finance_user, offices):
    manual = factories.HoldFactory(student=student, department=offices["FIN"], reason="Cheque bounced")
    hold_release_paid(payment=pay(student, "12500", after=owing.applied_at, by=finance_user), acting_user=finance_user)
    assert Hold.objects.get(pk=manual.pk).status == H.ACTIVE
    assert approval_of(clearance, "FIN").status == A.REJECTED          # still held by the office's own hold


def test_two_payments_of_one_student_in_one_selection_release_once(owing, student, finance_user):
    a = pay(student, "12500", after=owing.applied_at, by=finance_user)
    b = pay(student, "12500", after=owing.applied_at, by=finance_user)
    result = holds_release_paid(payment_ids=[a.pk, b.pk, 999999], acting_user=finance_user)
    assert result.done == [a.pk]
    assert {r.pk: r.reason for r in result.refused} == {
        b.pk: f"the FIN hold was released for payment {a.transaction_code} of the same selection",
        999999: "no such payment"}


def test_a_replay_is_refused(owing, student, finance_user):
    payment = pay(student, "12500", after=owing.applied_at, by=finance_user)
    hold_release_paid(payment=payment, acting_user=finance_user)
    history = Hold.history.count()
    with pytest.raises(ValidationError, match="no active FIN hold"):
        hold_release_paid(payment=payment, acting_user=finance_user)
    assert Hold.history.count() == history


@pytest.mark.parametrize("who", ["lib_reviewer", "registry_user"])
def test_only_finance_officers(owing, student, finance_user, request, who):
    payment = pay(student, "12500", after=owing.applied_at, by=finance_user)
    with pytest.raises(ValidationError, match="Only finance officers"):
        holds_release_paid(payment_ids=[payment.pk], acting_user=request.getfixturevalue(who))
    assert active_import_hold(student) is not None


def test_a_finance_officer_who_does_not_review_fin_is_refused_unseen(owing, student, make_user, finance_user):
    from core import permissions
    other = make_user(permissions.FINANCE)            # the role, but not the FIN office's rights
    payment = pay(student, "12500", after=owing.applied_at, by=finance_user)
    result = holds_release_paid(payment_ids=[payment.pk], acting_user=other)
    assert result.done == [] and result.unseen == [payment.pk] and active_import_hold(student) is not None


def test_coverage_is_read_in_a_constant_number_of_queries(owing, finance_user, django_assert_max_num_queries):
    students = [factories.StudentFactory() for _ in range(15)]
    for s in students:
        FinanceRecord.objects.update_or_create(student=s, defaults={"tuition_balance": 100, "last_import": owing})
    payments = [pay(s, "100", after=owing.applied_at, by=finance_user) for s in students]
    for p in payments:
        p.student  # noqa: B018 (loaded, as the list's select_related does)
    with django_assert_max_num_queries(3):
        coverage = payments_hold_coverage(payments)
    assert len(coverage) == 15


def test_an_import_that_found_the_balance_unchanged_is_still_the_one_in_force(student, clearance, finance_user):
    """The balance was stored before (no import on the record); the import finds it unchanged, so
    it leaves the record alone but places the hold: that import's balance is what the payment covers."""
    FinanceRecord.objects.create(student=student, tuition_balance=Decimal("12500"))
    bi = apply_balances(finance_user, {student.registration_number: "12500"})
    assert FinanceRecord.objects.get(student=student).last_import is None
    assert active_import_hold(student).balance_import == bi
    payment = pay(student, "12500", after=bi.applied_at, by=finance_user)
    assert payments_hold_coverage([payment])[payment.pk].balance_import == bi
    assert hold_release_paid(payment=payment, acting_user=finance_user).release_reason.endswith(f"import #{bi.pk}")
