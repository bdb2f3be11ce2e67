"""Reading balance spreadsheets: the samples, Excel/LibreOffice-style variants and files that must be
refused with a message (core/imports/balances.py). No database needed."""
from __future__ import annotations

import io
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font

from core.imports.balances import (MAX_FILE_BYTES, ImportFileError, estimate_rows, parse_amount, parse_balances,
                                   parse_yes_no)

SAMPLES = Path(__file__).resolve().parents[3] / "fixtures" / "samples"


def xlsx(*sheets, trailing_styled_rows=0) -> bytes:
    """sheets: (title, rows) pairs → xlsx bytes written by openpyxl."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
        if trailing_styled_rows:
            bold = Font(bold=True)
            start = ws.max_row + 1
            for r in range(start, start + trailing_styled_rows):
                for c in range(1, 4):
                    ws.cell(row=r, column=c).font = bold     # formatted, empty: what Excel leaves behind
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the samples --------------------------------------------------------------------------------

def test_finance_export_sample():
    p = parse_balances((SAMPLES / "balances_finance_export.xlsx").read_bytes())
    assert p.errors == []
    assert p.header.row == 4
    assert p.header.labels == {"reg": "Reg. No.", "balance": "Balance (KES)"}
    assert p.rows_read == 61 and len(p.rows) == 61 and p.skipped_total_rows == 1
    by_reg = {r.registration_number: r for r in p.rows}
    assert by_reg["SCE/IT/0001/2021"].balance == Decimal("-1200.00")     # (1,200.00), lower case
    assert by_reg["SCE/IT/0001/2021"].row == 5
    assert by_reg["SHS/NUR/0002/2022"].balance == Decimal("0")           # "-"
    assert by_reg["SBE/ACC/0004/2021"].balance == Decimal("12500.00")    # "12,500.00"
    assert by_reg["SED/ART/0005/2022"].balance == Decimal("35000.00")    # NBSP-padded reg number
    assert by_reg["SBE/ACC/0014/2022"].balance == Decimal("4500")        # "KES 4,500"
    assert by_reg["SBE/ACC/0017/2021"].balance == Decimal("4500.50")     # "Kshs 4,500.50"
    assert by_reg["SHS/NUR/0027/2022"].balance == Decimal("4500")        # "Ksh.4500"
    assert by_reg["SED/ART/0015/2022"].row == 19                         # " SED/ART/0015/2022 "
    assert by_reg["SHS/NUR/0026/2021"].row == 31                         # after the blank row 30
    assert by_reg["NOT/A/0000/1999"].balance == Decimal("1000.00")       # a student who is not ours: not an error
    assert "TOTAL" not in by_reg


def test_semicolon_csv_sample():
    p = parse_balances((SAMPLES / "balances_semicolon.csv").read_bytes())
    assert p.errors == []
    assert p.header.labels == {"reg": "Adm No", "balance": "Fee Balance", "grad": "Grad Fee Paid"}
    assert len(p.rows) == 30
    by_reg = {r.registration_number: r for r in p.rows}
    assert (by_reg["SCE/IT/0001/2021"].balance, by_reg["SCE/IT/0001/2021"].graduation_fee_paid) == (Decimal("-1200"), True)
    assert (by_reg["SHS/NUR/0003/2021"].balance, by_reg["SHS/NUR/0003/2021"].graduation_fee_paid) == (Decimal("250"), False)
    assert by_reg["SBE/ACC/0009/2021"].balance == Decimal("4500.50")     # 4500,50
    assert by_reg["SHS/NUR/0002/2022"].graduation_fee_paid is True       # "yes"
    assert by_reg["SCE/IT/0001/2021"].row == 2


@pytest.mark.parametrize("text,amount", [
    (12500, "12500"), (4500.5, "4500.50"), ("12,500.00", "12500"), ("KES 12,500", "12500"), ("Ksh 12500", "12500"),
    ("Ksh.450", "450"), ("Kshs 4,500.50", "4500.50"), ("(1,200.00)", "-1200"), ("-", "0"), ("", "0"),
    ("250,00", "250"), ("4500,50", "4500.50"), ("-1200,00", "-1200"), ("1.234.567,89", "1234567.89"),
    ("1,234,567.89", "1234567.89"), ("  3000 ", "3000"), ("KES -500", "-500"), ("1,200.00 CR", "-1200"),
    ("12,500/=", "12500"), ("0.00", "0"), ("0,5", "0.50"),
])
def test_amounts(text, amount):
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize("text", ["abc", "12a", "1,2,3", "KES", "12.5.6,7,8", True])
def test_not_amounts(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_yes_no():
    assert [parse_yes_no(v) for v in ("Yes", "no", "Y", "n", " TRUE ", "0", "", None)] == [
        True, False, True, False, True, False, None, None]
    with pytest.raises(ValueError):
        parse_yes_no("maybe")


# --- what Excel and LibreOffice produce -----------------------------------------------------------

def test_header_under_title_rows_numbers_as_text_total_and_trailing_formatted_rows():
    data = xlsx(("Balances", [
        ["KENYATTA-STYLE UNIVERSITY"], ["Fee balances report"], ["Printed 20/11/2026"], [],
        ["#", "Registration Number", "Name", "Outstanding", "Remarks"],
        [1, "sce/cs/0001/2022", "A", "12500", "sponsor pays"],
        [2, "SCE / CS / 0002 / 2022", "B", "0", None],
        [None], [],
        [3, "SCE/CS/0003/2022", "C", "4,500.50", ""],
        [None, "Total", None, 17000.5, None],
    ]), trailing_styled_rows=3000)
    p = parse_balances(data)
    assert p.errors == []
    assert p.header.row == 5 and p.header.labels["balance"] == "Outstanding" and p.header.labels["notes"] == "Remarks"
    assert [(r.row, r.registration_number, r.balance, r.notes) for r in p.rows] == [
        (6, "SCE/CS/0001/2022", Decimal("12500"), "sponsor pays"),
        (7, "SCE/CS/0002/2022", Decimal("0"), ""),
        (10, "SCE/CS/0003/2022", Decimal("4500.50"), ""),
    ]
    assert p.skipped_total_rows == 1


def test_balances_on_the_second_sheet():
    data = xlsx(("Summary", [["Report"], ["Nothing here"]]),
                ("Detail", [["Student No", "Amount Due"], ["SCE/CS/0001/2022", 100]]))
    p = parse_balances(data)
    assert p.sheet == "Detail"
    assert [(r.row, r.balance) for r in p.rows] == [(2, Decimal("100"))]


@pytest.mark.parametrize("reg_header,balance_header", [
    ("registration_number", "tuition_balance"), ("Reg No", "Balance"), ("REG. NO", "BALANCE (KES)"),
    ("Admission No", "Fee Balance"), ("adm no", "amount due"),
])
def test_header_names(reg_header, balance_header):
    data = f"{reg_header},{balance_header}\nSCE/CS/0001/2022,5\n".encode()
    assert parse_balances(data).rows[0].balance == Decimal("5")


def test_comma_csv_without_bom_and_csv_with_bom():
    plain = b"registration_number,tuition_balance,graduation_fee_paid,notes\r\nSCE/CS/0001/2022,\"12,500.00\",No,x\r\n"
    p = parse_balances(plain)
    assert (p.rows[0].balance, p.rows[0].graduation_fee_paid, p.rows[0].notes) == (Decimal("12500"), False, "x")
    assert parse_balances(b"\xef\xbb\xbf" + plain).rows[0].balance == Decimal("12500")


# --- row errors ---------------------------------------------------------------------------------------

def test_row_errors_name_row_column_and_reason():
    data = xlsx(("S", [
        ["Reg. No.", "Balance (KES)", "Grad Fee Paid"],
        ["SCE/CS/0001/2022", "twelve", "Yes"],       # text where a number belongs
        ["JOHN DOE", 100, "No"],                     # malformed registration number
        ["SCE/CS/0003/2022", 10_000_001, "No"],      # absurd
        ["SCE/CS/0004/2022", -10_000_001, "No"],     # absurd credit
        ["SCE/CS/0005/2022", 10_000_000, "maybe"],   # not yes/no
        ["SCE/CS/0006/2022", None, "No"],            # no balance: 0, with a warning (not an error)
        [None, 500, "No"],                           # no registration number
        ["SCE/CS/0008/2022", -10_000_000, "No"],     # at the limit: fine
    ]))
    p = parse_balances(data)
    got = [(e.row, e.column, e.reason) for e in p.errors]
    assert [(r, c) for r, c, _ in got] == [(2, "Balance (KES)"), (3, "Reg. No."), (4, "Balance (KES)"),
                                          (5, "Balance (KES)"), (6, "Grad Fee Paid"), (8, "Reg. No.")]
    assert "twelve" in got[0][2] and "not an amount" in got[0][2]
    assert "JOHN DOE" in got[1][2] and "SCHOOL/DEPT/NNNN/YYYY" in got[1][2]
    assert "absurd" in got[2][2] and "absurd" in got[3][2]
    assert [(r.registration_number, r.balance) for r in p.rows] == [("SCE/CS/0006/2022", Decimal("0")),
                                                                    ("SCE/CS/0008/2022", Decimal("-10000000"))]
    assert [(w.row, w.column) for w in p.row_warnings] == [(7, "Balance (KES)")]


def test_duplicates_identical_count_once_different_are_both_errors():
    data = (b"Reg No;Balance\n"
            b"SCE/CS/0001/2022;100\n"
            b"sce/cs/0001/2022;100,00\n"          # identical repeat: one row
            b"SCE/CS/0002/2022;100\n"
            b"SCE/CS/0003/2022;5\n"
            b"SCE/CS/0002/2022;200\n")            # differs: rows 4 and 6 are both errors
    p = parse_balances(data)
    assert [r.registration_number for r in p.rows] == ["SCE/CS/0001/2022", "SCE/CS/0003/2022"]
    assert p.duplicate_rows == 1
    assert [(e.row, e.column) for e in p.errors] == [(4, "Reg No"), (6, "Reg No")]
    assert "rows 4, 6" in p.errors[0].reason


# --- files that cannot be read -----------------------------------------------------------------------

def _refused(data, *words):
    with pytest.raises(ImportFileError) as info:
        parse_balances(data)
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def test_empty_file():
    _refused(b"", "empty")


def test_random_bytes():
    import random
    rnd = random.Random(4)
    _refused(bytes(rnd.getrandbits(8) for _ in range(5000)), "not a spreadsheet")


def test_pdf_and_image():
    _refused(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF", "not a spreadsheet")
    _refused(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG image")
    _refused(b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image")


def test_password_protected_workbook():
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    _refused(ole2, "cannot be read as an Excel 97-2003 (.xls)", "damaged or password-protected", "without a password")
    # an encrypted xlsx is an OLE2 container holding the workbook as "EncryptedPackage"
    encrypted = ole2 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 64 + "EncryptedPackage".encode("utf-16-le")
    _refused(encrypted, "password-protected", "without a password")


def test_too_big():
    _refused(b"Reg No,Balance\n" + b"x" * (MAX_FILE_BYTES + 1), "limit is 20 MB")


def test_no_recognisable_header_says_what_was_expected():
    message = _refused(xlsx(("S", [["Name", "Amount"], ["A", 1]])), "No header row", "Reg No", "Balance (KES)")
    assert "Outstanding" in message


def test_zip_that_is_not_a_workbook():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")
    _refused(out.getvalue(), "not an Excel workbook")


def test_zip_bomb_is_refused_before_reading():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as part:
            block = b" " * (1024 * 1024)
            for _ in range(60):
                part.write(block)
    assert len(out.getvalue()) < 1024 * 1024
    _refused(out.getvalue(), "zip bomb")


def test_truncated_workbook():
    data = xlsx(("S", [["Reg No", "Balance"], ["SCE/CS/0001/2022", 1]]))
    _refused(data[: len(data) // 2], "damaged")


WORKBOOK_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
    'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
}


def test_a_million_phantom_rows_are_not_materialised():
    """What LibreOffice leaves when a whole column was formatted: a million styled empty rows."""
    rows_total = 1_000_000
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in WORKBOOK_PARTS.items():
            z.writestr(name, text)
        with z.open("xl/worksheets/sheet1.xml", "w") as part:
            part.write(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                       f'spreadsheetml/2006/main"><dimension ref="A1:B{rows_total}"/><sheetData>'
                       '<row r="1"><c r="A1" t="inlineStr"><is><t>Reg No</t></is></c><c r="B1" t="inlineStr"><is>'
                       '<t>Balance</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>SCE/CS/0001/2022</t>'
                       '</is></c><c r="B2"><v>100</v></c></row>'.encode())
            batch = []
            for i in range(3, rows_total + 1):
                batch.append(f'<row r="{i}" s="1" customFormat="1"><c r="A{i}" s="1"/><c r="B{i}" s="1"/></row>')
                if len(batch) == 50_000:
                    part.write("".join(batch).encode())
                    batch = []
            part.write(("".join(batch) + "</sheetData></worksheet>").encode())
    data = out.getvalue()
    assert estimate_rows(data) == rows_total
    p = parse_balances(data)
    assert [(r.row, r.balance) for r in p.rows] == [(2, Decimal("100"))]
    assert p.errors == []


def test_rows_beyond_the_cap_are_refused(monkeypatch):
    from core.imports.balances import grid
    monkeypatch.setattr(grid, "MAX_ROWS", 5)
    data = "Reg No,Balance\n" + "".join(f"SCE/CS/{i:04d}/2022,1\n" for i in range(1, 10))
    _refused(data.encode(), "more than 5 rows")
    ok = "Reg No,Balance\n" + "".join(f"SCE/CS/{i:04d}/2022,1\n" for i in range(1, 6)) + ",\n" * 20
    assert len(parse_balances(ok.encode()).rows) == 5


def test_damaged_sheet_xml_says_damaged():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in WORKBOOK_PARTS.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.'
                                               'org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s">'
                                               '<v>7</v></c></row>')   # cut off, and a shared string that is not there
    _refused(out.getvalue(), "The sheet Sheet1 is damaged", "save it again as .xlsx")
