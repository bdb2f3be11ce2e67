"""Gowns (workflow rule 6): issued only to cleared students; deposits refunded only after return."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import GownIssuance
from core.services.gowns import gown_deposit_refund, gown_issue, gown_return, gowns_deposit_refund, gowns_return
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
    with pytest.raises(ValidationError, match=r"Say why KES 800.00 of the deposit is kept"):
        gown_deposit_refund(gown=gown, acting_user=store_user, amount=Decimal("1200"), retained_reason="  ")
    gown_deposit_refund(gown=gown, acting_user=store_user, amount=Decimal("1200"), retained_reason="Sleeve mended")
    stored = GownIssuance.objects.get(pk=gown.pk)
    assert (stored.deposit_status, stored.refunded_amount, stored.damage_notes, stored.retained_reason) == (
        D.PART_REFUNDED, Decimal("1200.00"), "Torn sleeve", "Sleeve mended")
    assert (stored.deposit_settled_by, stored.deposit_settled_at is not None) == (store_user, True)
    last = stored.history.first()
    assert last.history_change_reason == "Deposit part-refunded: KES 800.00 kept (Sleeve mended)"
    assert last.history_user == store_user


def test_nothing_refunded_for_a_ruined_gown_is_retained(gown, store_user):
    gown_return(gown=gown, acting_user=store_user, damage_notes="Burnt")
    gown_deposit_refund(gown=gown, acting_user=store_user, amount=0, retained_reason="Cannot be worn again")
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


def test_a_full_refund_of_a_damaged_gown_is_allowed_and_keeps_no_reason(gown, store_user):
    gown_return(gown=gown, acting_user=store_user, damage_notes="Loose button")
    gown_deposit_refund(gown=gown, acting_user=store_user, amount="2000", retained_reason="ignored")
    stored = GownIssuance.objects.get(pk=gown.pk)
    assert (stored.deposit_status, stored.refunded_amount, stored.retained_reason) == (D.REFUNDED, Decimal("2000"), "")


@pytest.mark.parametrize("amount", ["abc", "NaN", "Infinity", "12.345", "1e400"])
def test_a_refund_that_is_not_an_amount_is_refused(gown, store_user, amount):
    gown_return(gown=gown, acting_user=store_user, damage_notes="Stain")
    with pytest.raises(ValidationError, match="amount in KES"):
        gown_deposit_refund(gown=gown, acting_user=store_user, amount=amount, retained_reason="Stain")
    assert GownIssuance.objects.get(pk=gown.pk).deposit_status == D.HELD


def test_issue_defaults_the_return_date_and_history_names_the_clerk(cleared_student, store_user, settings):
    settings.GOWN_RETURN_DAYS = 9
    gown = gown_issue(student=cleared_student, gown_code="G-100", size="S", acting_user=store_user)
    assert gown.expected_return_on == _in(9)
    assert (gown.history.get().history_user, gown.issued_by) == (store_user, store_user)
    gown_return(gown=gown, acting_user=store_user)
    assert gown.history.first().history_user == store_user


def test_not_cleared_names_the_offices_still_waiting(clearance, student, store_user, approval, superuser):
    from core.services.approvals import approval_reject
    approval_reject(approval=approval(clearance, "LIB"), acting_user=superuser, reason="Book not returned")
    with pytest.raises(ValidationError) as exc:
        gown_issue(student=student, gown_code="G-001", size="M", acting_user=store_user)
    message = exc.value.messages[0]
    assert "the clearance is on hold" in message and "LIB (rejected)" in message and "SPT (pending)" in message
    assert "FIN" not in message                                 # approved at opening: nothing owed


def test_a_student_without_any_request_is_told_so(student, store_user):
    with pytest.raises(ValidationError, match="no clearance request has been opened"):
        gown_issue(student=student, gown_code="G-001", size="M", acting_user=store_user)


def test_only_the_gown_store_runs_the_services(gown, cleared_student, lib_reviewer, store_user):
    for call in (lambda: gown_issue(student=factories.StudentFactory(), gown_code="G-5", size="M",
                                    acting_user=lib_reviewer),
                 lambda: gown_return(gown=gown, acting_user=lib_reviewer),
                 lambda: gowns_return(gown_ids=[gown.pk], acting_user=lib_reviewer),
                 lambda: gown_deposit_refund(gown=gown, acting_user=lib_reviewer),
                 lambda: gowns_deposit_refund(gown_ids=[gown.pk], acting_user=lib_reviewer)):
        with pytest.raises(ValidationError, match="Only the gown store's staff"):
            call()
    stored = GownIssuance.objects.get(pk=gown.pk)
    assert (stored.returned_at, stored.deposit_status, GownIssuance.objects.count()) == (None, D.HELD, 1)


def test_a_delegation_of_the_gown_office_lets_its_holder_run_the_store(gown, lib_reviewer, store_user, offices):
    factories.DelegationFactory(department=offices["GOWN"], from_user=store_user, to_user=lib_reviewer)
    gown_return(gown=gown, acting_user=lib_reviewer)
    assert GownIssuance.objects.get(pk=gown.pk).history.first().history_user == lib_reviewer


def _issued(store_user, n):
    """n gowns out (made directly: the rules of issuing are tested above)."""
    return [factories.GownIssuanceFactory(gown_code=f"B-{i}", issued_by=store_user) for i in range(n)]


def test_bulk_return_refuses_row_by_row(store_user):
    back, out, damaged = _issued(store_user, 3)
    gown_return(gown=back, acting_user=store_user)
    result = gowns_return(gown_ids=[back.pk, out.pk, damaged.pk, 987654], acting_user=store_user)
    assert result.done == [out.pk, damaged.pk]
    refused = {r.pk: (r.label, r.reason) for r in result.refused}
    assert refused[back.pk][0] == f"B-0 ({back.student.registration_number})"
    assert refused[back.pk][1].startswith("Gown B-0 is not out: it was already returned on ")
    assert refused[987654] == ("#987654", "no such gown")
    assert GownIssuance.objects.filter(returned_at__isnull=True).count() == 0


def test_bulk_return_with_a_damage_note_notes_each(store_user):
    gowns = _issued(store_user, 2)
    gowns_return(gown_ids=[g.pk for g in gowns], acting_user=store_user, damage_notes="Muddy hem")
    assert set(GownIssuance.objects.values_list("damage_notes", flat=True)) == {"Muddy hem"}
    assert GownIssuance.objects.get(pk=gowns[0].pk).history.first().history_change_reason == "Gown returned damaged"


def test_bulk_refund_in_full_refuses_row_by_row(store_user):
    still_out, settled, damaged, fine = _issued(store_user, 4)
    for g in (settled, fine):
        gown_return(gown=g, acting_user=store_user)
    gown_deposit_refund(gown=settled, acting_user=store_user)
    gown_return(gown=damaged, acting_user=store_user, damage_notes="Torn")
    result = gowns_deposit_refund(gown_ids=[still_out.pk, settled.pk, damaged.pk, fine.pk], acting_user=store_user)
    assert result.done == [fine.pk]
    reasons = {r.pk: r.reason for r in result.refused}
    assert "still out: the deposit is refunded only after the gown is returned" in reasons[still_out.pk]
    assert reasons[settled.pk].startswith("This deposit was already settled (refunded) on ")
    assert reasons[damaged.pk].startswith("came back damaged (Torn); refund it from its own page")
    assert dict(GownIssuance.objects.values_list("pk", "deposit_status")) == {
        still_out.pk: D.HELD, settled.pk: D.REFUNDED, damaged.pk: D.HELD, fine.pk: D.REFUNDED}
