"""The M-PESA C2B services: validation by registration number, confirmation recorded once, verified,
matched, with history naming M-PESA; unmatched ones kept; bad bodies refused with nothing written."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from core.models import MpesaConfirmation, Payment
from core.services.mpesa import (INVALID_ACCOUNT, INVALID_AMOUNT, NAIROBI, OTHER_ERROR, C2BPayloadError,
                                 mpesa_c2b_confirm, mpesa_c2b_validate, parse_c2b)
from tests import factories

pytestmark = pytest.mark.django_db
C = MpesaConfirmation


def daraja(**changes) -> dict:
    """Daraja's documented C2B example (Pay Bill), with these fields changed."""
    body = {"TransactionType": "Pay Bill", "TransID": "RKTQDM7W6S", "TransTime": "20191122063845",
            "TransAmount": "10", "BusinessShortCode": "600638", "BillRefNumber": "invoice008",
            "InvoiceNumber": "", "OrgAccountBalance": "49197.00", "ThirdPartyTransID": "",
            "MSISDN": "2547 ***** 126", "FirstName": "John", "MiddleName": "", "LastName": "Doe"}
    body.update(changes)
    return body


@pytest.fixture
def graduand(db):
    return factories.student_with_reg("SCE/CS/0001/2022")


@pytest.mark.parametrize("account", ["SCE/CS/0001/2022", "sce/cs/0001/2022", " sce / cs / 0001 / 2022 ",
                                     "SCE CS 0001 2022", "'SCE/CS/0001/2022"])
def test_validation_accepts_a_registration_number_however_typed(graduand, account):
    v = mpesa_c2b_validate(payload=daraja(BillRefNumber=account))
    assert v.accepted and v.student == graduand
    assert v.answer == {"ResultCode": 0, "ResultDesc": "Accepted"}


@pytest.mark.parametrize("account", ["invoice008", "", "SCE/CS/0002/2022", "SCE/CS/0001/2O22"])
def test_validation_rejects_anything_else_with_Darajas_invalid_account_code(graduand, account):
    v = mpesa_c2b_validate(payload=daraja(BillRefNumber=account))
    assert not v.accepted
    assert v.answer == {"ResultCode": INVALID_ACCOUNT, "ResultDesc": "Rejected"} == {"ResultCode": "C2B00012",
                                                                                     "ResultDesc": "Rejected"}


def test_confirmation_records_the_payment_verified_for_the_student_with_history_naming_mpesa(graduand):
    result = mpesa_c2b_confirm(payload=daraja(BillRefNumber="sce/cs/0001/2022", TransAmount="5500.00"),
                               source_ip="196.201.214.200")
    assert not result.replay and result.answer == {"ResultCode": 0, "ResultDesc": "Accepted"}
    p = Payment.objects.get()
    assert (p.student, p.method, p.transaction_code, p.amount) == (graduand, "mpesa", "RKTQDM7W6S", Decimal("5500.00"))
    assert p.is_verified and p.verified_by is None and p.phone == "2547 ***** 126"
    assert p.paid_at == datetime.datetime(2019, 11, 22, 6, 38, 45, tzinfo=NAIROBI)
    reasons = list(p.history.order_by("history_id").values_list("history_change_reason", "history_user"))
    assert [r for r, _ in reasons] == [
        "system: Recorded from M-PESA confirmation RKTQDM7W6S (account “sce/cs/0001/2022”, from John Doe 2547 ***** 126)",
        "system: Verified by M-PESA confirmation RKTQDM7W6S (account “sce/cs/0001/2022”, from John Doe 2547 ***** 126)"]
    assert {u for _, u in reasons} == {None}
    conf = C.objects.get()
    assert (conf.outcome, conf.match, conf.payment, conf.student) == (C.Outcome.RECORDED, C.Match.EXACT, p, graduand)
    assert conf.source_ip == "196.201.214.200" and conf.payload["TransID"] == "RKTQDM7W6S"


def test_a_replayed_confirmation_answers_success_and_records_nothing_more(graduand):
    body = daraja(BillRefNumber="SCE/CS/0001/2022")
    first = mpesa_c2b_confirm(payload=body)
    again = mpesa_c2b_confirm(payload=dict(body, TransAmount="99999", BillRefNumber="nobody"))
    assert again.replay and again.confirmation == first.confirmation
    assert again.answer == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert Payment.objects.count() == 1 and C.objects.count() == 1
    assert Payment.objects.get().amount == Decimal("10.00")


def test_an_unknown_account_is_kept_for_finance_and_records_no_payment(graduand):
    result = mpesa_c2b_confirm(payload=daraja())
    conf = result.confirmation
    assert result.answer["ResultCode"] == 0          # the money has moved: Daraja is told it arrived
    assert (conf.outcome, conf.match, conf.student) == (C.Outcome.UNMATCHED, C.Match.NONE, None)
    assert conf.bill_ref == "invoice008" and conf.amount == Decimal("10.00")
    assert not Payment.objects.exists()
    assert mpesa_c2b_confirm(payload=daraja()).replay and C.objects.count() == 1


def test_a_clear_typo_is_not_recorded_by_itself_but_names_the_probable_student(graduand):
    conf = mpesa_c2b_confirm(payload=daraja(BillRefNumber="SCE/CS/0001/2O22")).confirmation
    assert (conf.outcome, conf.match, conf.student) == (C.Outcome.UNMATCHED, C.Match.TYPO, graduand)
    assert "probably SCE/CS/0001/2022" in conf.detail
    assert not Payment.objects.exists()


