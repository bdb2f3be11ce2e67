"""Reading files as their writers make them (core/imports/balances/grid.py): which sheet, formulas
and what their stored results are worth, cells typed as percentages, dates, booleans or errors,
legacy .xls, ods, xlsm, and text in every encoding and line ending. No database needed."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from core.imports.balances import ImportFileError, parse_balances

from .conftest import openpyxl_bytes, xlsxwriter_bytes

D = Decimal


def refused(data, *words) -> str:
    with pytest.raises(ImportFileError) as info:
        parse_balances(data)
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def balances(parsed) -> dict:
    return {r.registration_number: r.balance for r in parsed.rows}


def errors(parsed) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.reason) for e in parsed.errors]


# --- which sheet -------------------------------------------------------------------------------

def _last_term_hidden_first(wb):
    old = wb.active
    old.title = "Last term"
    for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", 999], ["SCE/CS/0002/2022", 999]):
        old.append(row)
    old.sheet_state = "hidden"
    now = wb.create_sheet("This term")
    for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", 100], ["SCE/CS/0002/2022", 0]):
        now.append(row)
    wb.active = 1


HIDDEN_FIRST = openpyxl_bytes(_last_term_hidden_first)


def test_a_hidden_first_sheet_is_not_read_the_visible_one_is():
    p = parse_balances(HIDDEN_FIRST)
    assert p.sheet == "This term"
    assert balances(p) == {"SCE/CS/0001/2022": D("100"), "SCE/CS/0002/2022": D("0")}
    assert "Hidden sheet “Last term” not read." in p.preview_warnings()


@pytest.mark.parametrize("fmt", ["xlsx", "ods", "xls"])
def test_a_hidden_first_sheet_saved_by_libreoffice_is_not_read(libreoffice, fmt):
    p = parse_balances(libreoffice.convert("balances.xlsx", HIDDEN_FIRST, fmt))
    assert p.sheet == "This term" and balances(p)["SCE/CS/0001/2022"] == D("100")


def test_balances_only_on_a_hidden_sheet_are_refused_naming_it():
    def build(wb):
        wb.active.title = "Cover"
        wb.active.append(["Fee balances, term 2"])
        hidden = wb.create_sheet("Data")
        hidden.append(["Reg No", "Balance"])
        hidden.append(["SCE/CS/0001/2022", 5])
        hidden.sheet_state = "hidden"
    refused(openpyxl_bytes(build), "hidden sheet “Data”", "unhide it")


def test_later_visible_sheets_are_named_as_not_read():
    def build(wb):
        wb.active.title = "Term 2"
        wb.active.append(["Reg No", "Balance"])
        wb.active.append(["SCE/CS/0001/2022", 5])
        wb.create_sheet("Term 1").append(["Reg No", "Balance"])
    p = parse_balances(openpyxl_bytes(build))
    assert p.sheet == "Term 2"
    assert "Read the sheet “Term 2”; the other sheet “Term 1” not read." in p.preview_warnings()


# --- formulas ----------------------------------------------------------------------------------

def _formulas(wb, sheet_rows=(("SCE/CS/0001/2022", 1000, 400), ("SCE/CS/0002/2022", 300, 300))):
    ws = wb.active
    ws.append(["Reg No", "Billed", "Paid", "Balance"])
    for i, (reg, billed, paid) in enumerate(sheet_rows, start=2):
        ws.append([reg, billed, paid, f"=B{i}-C{i}"])


def test_formulas_written_by_openpyxl_have_no_values_and_are_refused():
    refused(openpyxl_bytes(_formulas), "the amounts are formulas without computed values",
            "column “Balance”, rows 2–3", "open and save the file in Excel or LibreOffice")


def test_formulas_written_by_xlsxwriter_are_refused_not_read_as_0():
    def build(wb):
        ws = wb.add_worksheet("Balances")
        ws.write_row(0, 0, ["Reg No", "Billed", "Paid", "Balance"])
        ws.write_row(1, 0, ["SCE/CS/0001/2022", 1000, 400])
        ws.write_formula(1, 3, "=B2-C2")          # xlsxwriter stores 0 as the result and asks Excel to recalculate
    refused(xlsxwriter_bytes(build), "formulas without computed values", "row 2")


def test_a_formula_xlsxwriter_was_given_a_result_for_is_still_not_trusted():
    def build(wb):
        ws = wb.add_worksheet("Balances")
        ws.write_row(0, 0, ["Reg No", "Balance"])
        ws.write(1, 0, "SCE/CS/0001/2022")
        ws.write_formula(1, 1, "=600", None, 600)     # a value the writer claims, never computed
    refused(xlsxwriter_bytes(build), "formulas without computed values")


def test_a_formula_only_in_the_totals_row_does_not_stop_the_file():
    def build(wb):
        ws = wb.active
        for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", 100], ["SCE/CS/0002/2022", 50], ["Total", "=SUM(B2:B3)"]):
            ws.append(row)
    p = parse_balances(openpyxl_bytes(build))
    assert balances(p) == {"SCE/CS/0001/2022": D("100"), "SCE/CS/0002/2022": D("50")}
    assert p.skipped_rows == [4]


@pytest.mark.parametrize("fmt", ["xlsx", "ods", "xls"])
def test_formulas_saved_by_libreoffice_are_read_with_their_computed_values(libreoffice, fmt):
    p = parse_balances(libreoffice.convert("balances.xlsx", openpyxl_bytes(_formulas), fmt))
    assert p.errors == []
    assert balances(p) == {"SCE/CS/0001/2022": D("600"), "SCE/CS/0002/2022": D("0")}


def _division_by_zero(wb):
    ws = wb.active
    for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", "=1/0"], ["SCE/CS/0002/2022", 50]):
        ws.append(row)


@pytest.mark.parametrize("fmt", ["xlsx", "ods"])
def test_an_error_value_is_an_error_naming_it_not_a_missing_balance(libreoffice, fmt):
    p = parse_balances(libreoffice.convert("balances.xlsx", openpyxl_bytes(_division_by_zero), fmt))
    assert errors(p) == [(2, "Balance", "“#DIV/0!” is the error value of the formula =1/0, not an amount")]
    assert balances(p) == {"SCE/CS/0002/2022": D("50")}
    assert p.row_warnings == []


# --- typed cells -------------------------------------------------------------------------------

def test_a_percentage_cell_is_an_error_not_kes_0_15():
    def build(wb):
        ws = wb.active
        for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", 0.15], ["SCE/CS/0002/2022", 1500]):
            ws.append(row)
        ws["B2"].number_format = "0%"
    p = parse_balances(openpyxl_bytes(build))
    assert errors(p) == [(2, "Balance", "a percentage (15%) where an amount belongs")]
    assert balances(p) == {"SCE/CS/0002/2022": D("1500")}


def test_a_percentage_written_by_xlsxwriter_with_a_custom_format_is_an_error():
    def build(wb):
        ws = wb.add_worksheet()
        ws.write_row(0, 0, ["Reg No", "Balance"])
        ws.write_row(1, 0, ["SCE/CS/0001/2022", 0.125], wb.add_format({"num_format": "0.0%"}))
        ws.write_row(2, 0, ["SCE/CS/0002/2022", 7], wb.add_format({"num_format": "#,##0.00"}))
    p = parse_balances(xlsxwriter_bytes(build))
    assert errors(p) == [(2, "Balance", "a percentage (12.5%) where an amount belongs")]
    assert balances(p) == {"SCE/CS/0002/2022": D("7")}


@pytest.mark.parametrize("fmt", ["xlsx", "ods"])
def test_a_percentage_saved_by_libreoffice_is_an_error(libreoffice, fmt):
    def build(wb):
        ws = wb.active
        for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", 0.15], ["SCE/CS/0002/2022", 1500]):
            ws.append(row)
        ws["B2"].number_format = "0%"
    p = parse_balances(libreoffice.convert("balances.xlsx", openpyxl_bytes(build), fmt))
    assert errors(p) == [(2, "Balance", "a percentage (15%) where an amount belongs")]


def test_a_date_or_a_boolean_where_the_amount_belongs_is_an_error_naming_it():
    def build(wb):
        for row in (["Reg No", "Balance"], ["SCE/CS/0001/2022", datetime.date(2026, 1, 5)],
                    ["SCE/CS/0002/2022", True], ["SCE/CS/0003/2022", 10]):
            wb.active.append(row)
    p = parse_balances(openpyxl_bytes(build))
    assert errors(p) == [(2, "Balance", "a date (2026-01-05) where an amount belongs"),
                         (3, "Balance", "a yes/no value (TRUE) where an amount belongs")]


# --- formats -------------------------------------------------------------------------------------

def _plain(wb):
    for row in (["Balances"], [], ["Reg. No.", "Balance (KES)"], ["sce/cs/0001/2022", 12500.5],
                ["SCE/CS/0002/2022", -300]):
        wb.active.append(row)


@pytest.mark.parametrize("to", ["xls", "ods", "xlsm:Calc MS Excel 2007 VBA XML"])
def test_legacy_xls_ods_and_xlsm_are_read(libreoffice, to):
    p = parse_balances(libreoffice.convert("balances.xlsx", openpyxl_bytes(_plain), to))
    assert p.errors == [] and p.header.row == 3
    assert [(r.row, r.registration_number, r.balance) for r in p.rows] == [
        (4, "SCE/CS/0001/2022", D("12500.50")), (5, "SCE/CS/0002/2022", D("-300"))]


def test_unicode_text_from_libreoffice_utf16_tab_separated(libreoffice):
    csv = "Reg No,Name,Balance\r\nSCE/CS/0001/2022,Wanjirũ,\"12,500.00\"\r\nSCE/CS/0002/2022,Ochieng,(1200)\r\n"
    data = libreoffice.convert("balances.csv", csv.encode(), "txt:Text - txt - csv (StarCalc):9,34,65535")
    assert data[:2] == b"\xff\xfe"                       # UTF-16 with its BOM, as Excel's "Unicode text" too
    p = parse_balances(data)
    assert balances(p) == {"SCE/CS/0001/2022": D("12500"), "SCE/CS/0002/2022": D("-1200")}


TEXT = "Reg No;Name;Balance\nSCE/CS/0001/2022;Müller;12.500,00\nSCE/CS/0002/2022;Zoë;-\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_text_in_every_encoding_and_line_ending(encoding, newline):
    p = parse_balances(TEXT.replace("\n", newline).encode(encoding))
    assert [(r.row, r.registration_number, r.balance) for r in p.rows] == [
        (2, "SCE/CS/0001/2022", D("12500")), (3, "SCE/CS/0002/2022", D("0"))]


def test_mac_line_endings_with_a_quoted_line_break_inside_a_field():
    data = b'Reg No,Notes,Balance\r"SCE/CS/0001/2022","two\rlines",100\rSCE/CS/0002/2022,,5\r'
    p = parse_balances(data)
    assert balances(p) == {"SCE/CS/0001/2022": D("100"), "SCE/CS/0002/2022": D("5")}


def test_tab_separated():
    p = parse_balances(b"Reg No\tBalance\nSCE/CS/0001/2022\t1,250.00\n")
    assert balances(p) == {"SCE/CS/0001/2022": D("1250")}


def test_broken_csv_is_refused_with_the_line_not_a_traceback():
    data = b"Reg No,Balance\nSCE/CS/0001/2022,\"100\n" + b"x" * (200 * 1024) + b"\n"
    refused(data, "cannot be read as CSV")


# --- hostile and damaged files ------------------------------------------------------------------

def test_an_xls_that_makes_calamine_abort_kills_only_the_child_that_read_it(libreoffice, monkeypatch):
    """Some damaged BIFF records make calamine ask for hundreds of gigabytes and Rust aborts the
    process: the .xls is read in a child process, so the worker lives and the file is refused."""
    import os
    from core.imports.balances import grid
    data = libreoffice.convert("balances.xlsx", openpyxl_bytes(_plain), "xls")
    monkeypatch.setattr(grid, "_sheets_from_workbook", lambda *args: os.abort())
    refused(data, "cannot be read as an Excel 97-2003 (.xls) workbook", "damaged")


def test_mangled_files_are_refused_with_a_message_never_a_traceback():
    import random
    rnd = random.Random(11)
    seeds = [openpyxl_bytes(_plain), openpyxl_bytes(_formulas), openpyxl_bytes(_last_term_hidden_first),
             TEXT.encode("utf-16"), TEXT.encode()]
    for _ in range(300):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.2:
            data = data[:rnd.randrange(1, len(data))]
        try:
            parse_balances(bytes(data))
        except ImportFileError:
            pass
