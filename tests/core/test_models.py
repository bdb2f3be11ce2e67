"""Database constraints and the small derived fields of core/models.py."""
from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import (ClearanceApproval, ClearanceRequest, Hold, Payment, Student, admission_year_from,
                         normalize_registration_number)
from tests import factories

pytestmark = pytest.mark.django_db

A = ClearanceApproval.Status
R = ClearanceRequest.Status


@contextlib.contextmanager
def raises_integrity():
    """IntegrityError inside a savepoint, so the test's transaction stays usable on PostgreSQL."""
    with pytest.raises(IntegrityError), transaction.atomic():
        yield


# --- ClearanceApproval ----------------------------------------------------------------------------

def test_one_approval_per_request_and_department():
    approval = factories.ClearanceApprovalFactory()
    with raises_integrity():
        ClearanceApproval.objects.create(request=approval.request, department=approval.department)
    assert ClearanceApproval.objects.filter(request=approval.request).count() == 1


def test_the_same_department_may_appear_on_two_requests():
    department = factories.DepartmentFactory(code="LIB")
    factories.ClearanceApprovalFactory(department=department)
    factories.ClearanceApprovalFactory(department=department)
    assert ClearanceApproval.objects.filter(department=department).count() == 2


@pytest.mark.parametrize("status", [A.REJECTED, A.WAIVED])
def test_reject_or_waive_needs_a_reason(status):
    with raises_integrity():
        factories.ClearanceApprovalFactory(status=status, reason="", decided_at=timezone.now())


@pytest.mark.parametrize("status", [A.REJECTED, A.WAIVED])
def test_reject_or_waive_with_a_reason_is_stored(status):
    approval = factories.ClearanceApprovalFactory(status=status, reason="Book not returned",
                                                  decided_at=timezone.now())
    assert ClearanceApproval.objects.get(pk=approval.pk).status == status


def test_a_decision_needs_a_date():
    with raises_integrity():
        factories.ClearanceApprovalFactory(status=A.APPROVED, decided_at=None)


# --- ClearanceRequest -----------------------------------------------------------------------------

def test_one_open_request_per_student_per_cycle():
    request = factories.ClearanceRequestFactory()
    with raises_integrity():
        factories.ClearanceRequestFactory(student=request.student, cycle=request.cycle)


def test_a_revoked_request_allows_a_new_one_in_the_same_cycle():
    revoked = factories.ClearanceRequestFactory(status=R.REVOKED, revoked_reason="Fees unpaid",
                                                revoked_at=timezone.now())
    new = factories.ClearanceRequestFactory(student=revoked.student, cycle=revoked.cycle)
    assert set(ClearanceRequest.objects.filter(student=revoked.student).values_list("status", flat=True)) == {
        R.REVOKED, R.PENDING}
    # …but still only one that is not revoked
    with raises_integrity():
        factories.ClearanceRequestFactory(student=new.student, cycle=new.cycle)


def test_the_same_student_may_have_requests_in_two_cycles():
    request = factories.ClearanceRequestFactory()
    factories.ClearanceRequestFactory(student=request.student)
    assert ClearanceRequest.objects.filter(student=request.student).count() == 2


def test_completed_request_needs_a_completion_date():
    with raises_integrity():
        factories.ClearanceRequestFactory(status=R.COMPLETED, completed_at=None)


def test_revoked_request_needs_a_reason():
    with raises_integrity():
        factories.ClearanceRequestFactory(status=R.REVOKED, revoked_reason="")


# --- Student --------------------------------------------------------------------------------------

def test_registration_number_is_unique():
    student = factories.StudentFactory(registration_number="SCE/CS/0001/2022")
    with raises_integrity():
        factories.StudentFactory(registration_number="SCE/CS/0001/2022", school=student.school)


def test_registration_number_is_unique_whatever_the_case_and_spaces_typed():
    factories.StudentFactory(registration_number="SCE/CS/0001/2022")
    with raises_integrity():
        factories.StudentFactory(registration_number=" sce/cs/0001/2022 ")


def test_registration_number_is_stored_upper_case_and_trimmed_and_admission_year_derived():
    student = factories.StudentFactory(registration_number="  sce/cs/ 0042/2021 ")
    stored = Student.objects.get(pk=student.pk)
    assert stored.registration_number == "SCE/CS/0042/2021"
    assert stored.admission_year == 2021


def test_admission_year_follows_a_changed_registration_number():
    student = factories.StudentFactory(registration_number="SCE/CS/0001/2022")
    student.registration_number = "sce/cs/0001/2019"
    student.save()
    assert Student.objects.values_list("registration_number", "admission_year").get(pk=student.pk) == (
        "SCE/CS/0001/2019", 2019)


def test_malformed_registration_number_is_refused_by_the_database():
    with raises_integrity():
        factories.StudentFactory(registration_number="12345")


def test_student_clean_refuses_malformed_registration_number_with_an_example():
    student = factories.StudentFactory.build(registration_number="SCE-CS-1-22")
    with pytest.raises(ValidationError) as exc:
        student.clean()
    assert "SCE/CS/0001/2022" in str(exc.value)


def test_student_clean_refuses_a_department_of_another_school():
    other = factories.AcademicDepartmentFactory(school=factories.SchoolFactory(code="SPA"))
    student = factories.StudentFactory()
    student.academic_department = other
    with pytest.raises(ValidationError) as exc:
        student.clean()
    assert "academic_department" in exc.value.message_dict


