"""Balance imports through the services: exact results for the samples, rule 5 (holds and the FIN
approval follow the money), refusals, idempotency, failure half-way, background runs, queries."""
from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.imports.balances import ImportFileError
from core.models import BalanceImport, ClearanceApproval, FinanceRecord, Hold, Notification
from core.services import balances as balances_service
from core.services.balances import (balances_import_apply, balances_import_apply_async, balances_import_preview,
                                    balances_import_preview_async, balances_import_submit)
from tests import factories
from tests.factories import student_with_reg as make_student
from tests.conftest import approval_of

SAMPLES = Path(__file__).resolve().parents[3] / "fixtures" / "samples"
A = ClearanceApproval.Status
H = Hold.Status

XLSX_BALANCES = {"SCE/IT/0001/2021": "-1200.00", "SHS/NUR/0002/2022": "0.00", "SHS/NUR/0003/2021": "250.00", "SBE/ACC/0004/2021": "12500.00", "SED/ART/0005/2022": "35000.00", "SCE/IT/0006/2021": "0.00", "SHS/NUR/0007/2022": "0.00", "SCE/CS/0008/2021": "0.00", "SBE/ACC/0009/2021": "4500.50", "SED/ART/0010/2022": "35000.00", "SED/ART/0011/2022": "0.00", "SBE/ACC/0012/2021": "0.00", "SCE/IT/0013/2022": "12500.00", "SBE/ACC/0014/2022": "4500.00", "SED/ART/0015/2022": "-1200.00", "SHS/NUR/0016/2022": "12500.00", "SBE/ACC/0017/2021": "4500.50", "SHS/NUR/0018/2021": "-1200.00", "SHS/NUR/0019/2021": "12500.00", "SHS/NUR/0020/2022": "4500.00", "SCE/CS/0021/2021": "250.00", "SED/ART/0022/2021": "-1200.00", "SCE/CS/0023/2022": "0.00", "SCE/CS/0024/2022": "35000.00", "SED/ART/0025/2021": "0.00", "SHS/NUR/0026/2021": "35000.00", "SHS/NUR/0027/2022": "4500.00", "SHS/NUR/0028/2021": "0.00", "SBE/ACC/0029/2021": "0.00", "SCE/CS/0030/2021": "12500.00", "SED/ART/0031/2022": "4500.50", "SCE/IT/0032/2021": "-1200.00", "SBE/ACC/0033/2022": "0.00", "SED/ART/0034/2022": "250.00", "SHS/NUR/0035/2022": "0.00", "SHS/NUR/0036/2022": "35000.00", "SCE/IT/0037/2022": "35000.00", "SBE/ACC/0038/2022": "-1200.00", "SCE/CS/0039/2022": "-1200.00", "SCE/CS/0040/2022": "0.00", "SCE/CS/0041/2022": "250.00", "SBE/ACC/0042/2022": "4500.50", "SED/ART/0043/2021": "0.00", "SCE/CS/0044/2022": "4500.00", "SED/ART/0045/2022": "-1200.00", "SCE/IT/0046/2022": "0.00", "SBE/ACC/0047/2022": "4500.50", "SBE/ACC/0048/2022": "0.00", "SCE/CS/0049/2021": "4500.50", "SHS/NUR/0050/2021": "4500.50", "SCE/IT/0051/2022": "0.00", "SED/ART/0052/2021": "0.00", "SHS/NUR/0053/2022": "-1200.00", "SCE/IT/0054/2022": "0.00", "SCE/CS/0055/2022": "12500.00", "SHS/NUR/0056/2022": "4500.50", "SCE/IT/0057/2021": "0.00", "SHS/NUR/0058/2021": "-1200.00", "SHS/NUR/0059/2021": "4500.50", "SBE/ACC/0060/2021": "-1200.00"}
CSV_ROWS = {"SCE/IT/0001/2021": ("-1200.00", True), "SHS/NUR/0002/2022": ("0.00", True), "SHS/NUR/0003/2021": ("250.00", False), "SBE/ACC/0004/2021": ("12500.00", False), "SED/ART/0005/2022": ("35000.00", False), "SCE/IT/0006/2021": ("0.00", False), "SHS/NUR/0007/2022": ("0.00", False), "SCE/CS/0008/2021": ("0.00", True), "SBE/ACC/0009/2021": ("4500.50", False), "SED/ART/0010/2022": ("35000.00", False), "SED/ART/0011/2022": ("0.00", False), "SBE/ACC/0012/2021": ("0.00", True), "SCE/IT/0013/2022": ("12500.00", True), "SBE/ACC/0014/2022": ("4500.50", False), "SED/ART/0015/2022": ("-1200.00", True), "SHS/NUR/0016/2022": ("12500.00", False), "SBE/ACC/0017/2021": ("4500.50", False), "SHS/NUR/0018/2021": ("-1200.00", True), "SHS/NUR/0019/2021": ("12500.00", False), "SHS/NUR/0020/2022": ("4500.50", False), "SCE/CS/0021/2021": ("250.00", False), "SED/ART/0022/2021": ("-1200.00", False), "SCE/CS/0023/2022": ("0.00", True), "SCE/CS/0024/2022": ("35000.00", False), "SED/ART/0025/2021": ("0.00", True), "SHS/NUR/0026/2021": ("35000.00", True), "SHS/NUR/0027/2022": ("4500.50", True), "SHS/NUR/0028/2021": ("0.00", True), "SBE/ACC/0029/2021": ("0.00", True), "SCE/CS/0030/2021": ("12500.00", False)}


