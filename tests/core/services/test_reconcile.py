"""M-PESA statement reconciliation: the sample statement against recorded payments (matched and
verified, already verified, amount mismatches, unrecorded lines with the likely student, recorded
payments missing from the statement), unreadable files and refusals."""
from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from core.imports.mpesa import ImportFileError, parse_mpesa_statement
from core.models import Payment
from core.services.reconcile import payments_reconcile_statement
from tests import factories
from tests.factories import student_with_reg as make_student

STATEMENT = Path("/work/shared/samples/mpesa_statement.csv")
if not STATEMENT.exists():
    STATEMENT = Path(__file__).resolve().parents[3] / "fixtures" / "samples" / "mpesa_statement.csv"


def sample() -> ContentFile:
    return ContentFile(STATEMENT.read_bytes(), name="mpesa_statement.csv")


def at(day, hour=12):
    return timezone.make_aware(datetime.datetime(2026, 11, day, hour, 0))


@pytest.fixture
def world(db, finance_user):
    """Payments for some of the statement's receipts: 1 and 2 unverified with the right amount,
    3 already verified, 4 recorded with a different amount; a payment in the period not on the
    statement, one outside the period, one verified in the period; students for accounts 5 (exact),
    and one close to account 6 (SCE/IT/0006/2021 is missing; SCE/IT/0006/2027 exists)."""
    s1 = make_student("SCE/IT/0001/2021")
    s2 = make_student("SHS/NUR/0002/2022")
    s3 = make_student("SHS/NUR/0003/2021")
    s4 = make_student("SBE/ACC/0004/2021")
    s5 = make_student("SED/ART/0005/2022")
    near6 = make_student("SCE/IT/0006/2027")
    p = {
        "one": factories.PaymentFactory(student=s1, transaction_code="TL44LDQBWZ", amount=Decimal("12500")),
        "two": factories.PaymentFactory(student=s2, transaction_code="TXYA2CLMHP", amount=Decimal("5500")),
        "three": factories.PaymentFactory(student=s3, transaction_code="TW7Q3GXSC1", amount=Decimal("5500"),
                                          verified_at=timezone.now(), verified_by=finance_user),
        "four": factories.PaymentFactory(student=s4, transaction_code="T6XJVR8FTU", amount=Decimal("1250")),
        "missing": factories.PaymentFactory(student=s5, transaction_code="TZZZZZZZZ1", paid_at=at(12)),
        "outside": factories.PaymentFactory(student=s5, transaction_code="TZZZZZZZZ2", paid_at=at(25)),
        "verified_in_period": factories.PaymentFactory(student=s5, transaction_code="TZZZZZZZZ3", paid_at=at(13),
                                                       verified_at=timezone.now(), verified_by=finance_user),
        "bank": factories.PaymentFactory(student=s5, transaction_code="BANK-1", method=Payment.Method.BANK,
                                         paid_at=at(14)),
    }
    return {"students": (s1, s2, s3, s4, s5, near6), "payments": p}


def refreshed(payment):
    return Payment.objects.get(pk=payment.pk)


def test_the_sample_statement_parses():
    parsed = parse_mpesa_statement(STATEMENT.read_bytes())
    assert len(parsed.lines) == 20 and not parsed.errors
    first = parsed.lines[0]
    assert (first.receipt, first.amount, first.account, first.row) == ("TL44LDQBWZ", Decimal("12500.00"),
                                                                         "SCE/IT/0001/2021", 2)
    assert timezone.localtime(first.completed_at).strftime("%Y-%m-%d %H:%M:%S") == "2026-11-10 10:00:31"
    start, end = parsed.period
    assert timezone.localtime(start).date() == datetime.date(2026, 11, 10)
    assert timezone.localtime(end).date() == datetime.date(2026, 11, 18)


def test_reconcile_the_sample(world, finance_user):
    p = world["payments"]
    s1, s2, s3, s4, s5, near6 = world["students"]
    result = payments_reconcile_statement(file=sample(), acting_user=finance_user)
    assert result.lines_read == 20
    assert [x.transaction_code for x in result.verified] == ["TL44LDQBWZ", "TXYA2CLMHP"]
    assert refreshed(p["one"]).verified_by == finance_user and refreshed(p["two"]).is_verified
    assert [x.transaction_code for x in result.already_verified] == ["TW7Q3GXSC1"]
    assert [(m.payment.transaction_code, m.line.amount) for m in result.mismatched] == [("T6XJVR8FTU",
                                                                                         Decimal("12500.00"))]
    assert not refreshed(p["four"]).is_verified                # a mismatch is reported, not verified
    assert len(result.unrecorded) == 16
    by_code = {u.line.receipt: u for u in result.unrecorded}
    assert (by_code["TJT4KDF8ZC"].student, by_code["TJT4KDF8ZC"].match) == (s5, "exact")
    assert (by_code["TQ30JDC5VN"].student, by_code["TQ30JDC5VN"].match) == (near6, "close")
    # the closest registration number is only a guess: SHS/NUR/0020/2022 is not ours, 0002 is closest
    assert (by_code["T11O5S4YYK"].student, by_code["T11O5S4YYK"].match) == (s2, "close")
    assert [x.transaction_code for x in result.missing] == ["TZZZZZZZZ1"]
    assert not refreshed(p["missing"]).is_verified
    history = Payment.history.filter(id=p["one"].pk).latest("history_date")
    assert "mpesa_statement.csv" in history.history_change_reason


