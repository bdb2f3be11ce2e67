"""Gowns (workflow rule 6): issued only to cleared students; deposits refunded only after return."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import GownIssuance
from core.services.gowns import gown_deposit_refund, gown_issue, gown_return
from tests import factories

pytestmark = pytest.mark.django_db

D = GownIssuance.DepositStatus


def _in(days):
    return timezone.localdate() + datetime.timedelta(days=days)


@pytest.fixture
def store_user(make_reviewer):
    return make_reviewer("GOWN")


@pytest.fixture
def cleared_student(student, clearance, complete_request):
    complete_request(clearance)
    return student


@pytest.fixture
def gown(cleared_student, store_user):
    return gown_issue(student=cleared_student, gown_code="g-001", size="M", expected_return_on=_in(10),
                      acting_user=store_user)


def test_gown_is_refused_before_clearance_is_completed(clearance, student, store_user):
    with pytest.raises(ValidationError) as exc:
        gown_issue(student=student, gown_code="G-001", size="M", expected_return_on=_in(10), acting_user=store_user)
    assert exc.value.messages[0].startswith(f"{student.registration_number} is not cleared yet")
    assert not GownIssuance.objects.exists()


def test_gown_is_issued_after_completion(cleared_student, store_user):
    gown = gown_issue(student=cleared_student, gown_code=" g-001 ", size="L", expected_return_on=_in(10),
                      acting_user=store_user, deposit=Decimal("2500"))
    stored = GownIssuance.objects.get(pk=gown.pk)
    assert (stored.gown_code, stored.size, stored.deposit, stored.deposit_status, stored.issued_by) == (
        "G-001", "L", Decimal("2500.00"), D.HELD, store_user)
    assert stored.history.get().history_change_reason == "Gown G-001 issued"


def test_gown_without_completion_when_the_setting_is_off(student, store_user, settings):
    settings.GOWN_REQUIRES_COMPLETED = False
    gown_issue(student=student, gown_code="G-001", size="M", expected_return_on=_in(10), acting_user=store_user)
    assert GownIssuance.objects.filter(student=student).exists()


def test_one_gown_out_per_student(gown, cleared_student, store_user):
    with pytest.raises(ValidationError, match="already has a gown that has not been returned"):
        gown_issue(student=cleared_student, gown_code="G-002", size="M", expected_return_on=_in(10),
                   acting_user=store_user)


def test_a_gown_out_cannot_be_issued_again(gown, store_user, settings):
    settings.GOWN_REQUIRES_COMPLETED = False
    with pytest.raises(ValidationError, match="Gown G-001 is out with another student"):
        gown_issue(student=factories.StudentFactory(), gown_code="G-001", size="M", expected_return_on=_in(10),
                   acting_user=store_user)


def test_a_returned_gown_can_be_issued_again(gown, store_user, settings):
    settings.GOWN_REQUIRES_COMPLETED = False
    gown_return(gown=gown, acting_user=store_user)
    gown_issue(student=factories.StudentFactory(), gown_code="G-001", size="M", expected_return_on=_in(10),
               acting_user=store_user)
    assert GownIssuance.objects.filter(gown_code="G-001").count() == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(gown_code=" "), "Give the gown's code"),
    (dict(deposit=Decimal("-1")), "cannot be negative"),
    (dict(expected_return_on=-1), "in the past"),
    (dict(size="XXXL"), "size"),
])
def test_issue_refuses_bad_input(cleared_student, store_user, kwargs, message):
    args = dict(student=cleared_student, gown_code="G-009", size="M", expected_return_on=_in(3),
                acting_user=store_user)
    args.update(kwargs)
    if isinstance(args["expected_return_on"], int):
        args["expected_return_on"] = _in(args["expected_return_on"])
    with pytest.raises(ValidationError, match=message):
        gown_issue(**args)
    assert not GownIssuance.objects.exists()


def test_deposit_is_refunded_only_after_return(gown, store_user):
    with pytest.raises(ValidationError, match="only after the gown is returned"):
        gown_deposit_refund(gown=gown, acting_user=store_user)
    assert GownIssuance.objects.get(pk=gown.pk).deposit_status == D.HELD


def test_full_refund_after_return(gown, store_user):
    gown_return(gown=gown, acting_user=store_user)
    gown_deposit_refund(gown=gown, acting_user=store_user)
    stored = GownIssuance.objects.get(pk=gown.pk)
    assert (stored.deposit_status, stored.refunded_amount) == (D.REFUNDED, Decimal("2000.00"))
    assert stored.returned_at is not None


def test_return_twice_is_refused(gown, store_user):
    gown_return(gown=gown, acting_user=store_user)
    with pytest.raises(ValidationError, match="was already returned"):
        gown_return(gown=gown, acting_user=store_user)


def test_part_refund_is_refused_for_an_undamaged_gown(gown, store_user):
    gown_return(gown=gown, acting_user=store_user)
    with pytest.raises(ValidationError, match="Only a damaged gown's deposit is refunded in part"):
        gown_deposit_refund(gown=gown, acting_user=store_user, amount=Decimal("500"))
    assert GownIssuance.objects.get(pk=gown.pk).deposit_status == D.HELD


def test_part_refund_when_damaged(gown, store_user):
    gown_return(gown=gown, acting_user=store_user, damage_notes="Torn sleeve")
    with pytest.raises(ValidationError, match="say how much of the deposit to refund"):
        gown_deposit_refund(gown=gown, acting_user=store_user)
    gown_deposit_refund(gown=gown, acting_user=store_user, amount=Decimal("1200"))
    stored = GownIssuance.objects.get(pk=gown.pk)
    assert (stored.deposit_status, stored.refunded_amount, stored.damage_notes) == (
        D.PART_REFUNDED, Decimal("1200.00"), "Torn sleeve")
    assert stored.history.first().history_change_reason == "Deposit part-refunded"


def test_nothing_refunded_for_a_ruined_gown_is_retained(gown, store_user):
    gown_return(gown=gown, acting_user=store_user, damage_notes="Burnt")
    gown_deposit_refund(gown=gown, acting_user=store_user, amount=0)
    assert GownIssuance.objects.get(pk=gown.pk).deposit_status == D.RETAINED


@pytest.mark.parametrize("amount", [Decimal("-1"), Decimal("2000.01")])
def test_refund_must_be_within_the_deposit(gown, store_user, amount):
    gown_return(gown=gown, acting_user=store_user, damage_notes="Stain")
    with pytest.raises(ValidationError, match="between KES 0 and the deposit, KES 2,000.00"):
        gown_deposit_refund(gown=gown, acting_user=store_user, amount=amount)


def test_a_settled_deposit_is_not_refunded_twice(gown, store_user):
    gown_return(gown=gown, acting_user=store_user)
    gown_deposit_refund(gown=gown, acting_user=store_user)
    with pytest.raises(ValidationError, match=r"already settled \(refunded\)"):
        gown_deposit_refund(gown=gown, acting_user=store_user)