def sample(name) -> ContentFile:
    return ContentFile((SAMPLES / name).read_bytes(), name=name)


def history_counts():
    return (FinanceRecord.history.count(), Hold.history.count(), ClearanceApproval.history.count())


@pytest.fixture
def xlsx_world(offices, open_request, finance_user):
    """The 60 students the finance export names, each with a zero FinanceRecord, except:
    0001 owed 5,000 (import hold 5,000; FIN rejected) and now has a credit; 0002 owes nothing (FIN
    approved at opening); 0003 had an import hold of 100, the file says 250; 0004 owes nothing yet, the file
    says 12,500; 0005 has no FinanceRecord at all; 0008 has a hold placed by hand."""
    students = {}
    for reg in XLSX_BALANCES:
        s = make_student(reg, with_user=reg in ("SCE/IT/0001/2021", "SBE/ACC/0004/2021"))
        students[reg] = s
        if reg != "SED/ART/0005/2022":
            factories.FinanceRecordFactory(student=s, tuition_balance=Decimal("0"))
    fin = offices["FIN"]
    s1, s3 = students["SCE/IT/0001/2021"], students["SHS/NUR/0003/2021"]
    FinanceRecord.objects.filter(student=s1).update(tuition_balance=Decimal("5000"))
    FinanceRecord.objects.filter(student=s3).update(tuition_balance=Decimal("100"))
    factories.HoldFactory(department=fin, student=s1, amount=Decimal("5000"), reason="Outstanding fee balance of KES 5,000.00",
                          source=Hold.Source.BALANCE_IMPORT)
    factories.HoldFactory(department=fin, student=s3, amount=Decimal("100"), reason="Outstanding fee balance of KES 100.00",
                          source=Hold.Source.BALANCE_IMPORT)
    factories.HoldFactory(department=fin, student=students["SCE/CS/0008/2021"], reason="Library fine paid by cheque bounced")
    requests = {reg: open_request(students[reg]) for reg in
                ("SCE/IT/0001/2021", "SHS/NUR/0002/2022", "SHS/NUR/0003/2021", "SBE/ACC/0004/2021", "SCE/CS/0008/2021")}
    ClearanceApproval.objects.filter(request=requests["SCE/IT/0001/2021"], department=fin).update(
        status=A.REJECTED, reason="Outstanding fee balance of KES 5,000.00", decided_at=timezone.now())
    return students, requests


