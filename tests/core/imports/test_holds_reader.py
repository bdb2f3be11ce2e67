"""The hold-list reader: the balance reader's file rules, with an office's columns (registration
number, reason, optional amount) and one hold per student and distinct reason."""
from __future__ import annotations

from decimal import Decimal

import pytest

from core.imports.balances import ImportFileError, parse_balances
from core.imports.holds import parse_holds, reason_key

from .conftest import openpyxl_bytes, xlsxwriter_bytes


def rows_of(parsed):
    return [(r.row, r.registration_number, r.reason, r.amount) for r in parsed.rows]


def test_a_library_export_with_title_rows_other_words_and_messy_cells():
    data = "\n".join([
        "KABARAK UNIVERSITY LIBRARY", "Overdue items as at 30/04/2026", "",
        "Adm No;Borrower;Book Title;Barcode;Fine (KES)",
        " sce/cs/0001/2022 ;Ann;Introduction to  Algorithms;B001;Ksh 1,500",
        "SCE/CS/0001/2022;Ann;Calculus;B002;-",
        "SCE/CS/0002/2022;Bob;Physics;B003;",
        ";;;;", "Total;;;;1500", "Printed by: librarian;;;;",
    ]).encode("utf-8-sig")
    parsed = parse_holds(data)
    assert rows_of(parsed) == [(5, "SCE/CS/0001/2022", "Introduction to Algorithms", Decimal("1500.00")),
                               (6, "SCE/CS/0001/2022", "Calculus", Decimal("0.00")),
                               (7, "SCE/CS/0002/2022", "Physics", None)]
    assert parsed.errors == []
    assert parsed.skipped_rows == [8, 9, 10]
    assert [parsed.skipped_why[r] for r in (8, 9, 10)] == ["blank", "total", "footer"]
    assert parsed.columns.labels == {"reg": "Adm No", "reason": "Book Title", "amount": "Fine (KES)"}


def test_the_amount_column_is_optional():
    parsed = parse_holds(b"Reg. No.,Damage\nSCE/CS/0001/2022,Broken chair\n")
    assert rows_of(parsed) == [(2, "SCE/CS/0001/2022", "Broken chair", None)]


@pytest.mark.parametrize("header", ["Reason", "Title", "Item", "Book", "Description", "Details", "Damage",
                                    "Item Description", "BOOK TITLE"])
def test_reason_aliases(header):
    parsed = parse_holds(f"Registration Number,{header},Amount\nSCE/CS/0001/2022,Desk,100\n".encode())
    assert parsed.rows[0].reason == "Desk"


def test_bad_cells_are_errors_naming_row_column_and_why():
    parsed = parse_holds("\n".join([
        "Reg No,Item,Charge",
        "SCE/CS/0001/2022,Chair,abc",
        "SCE/CS/0002/2022,,100",
        "SCE/CS/0003/2022,Table,(200.00)",
        "SCE/X,Bed,100",
        "SCE/CS/0004/2022," + "x" * 300 + ",1",
        "SCE/CS/0005/2022,Lamp,12.500",
    ]).encode())
    assert [(e.row, e.column) for e in parsed.errors] == [(2, "Charge"), (3, "Item"), (4, "Charge"), (5, "Reg No"),
                                                          (6, "Item")]
    reasons = [e.reason for e in parsed.errors]
    assert reasons[0] == "“abc” is not an amount"
    assert reasons[1].startswith("no reason")
    assert "negative" in reasons[2]
    assert "not a registration number" in reasons[3]
    assert "at most 255" in reasons[4]
    # 12.500 alone could be either; the column writes its decimals with a point ((200.00)): 12.50
    assert rows_of(parsed) == [(7, "SCE/CS/0005/2022", "Lamp", Decimal("12.50"))]
    assert parsed.error_students == {"SCE/CS/0001/2022", "SCE/CS/0002/2022", "SCE/CS/0003/2022", "SCE/CS/0004/2022"}


