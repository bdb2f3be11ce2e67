"""Payments: recording and verifying (M-PESA codes checked for form and duplicates)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.models import Payment
from core.services.payments import payment_record, payment_verify_by_code, payments_verify
from tests import factories

pytestmark = pytest.mark.django_db

MPESA, BANK = Payment.Method.MPESA, Payment.Method.BANK


def test_record_a_payment_normalises_the_code(student, finance_user):
    payment = payment_record(student=student, amount="5500", method=MPESA, transaction_code=" tl44 ldqbwz ",
                             acting_user=finance_user, phone="0712345678")
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.transaction_code, stored.amount, stored.recorded_by, stored.is_verified) == (
        "TL44LDQBWZ", Decimal("5500.00"), finance_user, False)
    assert stored.history.get().history_user == finance_user


def test_duplicate_code_is_refused_naming_the_student(student, finance_user):
    payment_record(student=student, amount=5500, method=MPESA, transaction_code="TL44LDQBWZ",
                   acting_user=finance_user)
    other = factories.StudentFactory()
    with pytest.raises(ValidationError) as exc:
        payment_record(student=other, amount=100, method=MPESA, transaction_code="tl44ldqbwz",
                       acting_user=finance_user)
    assert exc.value.messages[0] == (f"TL44LDQBWZ is already recorded, for {student.registration_number} "
                                     "(KES 5,500.00).")
    assert Payment.objects.count() == 1


def test_the_same_code_for_another_method_is_accepted(student, finance_user):
    payment_record(student=student, amount=5500, method=MPESA, transaction_code="TL44LDQBWZ",
                   acting_user=finance_user)
    payment_record(student=student, amount=5500, method=BANK, transaction_code="TL44LDQBWZ",
                   acting_user=finance_user)
    assert Payment.objects.count() == 2


@pytest.mark.parametrize("code", ["TL44LDQBW", "TL44LDQBWZ1", "TL44-DQBWZ", ""])
def test_bad_mpesa_code_is_refused(student, finance_user, code):
    with pytest.raises(ValidationError, match="An M-PESA code is 10 letters or digits"):
        payment_record(student=student, amount=100, method=MPESA, transaction_code=code, acting_user=finance_user)
    assert not Payment.objects.exists()


def test_a_bank_payment_needs_a_reference(student, finance_user):
    with pytest.raises(ValidationError, match="Give the transaction or receipt number"):
        payment_record(student=student, amount=100, method=BANK, transaction_code="  ", acting_user=finance_user)


@pytest.mark.parametrize("amount, message", [(0, "more than zero"), (-5, "more than zero"),
                                             (Decimal("10000000.01"), "more than any fee")])
def test_payment_amount_must_be_sensible(student, finance_user, amount, message):
    with pytest.raises(ValidationError, match=message):
        payment_record(student=student, amount=amount, method=MPESA, transaction_code="TL44LDQBWZ",
                       acting_user=finance_user)
    assert not Payment.objects.exists()


def test_verify_by_code(student, finance_user):
    payment_record(student=student, amount=5500, method=MPESA, transaction_code="TL44LDQBWZ",
                   acting_user=finance_user)
    payment = payment_verify_by_code(transaction_code="tl44ldqbwz", acting_user=finance_user)
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.is_verified
    assert stored.verified_by == finance_user
    assert stored.history.first().history_change_reason == "Payment verified"


def test_verify_by_unknown_or_malformed_code_is_refused(finance_user):
    with pytest.raises(ValidationError, match="No payment is recorded with the code TL44LDQBWZ"):
        payment_verify_by_code(transaction_code="TL44LDQBWZ", acting_user=finance_user)
    with pytest.raises(ValidationError, match="An M-PESA code is 10 letters or digits"):
        payment_verify_by_code(transaction_code="nonsense", acting_user=finance_user)


def test_verify_twice_is_refused_naming_who_verified(student, finance_user, make_user):
    payment = factories.PaymentFactory(student=student, transaction_code="TL44LDQBWZ")
    payment_verify_by_code(transaction_code="TL44LDQBWZ", acting_user=finance_user)
    with pytest.raises(ValidationError, match=f"already verified by {finance_user.full_name}"):
        payment_verify_by_code(transaction_code="TL44LDQBWZ", acting_user=make_user())
    assert Payment.objects.get(pk=payment.pk).verified_by == finance_user


def test_bulk_verify_reports_each_row(finance_user):
    new, done = factories.PaymentFactory(), factories.PaymentFactory()
    payments_verify(payment_ids=[done.pk], acting_user=finance_user)
    result = payments_verify(payment_ids=[new.pk, done.pk, 777777], acting_user=finance_user)
    assert result.done == [new.pk]
    refused = {r.pk: r.reason for r in result.refused}
    assert set(refused) == {done.pk, 777777}
    assert refused[777777] == "no such payment"
    assert refused[done.pk].startswith("already verified by")
    assert Payment.objects.filter(verified_at__isnull=False).count() == 2


# --- receipts (core/files.py) ---------------------------------------------------------------------

@pytest.mark.parametrize("name, content, what", [
    ("receipt.html", b"<html><body><script>alert(1)</script></body></html>", "receipt.html is a web page"),
    ("receipt.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "receipt.svg is an SVG image"),
])
def test_a_web_page_receipt_is_refused_and_nothing_is_recorded(student, finance_user, name, content, what):
    from django.core.files.uploadedfile import SimpleUploadedFile
    with pytest.raises(ValidationError) as exc:
        payment_record(student=student, amount=5500, method=MPESA, transaction_code="TL44LDQBWZ",
                       acting_user=finance_user, receipt=SimpleUploadedFile(name, content, content_type="image/png"))
    assert what in exc.value.messages[0]
    assert Payment.objects.count() == 0


def test_a_receipt_is_stored_under_a_random_name_keeping_its_own_as_the_download_name(student, finance_user):
    from django.core.files.uploadedfile import SimpleUploadedFile
    pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
    payment = payment_record(student=student, amount=5500, method=MPESA, transaction_code="TL44LDQBWZ",
                             acting_user=finance_user, receipt=SimpleUploadedFile("M-PESA receipt.pdf", pdf))
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.receipt_name == "M-PESA receipt.pdf"
    assert stored.receipt.name.startswith("receipts/") and "receipt" not in stored.receipt.name[len("receipts/"):]
    with stored.receipt.open("rb") as fh:
        assert fh.read() == pdf