def test_finance_export_sample_preview_then_apply(xlsx_world, finance_user, django_capture_on_commit_callbacks):
    students, requests = xlsx_world
    before = history_counts()
    bi = balances_import_preview(file=sample("balances_finance_export.xlsx"), acting_user=finance_user)
    # preview changes nothing but the import
    assert history_counts() == before
    assert FinanceRecord.objects.get(student=students["SBE/ACC/0004/2021"]).tuition_balance == 0
    assert bi.status == BalanceImport.Status.PREVIEWED
    assert (bi.rows_total, bi.updated_count, bi.unchanged_count, bi.not_found_count, bi.error_count) == (61, 40, 20, 1, 0)
    assert bi.plan["not_found"] == [[67, "NOT/A/0000/1999"]]
    assert len(bi.sha256) == 64 and bi.file.name and bi.original_name == "balances_finance_export.xlsx"
    changed = {c["registration_number"]: c for c in bi.changed_rows}
    assert (changed["SCE/IT/0001/2021"]["old_balance"], changed["SCE/IT/0001/2021"]["new_balance"]) == ("5000.00", "-1200.00")
    assert changed["SED/ART/0005/2022"]["record_id"] is None
    assert "SHS/NUR/0002/2022" not in changed
    assert bi.warnings == ["Skipped: 4 rows that are not data (totals, signature or title lines, blank rows): "
                           "rows 30, 56, 68, 69."]

    with django_capture_on_commit_callbacks(execute=True):
        bi = balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert bi.status == BalanceImport.Status.APPLIED and bi.applied_at
    assert (bi.updated_count, bi.unchanged_count) == (40, 20)
    # exact balances for every student in the file, created where missing
    got = {reg: str(bal) for reg, bal in FinanceRecord.objects.values_list("student__registration_number", "tuition_balance")}
    assert got == {reg: str(Decimal(v).quantize(Decimal("0.01"))) for reg, v in XLSX_BALANCES.items()}
    assert FinanceRecord.objects.filter(last_import=bi).count() == 40
    # holds: one active import hold per positive balance, with that amount; 0001's released
    fin_holds = {h.student.registration_number: h for h in Hold.objects.filter(
        department__code="FIN", source=Hold.Source.BALANCE_IMPORT, status=H.ACTIVE).select_related("student")}
    assert {reg: h.amount for reg, h in fin_holds.items()} == {
        reg: Decimal(v) for reg, v in XLSX_BALANCES.items() if Decimal(v) > 0}
    assert len(fin_holds) == 29 and sum(h.amount for h in fin_holds.values()) == Decimal("344504.50")
    assert fin_holds["SBE/ACC/0004/2021"].reason == "Outstanding fee balance of KES 12,500.00"
    assert fin_holds["SHS/NUR/0003/2021"].amount == Decimal("250.00")        # updated, same hold
    assert Hold.objects.filter(student=students["SHS/NUR/0003/2021"], department__code="FIN").count() == 1
    released = Hold.objects.get(student=students["SCE/IT/0001/2021"], department__code="FIN")
    assert (released.status, released.released_by, released.balance_import) == (H.RELEASED, finance_user, bi)
    manual = Hold.objects.get(student=students["SCE/CS/0008/2021"])
    assert manual.status == H.ACTIVE                                           # placed by hand: left alone
    # rule 5: the FIN approval follows the money, decided by the import
    fin_state = {reg: (a.status, a.reason) for reg, a in
                 ((reg, approval_of(r, "FIN")) for reg, r in requests.items())}
    assert fin_state == {
        "SCE/IT/0001/2021": (A.APPROVED, ""),
        "SHS/NUR/0002/2022": (A.APPROVED, ""),
        "SHS/NUR/0003/2021": (A.REJECTED, "Outstanding fee balance of KES 250.00"),
        "SBE/ACC/0004/2021": (A.REJECTED, "Outstanding fee balance of KES 12,500.00"),
        "SCE/CS/0008/2021": (A.REJECTED, "Finance hold: Library fine paid by cheque bounced"),
    }
    a4 = approval_of(requests["SBE/ACC/0004/2021"], "FIN")
    assert (a4.decided_by, a4.decided_by_import) == (finance_user, bi)
    # history names the import, one row per changed record
    reason = f"Balance import #{bi.pk}"
    assert FinanceRecord.history.filter(history_change_reason=reason, history_type="~").count() == 39
    assert FinanceRecord.history.filter(history_change_reason=reason, history_type="+").count() == 1
    assert FinanceRecord.history.filter(history_change_reason=reason).first().history_user == finance_user
    assert Hold.history.filter(history_change_reason=reason, history_type="+").count() == 28
    assert Hold.history.filter(history_change_reason=reason, history_type="~").count() == 2
    # 0002 opened approved and 0008 opened rejected for its hold (rule 5 from the opening): the
    # import decides 0001 (approved), 0004 (rejected) and 0003 (the amount it names changed)
    assert ClearanceApproval.history.filter(history_change_reason=reason).count() == 3
    # the students whose clearance moved are told
    notes = {n.user_id: n.title for n in Notification.objects.all()}
    assert notes[students["SCE/IT/0001/2021"].user_id] == "FIN: approved"
    assert notes[students["SBE/ACC/0004/2021"].user_id] == "FIN: rejected"