def test_the_column_decides_an_ambiguous_amount():
    parsed = parse_holds(b"Reg No;Item;Amount\nSCE/CS/0001/2022;Chair;1.250,50\nSCE/CS/0002/2022;Desk;12.500\n")
    assert [r.amount for r in parsed.rows] == [Decimal("1250.50"), Decimal("12500.00")]


def test_one_hold_per_distinct_reason_and_repeats():
    parsed = parse_holds(b"Reg No,Title,Fine\nSCE/CS/0001/2022,Calculus,10\nSCE/CS/0001/2022,CALCULUS ,10\n"
                         b"SCE/CS/0001/2022,Physics,\nSCE/CS/0002/2022,Physics,5\nSCE/CS/0002/2022,Physics,6\n")
    assert rows_of(parsed) == [(2, "SCE/CS/0001/2022", "Calculus", Decimal("10.00")),
                               (4, "SCE/CS/0001/2022", "Physics", None)]
    assert parsed.duplicate_rows == 1
    assert [(e.row, e.column) for e in parsed.errors] == [(5, "Title"), (6, "Title")]
    assert reason_key(" Intro  to\tALGORITHMS ") == "intro to algorithms"


def test_a_balances_file_is_not_a_hold_list_and_a_hold_list_not_balances():
    with pytest.raises(ImportFileError, match="expected a registration number column .* and a reason column"):
        parse_holds(b"Reg No,Balance\nSCE/CS/0001/2022,100\n")
    with pytest.raises(ImportFileError, match="No header row"):
        parse_balances(b"Reg No,Title\nSCE/CS/0001/2022,Calculus\n")


def test_two_reason_columns_read_the_first_and_say_so():
    parsed = parse_holds(b"Reg No,Item,Details,Amount\nSCE/CS/0001/2022,Chair,broken leg,100\n")
    assert parsed.rows[0].reason == "Chair"
    assert parsed.preview_warnings()[0] == ("The reason is read from “Item” (column B); “Details” (column C) "
                                            "not read.")


def test_xlsxwriter_file_with_numbers_text_and_a_formula_total():
    def build(wb):
        ws = wb.add_worksheet("Damages")
        ws.write_row(0, 0, ["Hostel damage list"])
        ws.write_row(2, 0, ["Reg No", "Room", "Damage", "Amount (KES)"])
        ws.write_row(3, 0, ["SCE/CS/0001/2022", "A12", "Broken window", 2500])
        ws.write_row(4, 0, ["sce/cs/0002/2022", "B3", "Mattress", "KES 1,200.00"])
        ws.write_row(5, 0, ["Total", "", "", ""])
        ws.write_formula(5, 3, "=SUM(D4:D5)", None, 3700)
    parsed = parse_holds(xlsxwriter_bytes(build))
    assert rows_of(parsed) == [(4, "SCE/CS/0001/2022", "Broken window", Decimal("2500.00")),
                               (5, "SCE/CS/0002/2022", "Mattress", Decimal("1200.00"))]
    assert parsed.skipped_rows == [6] and parsed.sheet == "Damages"


def test_hidden_sheet_only_is_refused_naming_holds():
    def build(wb):
        ws = wb.active
        ws.title = "Notes"
        ws.append(["nothing here"])
        hidden = wb.create_sheet("Overdue")
        hidden.append(["Reg No", "Title"])
        hidden.append(["SCE/CS/0001/2022", "Calculus"])
        hidden.sheet_state = "hidden"
    with pytest.raises(ImportFileError, match="The holds are on the hidden sheet “Overdue”"):
        parse_holds(openpyxl_bytes(build))


def test_a_libreoffice_saved_list(libreoffice):
    source = ("Reg No,Book Title,Fine\nSCE/CS/0001/2022,Calculus,150\nSCE/CS/0002/2022,Physics,\n"
              ",,\nTotal,,150\n").encode()
    for to in ("xlsx", "ods", "xls"):
        parsed = parse_holds(libreoffice.convert("overdue.csv", source, to))
        assert rows_of(parsed) == [(2, "SCE/CS/0001/2022", "Calculus", Decimal("150.00")),
                                   (3, "SCE/CS/0002/2022", "Physics", None)], to
