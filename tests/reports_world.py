"""A small world whose report answers are known (tests/core/selectors/test_reports.py), shared by
the export command's and the report pages' tests."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import ClearanceApproval, GownIssuance, Hold
from tests import factories


NOW = timezone.now()


def days_ago(n):
    return NOW - datetime.timedelta(days=n)


def _set(request, code, **fields):
    ClearanceApproval.objects.filter(request=request, department__code=code).update(**fields)


@pytest.fixture
def world(offices, cycle, open_request, complete_request, registry_user):
    """Three students: `a` (SCE, 2026) completed, then a LIB hold placed; `b` (SCE, 2026) in progress
    with a FIN hold of 12,500 (FIN rejected at open) and LIB overdue; `c` (SPA, 2027, resident)
    in progress. FIN took 1, 2 and 6 days to decide; a's LIB 4 days."""
    a = factories.student_with_reg("SCE/CS/0001/2022", first_name="Ann", last_name="Achieng")
    b = factories.student_with_reg("SCE/CS/0002/2022", first_name="Ben", last_name="Baraka")
    c = factories.student_with_reg("SPA/EC/0003/2023", first_name="Cy", last_name="Chebet",
                                   expected_graduation_year=2027, is_resident=True)
    factories.FinanceRecordFactory(student=a, tuition_balance=Decimal("0"))
    factories.FinanceRecordFactory(student=b, tuition_balance=Decimal("12500"))
    factories.FinanceRecordFactory(student=c, tuition_balance=Decimal("-300"))
    factories.HoldFactory(department=offices["FIN"], student=b, reason="Fee balance", amount=Decimal("12500"),
                          source=Hold.Source.BALANCE_IMPORT)
    ra = complete_request(open_request(a))
    rb, rc = open_request(b), open_request(c)
    for request, fin_days in ((ra, 1), (rb, 2), (rc, 6)):
        _set(request, "FIN", waiting_since=days_ago(20), decided_at=days_ago(20 - fin_days))
    _set(ra, "LIB", waiting_since=days_ago(15), decided_at=days_ago(11))
    _set(rb, "LIB", waiting_since=days_ago(10))      # overdue: 10 > 7
    _set(rc, "LIB", waiting_since=days_ago(3))
    factories.HoldFactory(department=offices["LIB"], student=a, reason="=HYPERLINK(\"x\")", amount=Decimal("1500"))
    factories.PaymentFactory(student=a, amount=Decimal("5500"), verified_at=NOW)
    factories.PaymentFactory(student=b, amount=Decimal("2000"))
    factories.GownIssuanceFactory(student=a, gown_code="G-1", expected_return_on=NOW.date() - datetime.timedelta(days=1))
    factories.GownIssuanceFactory(student=b, gown_code="G-2", returned_at=NOW,
                                  deposit_status=GownIssuance.DepositStatus.REFUNDED, refunded_amount=Decimal("2000"))
    factories.GownIssuanceFactory(student=c, gown_code="G-3", returned_at=NOW)      # returned, deposit still held
    ra.refresh_from_db()
    return {"a": a, "b": b, "c": c, "ra": ra, "rb": rb, "rc": rc, "cycle": cycle, "offices": offices}