def test_same_file_twice_changes_nothing(xlsx_world, finance_user):
    bi = balances_import_preview(file=sample("balances_finance_export.xlsx"), acting_user=finance_user)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    before = history_counts()
    holds = list(Hold.objects.values_list("pk", "status", "amount"))
    again = balances_import_preview(file=sample("balances_finance_export.xlsx"), acting_user=finance_user)
    assert (again.updated_count, again.unchanged_count, again.not_found_count) == (0, 60, 1)
    assert again.sha256 == bi.sha256
    assert any(f"already applied as import #{bi.pk}" in w for w in again.warnings)
    again = balances_import_apply(balance_import=again, acting_user=finance_user)
    assert again.status == BalanceImport.Status.APPLIED and again.updated_count == 0
    assert history_counts() == before
    assert list(Hold.objects.values_list("pk", "status", "amount")) == holds


def test_semicolon_csv_sample(offices, finance_user, open_request):
    students = {reg: make_student(reg) for reg in CSV_ROWS}
    for reg, s in students.items():
        factories.FinanceRecordFactory(student=s, tuition_balance=Decimal("250.00") if reg == "SHS/NUR/0003/2021" else 0)
    waived = students["SHS/NUR/0007/2022"]
    FinanceRecord.objects.filter(student=waived).update(graduation_fee_status=FinanceRecord.GraduationFeeStatus.WAIVED)
    req = open_request(students["SBE/ACC/0004/2021"])
    bi = balances_import_preview(file=sample("balances_semicolon.csv"), acting_user=finance_user)
    assert (bi.rows_total, bi.error_count, bi.not_found_count) == (30, 0, 0)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    records = {r.student.registration_number: r for r in FinanceRecord.objects.select_related("student")}
    for reg, (balance, paid) in CSV_ROWS.items():
        assert records[reg].tuition_balance == Decimal(balance), reg
        expected = "paid" if paid else ("waived" if reg == "SHS/NUR/0007/2022" else "unpaid")
        assert records[reg].graduation_fee_status == expected, reg
    assert Hold.objects.filter(department__code="FIN", status=H.ACTIVE).count() == 16
    assert Hold.objects.get(student=students["SHS/NUR/0003/2021"]).amount == Decimal("250.00")
    assert approval_of(req, "FIN").status == A.REJECTED
    assert approval_of(req, "FIN").reason == "Outstanding fee balance of KES 12,500.00"


def _xlsx(rows) -> ContentFile:
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return ContentFile(out.getvalue(), name="balances.xlsx")


def test_a_file_with_errors_applies_nothing_unless_confirmed(three, finance_user):
    bad = _xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 500], ["SCE/CS/0002/2022", "lots"], ["nonsense", 1],
                 ["SCE/CS/0003/2022", 0]])
    bi = balances_import_preview(file=bad, acting_user=finance_user)
    assert bi.error_count == 2
    assert bi.errors == [
        {"row": 3, "column": "Balance", "reason": "“lots” is not an amount", "value": "lots"},
        {"row": 4, "column": "Reg No",
         "reason": "“nonsense” is not a registration number of the form SCHOOL/DEPT/NNNN/YYYY", "value": "nonsense"}]
    before = history_counts()
    with pytest.raises(ValidationError, match="(?i)the file has 2 errors; fix them or confirm skipping them"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert history_counts() == before
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.PREVIEWED
    assert sorted(FinanceRecord.objects.values_list("tuition_balance", flat=True)) == [10, 10, 10]
    balances_import_apply(balance_import=bi, acting_user=finance_user, skip_errors=True)
    assert dict(FinanceRecord.objects.values_list("student__registration_number", "tuition_balance")) == {
        "SCE/CS/0001/2022": Decimal("500"), "SCE/CS/0002/2022": Decimal("10"), "SCE/CS/0003/2022": Decimal("0")}


def test_apply_refused_when_applied_or_not_previewed(three, finance_user):
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 5]]), acting_user=finance_user)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    with pytest.raises(ValidationError, match="already applied"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    for status in (BalanceImport.Status.UPLOADED, BalanceImport.Status.FAILED, BalanceImport.Status.CANCELLED):
        other = factories.BalanceImportFactory(status=status)
        with pytest.raises(ValidationError, match="not previewed"):
            balances_import_apply(balance_import=other, acting_user=finance_user)


def test_failure_half_way_leaves_the_database_as_before(three, finance_user, offices, open_request, monkeypatch):
    req = open_request(three[0])
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 700], ["SCE/CS/0002/2022", 0]]),
                                 acting_user=finance_user)
    before = history_counts()
    fin_before = approval_of(req, "FIN").status

    def broken(**kwargs):
        raise RuntimeError("database went away")
    monkeypatch.setattr(balances_service, "finance_clearance_follow", broken)
    with pytest.raises(RuntimeError):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert history_counts() == before
    assert sorted(FinanceRecord.objects.values_list("tuition_balance", flat=True)) == [10, 10, 10]
    assert not Hold.objects.exists()
    assert approval_of(req, "FIN").status == fin_before
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.FAILED
    assert "RuntimeError: database went away" in bi.failure_reason and "Nothing was changed" in bi.failure_reason
    with pytest.raises(ValidationError, match="not previewed"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)


