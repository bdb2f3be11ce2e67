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
    # SCE/IT/0006/2021 is not ours; it is one character from SCE/IT/0001/2021 and from SCE/IT/0006/2027:
    # ambiguous, both listed, neither proposed
    assert (by_code["TQ30JDC5VN"].student, by_code["TQ30JDC5VN"].match) == (None, "ambiguous")
    assert by_code["TQ30JDC5VN"].candidates == tuple(sorted((s1.pk, near6.pk)))
    # one character wrong, and no other number that close: SHS/NUR/0007/2022 read as SHS/NUR/0002/2022
    assert (by_code["T0GK1XJD0S"].student, by_code["T0GK1XJD0S"].match) == (s2, "typo")
    # two neighbouring characters swapped: SHS/NUR/0020/2022 read as SHS/NUR/0002/2022
    assert (by_code["T11O5S4YYK"].student, by_code["T11O5S4YYK"].match) == (s2, "typo")
    # two characters from every number we have: no guess (difflib used to offer the "closest")
    assert (by_code["T735U4RS4Z"].student, by_code["T735U4RS4Z"].match) == (None, "none")
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


def test_a_mistyped_account_is_matched_only_by_the_rule(db, finance_user):
    student = make_student("SCE/CS/0042/2022")
    make_student("SBE/ACC/0100/2019")
    data = ('"Receipt No.","Completion Time","Paid In","A/C No."\n'
            '"TAAAAAAAA1","2026-11-10 10:00:31","5,500.00","sce cs 0042 2022"\n'
            '"TAAAAAAAA2","2026-11-10 11:00:31","5,500.00","SCE/CS/042/2022"\n'
            '"TAAAAAAAA3","2026-11-10 12:00:31","5,500.00","my fees"\n').encode()
    result = payments_reconcile_statement(file=ContentFile(data, name="s.csv"), acting_user=finance_user)
    # spaces for separators: the same number; a missing digit is further than a typo: no match
    assert [(u.student, u.match) for u in result.unrecorded] == [(student, "exact"), (None, "none"),
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


# --- the rule for A/C No. → student, through the service ----------------------------------------

def statement_of(*accounts) -> ContentFile:
    lines = ['"Receipt No.","Completion Time","Paid In","A/C No.","Other Party Info"']
    lines += [f'"TACC{i:06d}","2026-11-10 10:{i:02d}:00","1,000.00","{a}","254711000{i:03d} - PAYER {i}"'
              for i, a in enumerate(accounts)]
    return ContentFile("\n".join(lines).encode(), name="accounts.csv")


@pytest.mark.parametrize("account,expected", [
    ("SCE/CS/0042/2022", ("exact", "SCE/CS/0042/2022")),
    ("'sce-cs.0042 2022", ("exact", "SCE/CS/0042/2022")),          # case, separators, Excel's apostrophe
    ("SCE/CS/0047/2022", ("typo", "SCE/CS/0042/2022")),           # one character wrong
    ("SCE/CS/0024/2022", ("typo", "SCE/CS/0042/2022")),           # two neighbours swapped
    ("SCE/CS/0051/2022", ("ambiguous", None)),                    # one character from 0050 and from 0052
    ("SCE/CS/0099/2022", ("none", None)),                         # far from every number
    ("SCE/CS/042/2022", ("none", None)),                          # a missing digit is not a typo here
    ("SCE/CS/0052/202", ("none", None)),
])
def test_accounts_are_matched_by_the_stated_rule(db, finance_user, account, expected):
    for reg in ("SCE/CS/0042/2022", "SCE/CS/0050/2022", "SCE/CS/0052/2022"):
        make_student(reg)
    result = payments_reconcile_statement(file=statement_of(account), acting_user=finance_user)
    (u,) = result.unrecorded
    assert (u.match, u.student.registration_number if u.student else None) == expected
    if u.match == "ambiguous":
        assert sorted(s.registration_number for s in
                      factories.models.Student.objects.filter(pk__in=u.candidates)) == ["SCE/CS/0050/2022",
                                                                                        "SCE/CS/0052/2022"]


def test_a_typo_next_to_a_number_with_a_missing_character_is_ambiguous(db, finance_user):
    """One wrong character from one number, one extra character from another: the payer may have
    meant either, so neither is proposed."""
    a = make_student("SCE/CS/0042/2022")
    b = make_student("SCE/CS/043/2022")     # a three-digit number: 0043 with one 0 extra
    result = payments_reconcile_statement(file=statement_of("SCE/CS/0043/2022"), acting_user=finance_user)
    (u,) = result.unrecorded
    assert (u.match, u.student) == ("ambiguous", None) and set(u.candidates) == {a.pk, b.pk}


# --- the saved reconciliation -----------------------------------------------------------------

def test_the_reconciliation_is_saved_with_its_file_and_every_line(world, finance_user):
    from core.models import ReconciliationLine, StatementReconciliation
    result = payments_reconcile_statement(file=sample(), acting_user=finance_user)
    rec = StatementReconciliation.objects.get()
    assert rec == result.reconciliation and rec.created_by == finance_user
    assert rec.original_name == "mpesa_statement.csv" and "mpesa" not in rec.file.name
    assert rec.file.name.startswith("statements/") and rec.file.read() == STATEMENT.read_bytes()
    # 4 with a payment + exact 5 + typos 7, 9, 15, 20 = 9 matched; 6 ambiguous; the other 10 nobody's
    assert (rec.lines_total, rec.matched_count, rec.ambiguous_count, rec.unmatched_count) == (20, 9, 1, 10)
    assert (rec.verified_count, rec.already_verified_count, rec.mismatched_count) == (2, 1, 1)
    assert [m["code"] for m in rec.missing] == ["TZZZZZZZZ1"]
    lines = {x.receipt: x for x in ReconciliationLine.objects.filter(reconciliation=rec)}
    assert len(lines) == 20 and [x.row for x in rec.lines.all()] == list(range(2, 22))
    first = lines["TL44LDQBWZ"]
    assert (first.outcome, first.match, first.payment, first.student) == ("verified", "payment", world["payments"]["one"],
                                                                          world["students"][0])
    assert first.phone == "254783694383"                   # the Other Party Info's number
    assert (lines["T6XJVR8FTU"].outcome, lines["TW7Q3GXSC1"].outcome) == ("mismatch", "already_verified")
    typo = lines["T11O5S4YYK"]
    assert (typo.outcome, typo.match, typo.student) == ("unrecorded", "typo", world["students"][1])
    assert "swapped" in typo.match_detail
    assert lines["TQ30JDC5VN"].candidates == sorted([world["students"][0].pk, world["students"][5].pk])


def test_a_refused_statement_saves_nothing(db, finance_user):
    from core.models import StatementReconciliation
    with pytest.raises(ImportFileError):
        payments_reconcile_statement(file=ContentFile(b"Name,Amount\nA,1\n", name="x.csv"), acting_user=finance_user)
    assert not StatementReconciliation.objects.exists()


# --- record and verify one line -----------------------------------------------------------------

@pytest.fixture
def saved(world, finance_user):
    return payments_reconcile_statement(file=sample(), acting_user=finance_user).reconciliation


def line_row(rec, code):
    return rec.lines.get(receipt=code).row


def test_record_and_verify_takes_everything_from_the_saved_line(saved, world, finance_user):
    from core.services.reconcile import statement_line_record_and_verify
    s5 = world["students"][4]
    row = line_row(saved, "TJT4KDF8ZC")
    payment = statement_line_record_and_verify(reconciliation_id=saved.pk, row=row, acting_user=finance_user,
                                               seen_receipt="TJT4KDF8ZC")
    assert (payment.student, payment.amount, payment.transaction_code, payment.method, payment.phone) == (
        s5, Decimal("5500.00"), "TJT4KDF8ZC", "mpesa", "254789719991")
    assert timezone.localtime(payment.paid_at).strftime("%Y-%m-%d %H:%M:%S") == "2026-11-14 10:04:31"
    assert payment.recorded_by == finance_user and payment.verified_by == finance_user and payment.is_verified
    reasons = list(Payment.history.filter(id=payment.pk).order_by("history_date")
                   .values_list("history_change_reason", flat=True))
    assert len(reasons) == 2 and all(f"mpesa_statement.csv (reconciliation #{saved.pk}, line {row})" in r
                                     for r in reasons)
    assert reasons[0].startswith("Recorded from") and reasons[1].startswith("Verified from")


def test_record_and_verify_of_a_typo_line_says_how_it_was_read(saved, world, finance_user):
    from core.services.reconcile import statement_line_record_and_verify
    payment = statement_line_record_and_verify(reconciliation_id=saved.pk, row=line_row(saved, "T11O5S4YYK"),
                                               acting_user=finance_user)
    assert payment.student == world["students"][1]
    first = Payment.history.filter(id=payment.pk).earliest("history_date")
    assert "A/C No. “SHS/NUR/0020/2022” read as SHS/NUR/0002/2022" in first.history_change_reason


@pytest.mark.parametrize("code,seen,words", [
    ("TQ30JDC5VN", None, "does not say for certain"),          # ambiguous
    ("T735U4RS4Z", None, "does not say for certain"),          # nobody's number
    ("TL44LDQBWZ", None, "already has a payment"),             # matched and verified by the statement
    ("T6XJVR8FTU", None, "already has a payment"),             # the amount differs: someone must look
    ("TJT4KDF8ZC", "TL44LDQBWZ", "the form was changed"),      # the page's code is not the line's
])
def test_record_and_verify_refusals_change_nothing(saved, finance_user, code, seen, words):
    from core.services.reconcile import statement_line_record_and_verify
    before = (Payment.objects.count(), Payment.history.count())
    with pytest.raises(ValidationError, match=words):
        statement_line_record_and_verify(reconciliation_id=saved.pk, row=line_row(saved, code),
                                         acting_user=finance_user, seen_receipt=seen)
    assert (Payment.objects.count(), Payment.history.count()) == before


def test_record_and_verify_twice_is_refused_the_second_time(saved, finance_user):
    from core.services.reconcile import statement_line_record_and_verify
    row = line_row(saved, "TJT4KDF8ZC")
    statement_line_record_and_verify(reconciliation_id=saved.pk, row=row, acting_user=finance_user)
    with pytest.raises(ValidationError, match="already has a payment: SED/ART/0005/2022, KES 5,500.00, verified"):
        statement_line_record_and_verify(reconciliation_id=saved.pk, row=row, acting_user=finance_user)
    assert Payment.objects.filter(transaction_code="TJT4KDF8ZC").count() == 1


@pytest.mark.parametrize("rec_id,row,words", [(None, 999, "has no line 999"), (0, 2, "no such reconciliation"),
                                              (None, 1, "has no line 1")])
def test_record_and_verify_of_a_line_that_does_not_exist(saved, finance_user, rec_id, row, words):
    from core.services.reconcile import statement_line_record_and_verify
    with pytest.raises(ValidationError, match=words):
        statement_line_record_and_verify(reconciliation_id=saved.pk if rec_id is None else rec_id, row=row,
                                         acting_user=finance_user)


def test_only_finance_officers_record_and_verify(saved, lib_reviewer):
    from core.services.reconcile import statement_line_record_and_verify
    with pytest.raises(ValidationError, match="Only finance officers"):
        statement_line_record_and_verify(reconciliation_id=saved.pk, row=line_row(saved, "TJT4KDF8ZC"),
                                         acting_user=lib_reviewer)
    assert not Payment.objects.filter(transaction_code="TJT4KDF8ZC").exists()