def test_reconciling_again_verifies_nothing_more(world, finance_user):
    payments_reconcile_statement(file=sample(), acting_user=finance_user)
    history = Payment.history.count()
    result = payments_reconcile_statement(file=sample(), acting_user=finance_user)
    assert result.verified == [] and len(result.already_verified) == 3
    assert Payment.history.count() == history


def test_a_mistyped_account_finds_the_closest_student(db, finance_user):
    student = make_student("SCE/CS/0042/2022")
    make_student("SBE/ACC/0100/2019")
    data = ('"Receipt No.","Completion Time","Paid In","A/C No."\n'
            '"TAAAAAAAA1","2026-11-10 10:00:31","5,500.00","sce cs 0042 2022"\n'
            '"TAAAAAAAA2","2026-11-10 11:00:31","5,500.00","SCE/CS/042/2022"\n'
            '"TAAAAAAAA3","2026-11-10 12:00:31","5,500.00","my fees"\n').encode()
    result = payments_reconcile_statement(file=ContentFile(data, name="s.csv"), acting_user=finance_user)
    assert [(u.student, u.match) for u in result.unrecorded] == [(student, "close"), (student, "close"),
                                                                 (None, "none")]
    data = data.replace(b"sce cs 0042 2022", b"sce/cs/0042/2022 ")
    result = payments_reconcile_statement(file=ContentFile(data, name="s.csv"), acting_user=finance_user)
    assert (result.unrecorded[0].student, result.unrecorded[0].match) == (student, "exact")


def test_header_below_title_lines_and_bad_lines(db, finance_user):
    data = ("Organisation Name: UNIVERSITY\nShort Code: 123456\n\n"
            "Receipt No.,Completion Time,Transaction Status,Paid In,Withdrawn,A/C No.\n"
            "TBBBBBBBB1,10-11-2026 10:00:31,Completed,\"1,000.00\",,SCE/CS/0001/2022\n"
            "TBBBBBBBB2,10-11-2026 10:00:31,Failed,\"1,000.00\",,SCE/CS/0001/2022\n"
            "TBBBBBBBB3,10-11-2026 10:00:31,Completed,,30.00,\n"
            "BAD,10-11-2026 10:00:31,Completed,500,,SCE/CS/0001/2022\n"
            "TBBBBBBBB5,yesterday,Completed,500,,SCE/CS/0001/2022\n"
            "TBBBBBBBB6,10-11-2026 10:00:31,Completed,lots,,SCE/CS/0001/2022\n").encode()
    parsed = parse_mpesa_statement(data)
    assert [x.receipt for x in parsed.lines] == ["TBBBBBBBB1"] and parsed.skipped == 2
    assert [(e.row, e.column) for e in parsed.errors] == [(8, "Receipt No."), (9, "Completion Time"),
                                                          (10, "Paid In")]


@pytest.mark.parametrize("data,words", [
    (b"", "empty"),
    (b"PK\x03\x04 zip", "not a CSV"),
    (b"Name,Amount\nA,1\n", "No header row"),
    (b'"Receipt No.","Completion Time","Paid In","A/C No."\n', "no completed payments"),
])
def test_unreadable_statements_change_nothing(world, finance_user, data, words):
    with pytest.raises(ImportFileError, match=words):
        payments_reconcile_statement(file=ContentFile(data, name="x.csv"), acting_user=finance_user)
    assert not Payment.objects.filter(verified_at__isnull=False).exclude(
        pk__in=[world["payments"]["three"].pk, world["payments"]["verified_in_period"].pk]).exists()


def test_only_finance_officers_reconcile(world, lib_reviewer):
    with pytest.raises(ValidationError, match="Only finance officers"):
        payments_reconcile_statement(file=sample(), acting_user=lib_reviewer)
    assert not refreshed(world["payments"]["one"]).is_verified