def test_apply_reports_its_progress_where_other_processes_see_it(three, finance_user, offices, open_request,
                                                                  monkeypatch):
    """The apply is one transaction: its row says 0% until it commits, so the page reads the
    progress the apply reports to the shared cache."""
    from core.selectors.finance import balance_import_progress
    open_request(three[0])
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 700],
                                             ["SCE/CS/0002/2022", 0]]), acting_user=finance_user)
    seen = []
    follow = balances_service.finance_clearance_follow

    def watching(**kwargs):
        row = BalanceImport.objects.get(pk=bi.pk)
        seen.append((row.status, row.progress, balance_import_progress(row)))
        return follow(**kwargs)
    monkeypatch.setattr(balances_service, "finance_clearance_follow", watching)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert seen == [(BalanceImport.Status.APPLYING, 0, 80)]      # records and holds written, clearance next
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.APPLIED and balance_import_progress(bi) == 100


@pytest.mark.parametrize("data,words", [
    (b"", "empty"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "password-protected"),
    (b"%PDF-1.4 not a sheet", "PDF"),
    (b"Name,Amount\nA,1\n", "No header row"),
])
def test_unreadable_files_change_nothing(db, finance_user, data, words):
    with pytest.raises(ImportFileError, match=words):
        balances_import_preview(file=ContentFile(data, name="x.xlsx"), acting_user=finance_user)
    assert not BalanceImport.objects.exists()


def test_preview_in_the_background(three, finance_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        bi = balances_import_preview_async(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 900]]),
                                           acting_user=finance_user)
    bi.refresh_from_db()
    assert (bi.status, bi.progress, bi.updated_count) == (BalanceImport.Status.PREVIEWED, 100, 1)
    with django_capture_on_commit_callbacks(execute=True):
        balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.APPLIED
    assert FinanceRecord.objects.get(student=three[0]).tuition_balance == Decimal("900")
    assert Hold.objects.get(student=three[0]).amount == Decimal("900")