def test_registration_number_helpers():
    assert normalize_registration_number(" sce / cs/0001/2022\n") == "SCE/CS/0001/2022"
    assert admission_year_from("SCE/CS/0001/2022") == 2022
    assert admission_year_from("nonsense") is None


# --- Payment --------------------------------------------------------------------------------------

def test_payment_code_is_unique_per_method():
    payment = factories.PaymentFactory(transaction_code="TL44LDQBWZ")
    with raises_integrity():
        factories.PaymentFactory(transaction_code="TL44LDQBWZ", student=payment.student)


def test_the_same_code_may_be_used_by_another_method():
    factories.PaymentFactory(transaction_code="TL44LDQBWZ")
    factories.PaymentFactory(transaction_code="TL44LDQBWZ", method=Payment.Method.BANK)
    assert Payment.objects.filter(transaction_code="TL44LDQBWZ").count() == 2


@pytest.mark.parametrize("code", ["TL44LDQBW", "TL44LDQBWZX", "tl44ldqbwz", "TL44-DQBWZ"])
def test_mpesa_code_format_is_checked_by_the_database(code):
    with raises_integrity():
        factories.PaymentFactory(transaction_code=code)


def test_a_bank_reference_need_not_look_like_an_mpesa_code():
    payment = factories.PaymentFactory(method=Payment.Method.BANK, transaction_code="FT-2026/0001")
    assert Payment.objects.get(pk=payment.pk).transaction_code == "FT-2026/0001"


def test_payment_amount_must_be_positive():
    with raises_integrity():
        factories.PaymentFactory(amount=Decimal("0"))


# --- Hold -----------------------------------------------------------------------------------------

def test_hold_amount_cannot_be_negative():
    with raises_integrity():
        factories.HoldFactory(amount=Decimal("-1.00"))


@pytest.mark.parametrize("amount", [None, Decimal("0"), Decimal("12500.00")])
def test_hold_amount_may_be_empty_zero_or_positive(amount):
    hold = factories.HoldFactory(amount=amount)
    assert Hold.objects.get(pk=hold.pk).amount == amount


def test_one_active_import_hold_per_student_and_department():
    hold = factories.HoldFactory(source=Hold.Source.BALANCE_IMPORT, amount=Decimal("100"))
    with raises_integrity():
        factories.HoldFactory(source=Hold.Source.BALANCE_IMPORT, student=hold.student,
                              department=hold.department)
    # a manual one beside it is fine
    factories.HoldFactory(student=hold.student, department=hold.department)


def test_hold_waive_needs_a_reason():
    with raises_integrity():
        factories.HoldFactory(status=Hold.Status.WAIVED, release_reason="")


# --- others ---------------------------------------------------------------------------------------

def test_department_stage_is_positive():
    with raises_integrity():
        factories.DepartmentFactory(stage=0)


def test_cycle_closes_after_it_opens():
    today = timezone.localdate()
    with raises_integrity():
        factories.ClearanceCycleFactory(opens_on=today, closes_on=today - timezone.timedelta(days=1))


def test_cycle_is_open_between_its_dates_unless_closed_early():
    today = timezone.localdate()
    day = timezone.timedelta(days=1)
    assert factories.ClearanceCycleFactory().is_open
    assert not factories.ClearanceCycleFactory(is_closed=True).is_open
    assert not factories.ClearanceCycleFactory(opens_on=today + day, closes_on=today + 2 * day).is_open
    assert not factories.ClearanceCycleFactory(opens_on=today - 2 * day, closes_on=today - day).is_open


def test_gown_refund_within_deposit():
    with raises_integrity():
        factories.GownIssuanceFactory(deposit=Decimal("2000"), refunded_amount=Decimal("2500"))


def test_one_gown_out_per_student():
    gown = factories.GownIssuanceFactory()
    with raises_integrity():
        factories.GownIssuanceFactory(student=gown.student)


def test_delegation_not_to_self():
    user = factories.UserFactory()
    with raises_integrity():
        factories.DelegationFactory(from_user=user, to_user=user)


def test_every_factory_builds_a_saved_row():
    for factory in (factories.UserFactory, factories.SchoolFactory, factories.AcademicDepartmentFactory,
                    factories.ProgrammeFactory, factories.StudentFactory, factories.DepartmentFactory,
                    factories.ClearanceCycleFactory, factories.ClearanceRequestFactory,
                    factories.ClearanceApprovalFactory, factories.HoldFactory, factories.BalanceImportFactory,
                    factories.FinanceRecordFactory, factories.PaymentFactory, factories.GownIssuanceFactory,
                    factories.NotificationFactory, factories.CertificateFactory, factories.DelegationFactory):
        obj = factory()
        assert type(obj).objects.filter(pk=obj.pk).exists(), factory.__name__


# --- overdue (rule 7) -----------------------------------------------------------------------------

def test_a_pending_approval_waiting_longer_than_the_sla_is_overdue():
    department = factories.DepartmentFactory(sla_days=7)
    now = timezone.now()
    late = factories.ClearanceApprovalFactory(department=department, waiting_since=now - timezone.timedelta(days=8))
    on_time = factories.ClearanceApprovalFactory(department=department,
                                                 waiting_since=now - timezone.timedelta(days=7))
    decided = factories.ClearanceApprovalFactory(department=department, status=A.APPROVED,
                                                 waiting_since=now - timezone.timedelta(days=30),
                                                 decided_at=now - timezone.timedelta(days=20))
    assert (late.days_waiting, late.is_overdue) == (8, True)
    assert (on_time.days_waiting, on_time.is_overdue) == (7, False)
    assert (decided.days_waiting, decided.is_overdue) == (10, False)