def test_an_ambiguous_account_lists_the_candidates(db):
    a = factories.student_with_reg("SCE/CS/0001/2022")
    b = factories.student_with_reg("SCE/CS/0003/2022")
    conf = mpesa_c2b_confirm(payload=daraja(BillRefNumber="SCE/CS/0002/2022")).confirmation
    assert (conf.outcome, conf.match, conf.student) == (C.Outcome.UNMATCHED, C.Match.AMBIGUOUS, None)
    assert sorted(conf.candidates) == sorted([a.pk, b.pk])


def test_a_payment_recorded_by_hand_with_the_code_is_verified_not_recorded_again(graduand, finance_user):
    p = factories.PaymentFactory(student=graduand, transaction_code="RKTQDM7W6S", amount=Decimal("10"),
                                 recorded_by=finance_user)
    conf = mpesa_c2b_confirm(payload=daraja(BillRefNumber="whatever")).confirmation
    p.refresh_from_db()
    assert p.is_verified and Payment.objects.count() == 1
    assert (conf.outcome, conf.match, conf.payment) == (C.Outcome.VERIFIED, C.Match.PAYMENT, p)
    assert p.history.latest().history_change_reason.startswith("system: Verified by M-PESA confirmation RKTQDM7W6S")


def test_a_recorded_payment_of_another_amount_is_listed_not_verified(graduand):
    p = factories.PaymentFactory(student=graduand, transaction_code="RKTQDM7W6S", amount=Decimal("5500"))
    conf = mpesa_c2b_confirm(payload=daraja(BillRefNumber="SCE/CS/0001/2022")).confirmation
    p.refresh_from_db()
    assert not p.is_verified
    assert conf.outcome == C.Outcome.MISMATCH and "KES 5,500.00" in conf.detail and "KES 10.00" in conf.detail


def test_an_already_verified_payment_is_left_as_it_is(graduand, finance_user):
    from django.utils import timezone
    p = factories.PaymentFactory(student=graduand, transaction_code="RKTQDM7W6S", amount=Decimal("10"),
                                 verified_by=finance_user, verified_at=timezone.now())
    conf = mpesa_c2b_confirm(payload=daraja()).confirmation
    p.refresh_from_db()
    assert conf.outcome == C.Outcome.ALREADY_VERIFIED and p.verified_by == finance_user


def test_a_verified_payment_leaves_the_fin_hold_to_the_finance_officer(graduand, offices):
    """No new rule: the hold a balance import placed stays until an officer releases it for the
    payment (holds_release_paid) or the next import clears it."""
    hold = factories.HoldFactory(student=graduand, department=offices["FIN"], amount=Decimal("10"))
    mpesa_c2b_confirm(payload=daraja(BillRefNumber="SCE/CS/0001/2022"))
    hold.refresh_from_db()
    assert hold.status == hold.Status.ACTIVE


@pytest.mark.parametrize("changes, field, code", [
    ({"TransAmount": "abc"}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": "0"}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": "-5"}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": "10.005"}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": "NaN"}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": "1e12"}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": True}, "TransAmount", INVALID_AMOUNT),
    ({"TransAmount": None}, "TransAmount", INVALID_AMOUNT),
    ({"TransID": ""}, "TransID", OTHER_ERROR),
    ({"TransID": "SHORT"}, "TransID", OTHER_ERROR),
    ({"TransID": 12}, "TransID", OTHER_ERROR),
    ({"TransTime": "2019-11-22 06:38"}, "TransTime", OTHER_ERROR),
    ({"TransTime": "20191322063845"}, "TransTime", OTHER_ERROR),
    ({"BillRefNumber": ["SCE/CS/0001/2022"]}, "BillRefNumber", INVALID_ACCOUNT),
    ({"BillRefNumber": "x" * 101}, "BillRefNumber", INVALID_ACCOUNT),
    ({"FirstName": {"a": 1}}, "FirstName", OTHER_ERROR),
])
def test_a_body_that_is_no_c2b_callback_is_refused_by_field_and_writes_nothing(graduand, changes, field, code):
    for service in (mpesa_c2b_validate, mpesa_c2b_confirm):
        with pytest.raises(C2BPayloadError) as exc:
            service(payload=daraja(BillRefNumber="SCE/CS/0001/2022", **changes) if "BillRefNumber" not in changes
                    else daraja(**changes))
        assert field in exc.value.message_dict and exc.value.result_code == code
    assert not C.objects.exists() and not Payment.objects.exists()


def test_missing_fields_and_non_objects_are_refused(graduand):
    body = daraja()
    del body["BillRefNumber"], body["TransID"]
    with pytest.raises(C2BPayloadError) as exc:
        mpesa_c2b_confirm(payload=body)
    assert set(exc.value.message_dict) == {"BillRefNumber", "TransID"}
    for junk in ([], "text", 5, None):
        with pytest.raises(C2BPayloadError):
            mpesa_c2b_confirm(payload=junk)
    assert not C.objects.exists()


def test_numbers_where_daraja_samples_send_them_and_unknown_fields_are_read():
    tx = parse_c2b(daraja(TransAmount=200, TransTime=20191122063845, MSISDN=254708374149, Extra="new field",
                          TransID="rktq dm7w6s"))
    assert (tx.amount, tx.msisdn, tx.trans_id) == (Decimal("200.00"), "254708374149", "RKTQDM7W6S")
    assert tx.trans_time.hour == 6 and tx.trans_time.utcoffset() == datetime.timedelta(hours=3)