def test_unreadable_file_in_the_background_ends_failed(db, finance_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        bi = balances_import_preview_async(file=ContentFile(b"%PDF-1.4 x", name="x.pdf"), acting_user=finance_user)
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.FAILED and "PDF" in bi.failure_reason


def test_large_files_go_to_the_background(db, finance_user, django_capture_on_commit_callbacks):
    rows = "".join(f"SCE/CS/{i:04d}/2022,{i}\n" for i in range(1, 5102))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        bi = balances_import_submit(file=ContentFile(("Reg No,Balance\n" + rows).encode(), name="big.csv"),
                                    acting_user=finance_user)
    assert len(callbacks) == 1                      # queued, not run inline
    bi.refresh_from_db()
    assert (bi.status, bi.rows_total, bi.not_found_count) == (BalanceImport.Status.PREVIEWED, 5101, 5101)
    small = balances_import_submit(file=ContentFile(b"Reg No,Balance\nSCE/CS/0001/2022,1\n", name="s.csv"),
                                   acting_user=finance_user)
    assert small.status == BalanceImport.Status.PREVIEWED


def _world(n, offices, open_request):
    students = [make_student(f"SCE/CS/{i:04d}/2022") for i in range(1, n + 1)]
    for s in students:
        factories.FinanceRecordFactory(student=s)
    for s in students[: n // 2]:
        open_request(s)
    return students


def _queries(n, offices, open_request, finance_user, first):
    _world_students = _world(n, offices, open_request) if first else None
    rows = [["Reg No", "Balance"]] + [[f"SCE/CS/{i:04d}/2022", (i % 3) * 100] for i in range(1, n + 1)]
    with CaptureQueriesContext(connection) as ctx:
        bi = balances_import_preview(file=_xlsx(rows), acting_user=finance_user)
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    return len(ctx.captured_queries), bi


def test_queries_do_not_grow_with_rows(offices, open_request, finance_user, sqlite_param_limit, monkeypatch):
    monkeypatch.setattr("core.history.BULK_BATCH_SIZE", 10_000)
    finance_user.has_perm("core.add_balanceimport")        # load the permission cache before counting
    small, _ = _queries(6, offices, open_request, finance_user, True)
    FinanceRecord.objects.all().delete()
    Hold.objects.all().delete()
    from core.models import ClearanceRequest, Student
    ClearanceApproval.objects.all().delete()
    ClearanceRequest.objects.all().delete()
    Student.objects.all().delete()
    large, bi = _queries(60, offices, open_request, finance_user, True)
    assert bi.updated_count == 40
    assert large == small


def test_only_finance_officers_import(three, finance_user, registry_user, lib_reviewer):
    file = _xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 5]])
    for user in (registry_user, lib_reviewer):
        with pytest.raises(ValidationError, match="Only finance officers"):
            balances_import_preview(file=file, acting_user=user)
    assert not BalanceImport.objects.exists()
    bi = balances_import_preview(file=file, acting_user=finance_user)
    with pytest.raises(ValidationError, match="Only finance officers"):
        balances_import_apply(balance_import=bi, acting_user=registry_user)
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.PREVIEWED
    assert FinanceRecord.objects.get(student=three[0]).tuition_balance == Decimal("10")


def test_more_unreadable_files_change_nothing(db, finance_user):
    import random
    import zipfile
    rnd = random.Random(1)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b" " * (40 * 1024 * 1024))
    for data, words in [(bytes(rnd.getrandbits(8) for _ in range(4000)), "not a spreadsheet"),
                        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG image"),
                        (bomb.getvalue(), "zip bomb"),
                        (b"x" * (20 * 1024 * 1024 + 1), "limit is 20 MB")]:
        with pytest.raises(ImportFileError, match=words):
            balances_import_preview(file=ContentFile(data, name="f.xlsx"), acting_user=finance_user)
    assert not BalanceImport.objects.exists()


def test_cancel_a_previewed_import(three, finance_user):
    from core.services.balances import balances_import_cancel
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 5]]), acting_user=finance_user)
    balances_import_cancel(balance_import=bi, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=bi.pk).status == BalanceImport.Status.CANCELLED
    with pytest.raises(ValidationError, match="not previewed"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    with pytest.raises(ValidationError, match="only a previewed import"):
        balances_import_cancel(balance_import=bi, acting_user=finance_user)
    assert FinanceRecord.objects.get(student=three[0]).tuition_balance == Decimal("10")


def test_a_queued_apply_cannot_be_confirmed_again_and_then_applies(three, finance_user,
                                                                    django_capture_on_commit_callbacks):
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 700]]),
                                 acting_user=finance_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.QUEUED          # waiting for a worker: no second confirm
    with pytest.raises(ValidationError, match="being applied"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert FinanceRecord.objects.get(student=three[0]).tuition_balance != Decimal("700")
    for callback in callbacks:                                # the worker picks it up
        callback()
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.APPLIED
    assert FinanceRecord.objects.get(student=three[0]).tuition_balance == Decimal("700")


def test_a_queued_import_refused_by_the_worker_ends_failed_not_queued(three, finance_user):
    from core.tasks import balances_import_apply_task
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 700],
                                             ["SCE/CS/0002/2022", "abc"]]), acting_user=finance_user)
    BalanceImport.objects.filter(pk=bi.pk).update(status=BalanceImport.Status.QUEUED)
    balances_import_apply_task(bi.pk, finance_user.pk, False)   # errors not confirmed as skipped
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.FAILED and "error" in bi.failure_reason


# --- a plan that went stale between preview and apply (issue: overlapping imports) ---------------

