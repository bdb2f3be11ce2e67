"""Two posts of one M-PESA confirmation at the same instant (real threads and connections on
PostgreSQL): one payment, one confirmation, the other post a replay answered with success."""
from __future__ import annotations

import time

import pytest
from django.db import connection  # noqa: F401  (the skipif condition reads it)

from core.models import MpesaConfirmation, Payment
from core.services import mpesa
from tests import factories
from tests.core.services.test_mpesa import daraja
from tests.core.services.test_races import _at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="concurrent writers need PostgreSQL"),
]
PAUSE = 0.2


def _slowed(monkeypatch, name):
    """Pause after the confirmation is read and saved, before the payment is looked for."""
    original = getattr(mpesa, name)

    def slow(*args, **kwargs):
        time.sleep(PAUSE)
        return original(*args, **kwargs)
    monkeypatch.setattr(mpesa, name, slow)


@pytest.mark.parametrize("account", ["SCE/CS/0001/2022", "nobody"])
def test_the_same_confirmation_posted_twice_at_once_records_one_payment(monkeypatch, account):
    student = factories.student_with_reg("SCE/CS/0001/2022")
    _slowed(monkeypatch, "_recorded")
    for n in range(3):
        body = daraja(TransID=f"RKTQDM7W6{n}", BillRefNumber=account)
        results = _at_once(lambda: mpesa.mpesa_c2b_confirm(payload=body),
                           lambda: mpesa.mpesa_c2b_confirm(payload=body))
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(r.replay for r in results) == [False, True]
        assert all(r.answer == {"ResultCode": 0, "ResultDesc": "Accepted"} for r in results)
        assert MpesaConfirmation.objects.filter(trans_id=body["TransID"]).count() == 1
    assert Payment.objects.filter(student=student).count() == (3 if account != "nobody" else 0)
    assert Payment.objects.filter(verified_at__isnull=True).count() == 0


def test_a_confirmation_and_a_payment_recorded_by_hand_at_once_leave_one_payment(monkeypatch, finance_user):
    from core.services.payments import payment_record
    student = factories.student_with_reg("SCE/CS/0001/2022")
    _slowed(monkeypatch, "account_match")
    results = _at_once(lambda: mpesa.mpesa_c2b_confirm(payload=daraja(BillRefNumber="SCE/CS/0001/2022")),
                       lambda: payment_record(student=student, amount="10", method="mpesa",
                                              transaction_code="RKTQDM7W6S", acting_user=finance_user))
    assert Payment.objects.filter(transaction_code="RKTQDM7W6S").count() == 1
    conf = MpesaConfirmation.objects.get()
    assert conf.payment_id == Payment.objects.get().pk
    assert not isinstance(results[0], Exception), results