def test_an_apply_after_another_import_changed_the_balances_is_refused_and_changes_nothing(three, finance_user,
                                                                                            offices):
    first = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 700],
                                                ["SCE/CS/0002/2022", 0]]), acting_user=finance_user)
    second = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 0],
                                                 ["SCE/CS/0002/2022", 0], ["SCE/CS/0003/2022", 10]]),
                                     acting_user=finance_user)
    balances_import_apply(balance_import=first, acting_user=finance_user)
    after_first = (history_counts(), sorted(FinanceRecord.objects.values_list("student__registration_number",
                                                                               "tuition_balance")))
    with pytest.raises(ValidationError) as exc:
        balances_import_apply(balance_import=second, acting_user=finance_user)
    message = exc.value.messages[0]
    # 0001 and 0002 moved (10 → 700, 10 → 0); 0003 did not
    assert message.startswith("Balances changed since this preview (2 students, e.g. SCE/CS/0001/2022: KES 10.00 at "
                              "the preview, KES 700.00 now")
    assert message.endswith("preview the file again.")
    assert (history_counts(), sorted(FinanceRecord.objects.values_list("student__registration_number",
                                                                        "tuition_balance"))) == after_first
    second.refresh_from_db()
    assert second.status == BalanceImport.Status.FAILED
    assert "Balances changed since this preview" in second.failure_reason
    # the holds are those of the first import: 0001 owes 700
    assert list(Hold.objects.filter(status=H.ACTIVE).values_list("student__registration_number", "amount")) == [
        ("SCE/CS/0001/2022", Decimal("700.00"))]


def test_a_graduation_fee_marked_by_hand_since_the_preview_makes_the_plan_stale(three, finance_user):
    from core.services.payments import finance_records_set_graduation_fee_status

    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance", "Graduation fee paid"],
                                             ["SCE/CS/0001/2022", 10, "Yes"]]), acting_user=finance_user)
    record = FinanceRecord.objects.get(student=three[0])
    finance_records_set_graduation_fee_status(record_ids=[record.pk], status=FinanceRecord.GraduationFeeStatus.WAIVED,
                                              acting_user=finance_user, reason="Bursary")
    with pytest.raises(ValidationError, match=r"Balances changed since this preview \(1 student, "):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert FinanceRecord.objects.get(pk=record.pk).graduation_fee_status == FinanceRecord.GraduationFeeStatus.WAIVED


def test_a_record_created_since_the_preview_makes_the_plan_stale(offices, finance_user):
    newcomer = make_student("SCE/CS/0009/2022")
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0009/2022", 300]]),
                                 acting_user=finance_user)
    assert bi.changed_rows[0]["record_id"] is None
    factories.FinanceRecordFactory(student=newcomer, tuition_balance=Decimal("50"))
    with pytest.raises(ValidationError, match="no record at the preview, KES 50.00 now"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert FinanceRecord.objects.get(student=newcomer).tuition_balance == Decimal("50")


def test_holds_follow_the_stored_balance_of_rows_the_file_leaves_unchanged(three, finance_user, offices):
    # 0001's balance of 10 is unchanged by the file but has lost its hold (placed before rule 5 held):
    # the apply puts back the hold the stored balance calls for
    bi = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 10],
                                             ["SCE/CS/0002/2022", 0]]), acting_user=finance_user)
    assert bi.unchanged_count == 1
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert dict(Hold.objects.filter(status=H.ACTIVE, source=Hold.Source.BALANCE_IMPORT).values_list(
        "student__registration_number", "amount")) == {"SCE/CS/0001/2022": Decimal("10.00")}


def test_a_stale_import_is_previewed_again_against_the_records_as_they_are_now(three, finance_user):
    from core.services.balances import balances_import_preview_again

    first = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 700]]),
                                    acting_user=finance_user)
    second = balances_import_preview(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 800]]),
                                     acting_user=finance_user)
    balances_import_apply(balance_import=first, acting_user=finance_user)
    with pytest.raises(ValidationError, match="preview the file again"):
        balances_import_apply(balance_import=second, acting_user=finance_user)
    again = balances_import_preview_again(balance_import=second, acting_user=finance_user)
    assert again.pk != second.pk and again.status == BalanceImport.Status.PREVIEWED
    assert [(c["old_balance"], c["new_balance"]) for c in again.changed_rows] == [("700.00", "800.00")]
    balances_import_apply(balance_import=again, acting_user=finance_user)
    assert FinanceRecord.objects.get(student=three[0]).tuition_balance == Decimal("800")
    with pytest.raises(ValidationError, match="is applied; there is nothing to preview again"):
        balances_import_preview_again(balance_import=again, acting_user=finance_user)
