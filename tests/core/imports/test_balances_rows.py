"""The rules of reading a balances file once its cells are known (core/imports/balances/cells.py,
headers.py, rows.py): which column is the balance, amounts as accountants write them, separators
decided by the column, registration numbers, rows that are not data, blank amounts."""
from __future__ import annotations

from decimal import Decimal

import pytest

from core.imports.balances import ImportFileError, parse_amount, parse_balances

from .conftest import openpyxl_bytes

D = Decimal


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def xlsx(*rows) -> bytes:
    def build(wb):
        for row in rows:
            wb.active.append(list(row))
    return openpyxl_bytes(build)


def balances(parsed) -> dict:
    return {r.registration_number: r.balance for r in parsed.rows}


def refused(data, *words) -> str:
    with pytest.raises(ImportFileError) as info:
        parse_balances(data)
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), message
    return message


# --- which column is the balance --------------------------------------------------------------------

@pytest.mark.parametrize("opening,closing", [
    ("Balance (b/f)", "Balance (c/f)"), ("Balance b/f", "Balance c/f"), ("Opening Balance", "Closing Balance"),
    ("Balance brought forward", "Balance carried forward"), ("Arrears B/F", "Current Balance"),
    ("Balance (KES) b/f", "Balance (KES) as at 30/06/2026"),
])
def test_the_closing_balance_wins_over_the_opening_one(opening, closing):
    for header in ([opening, closing], [closing, opening]):
        data = xlsx(["Reg No", *header, "Name"], ["SCE/CS/0001/2022",
                                                  *(500 if h == opening else 700 for h in header), "A"])
        p = parse_balances(data)
        assert balances(p) == {"SCE/CS/0001/2022": D("700")}, header
        assert p.header.labels["balance"] == closing
        assert any(f"“{closing}”" in w and f"“{opening}”" in w and "not read" in w for w in p.preview_warnings())


def test_a_plain_balance_beside_an_opening_one_is_the_balance():
    p = parse_balances(csv("Reg No,Balance b/f,Payments,Balance", "SCE/CS/0001/2022,500,200,300"))
    assert balances(p) == {"SCE/CS/0001/2022": D("300")}


@pytest.mark.parametrize("header,words", [
    ("Reg No,Fee Balance,Amount Due", ["Two columns could be the balance", "“Fee Balance” (column B)",
                                       "“Amount Due” (column C)"]),
    ("Reg No,Closing balance,Balance c/f", ["More than one column", "“Closing balance” (column B)",
                                            "“Balance c/f” (column C)"]),
    ("Reg No,Balance b/f", ["only balance column is “Balance b/f” (column B)", "opening balance"]),
])
def test_no_rule_decides_the_column_so_the_file_is_refused_naming_them(header, words):
    refused(csv(header, "SCE/CS/0001/2022,1,2"), *words)


# --- amounts ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,amount", [
    ("30,250.00 DR", "30250"), ("30,250.00DR", "30250"), ("Dr 500", "500"), ("1,200.00 CR", "-1200"),
    ("1,200.00 Cr.", "-1200"), ("(1,200.00) CR", "-1200"), ("1,200.00-", "-1200"), ("\u22121,200.00", "-1200"),
    ("\u2013500", "-500"), ("KES\u00a012,500.00", "12500"), ("Ksh 12\u2009500", "12500"), ("KSh. 450", "450"),
    ("Kshs. 4,500.50", "4500.50"), ("12\u202f500,00", "12500"), ("12 500", "12500"), ("1'250.00", "1250"),
    ("KES (3,000)", "-3000"), ("-KES 1,200", "-1200"), ("+700", "700"), ("12,500/-", "12500"), ("NIL", "0"),
    ("—", "0"), ("0,500", "0.50"), ("4500.500", "4500.50"),
])
def test_how_accountants_write_amounts(text, amount):
    assert parse_amount(text) == D(amount)


@pytest.mark.parametrize("text,words", [
    ("15%", "a percentage"), ("12.5 %", "a percentage"), ("USD 500", "not in KES"), ("$500", "not in KES"),
    ("500 DR CR", "both as a debit (DR) and as a credit"), ("-500 DR", "both as a debit"), ("N/A", "not an amount"),
    ("12,5000", "separators in the wrong places"), ("12.500", "could be KES 12,500.00 or KES 12.50"),
])
def test_what_is_not_an_amount_says_why(text, words):
    with pytest.raises(ValueError) as info:
        parse_amount(text)
    assert words in str(info.value)


def test_percent_text_in_the_amount_column_is_an_error_even_with_skip_errors_nothing_is_written():
    p = parse_balances(csv("Reg No,Balance", "SCE/CS/0001/2022,15%", "SCE/CS/0002/2022,100"))
    assert [(e.row, e.column, e.reason) for e in p.errors] == [
        (2, "Balance", "a percentage (“15%”) where an amount belongs")]
    assert balances(p) == {"SCE/CS/0002/2022": D("100")}          # what skip-errors would write


def test_the_column_decides_12_500_when_it_writes_points_as_thousands():
    p = parse_balances(csv("Reg No;Balance", "SCE/CS/0001/2022;12.500", "SCE/CS/0002/2022;1.250.000",
                           "SCE/CS/0003/2022;750"))
    assert p.errors == []
    assert balances(p) == {"SCE/CS/0001/2022": D("12500"), "SCE/CS/0002/2022": D("1250000"),
                           "SCE/CS/0003/2022": D("750")}


def test_the_column_decides_12_500_when_it_writes_points_as_decimals():
    p = parse_balances(csv("Reg No,Balance", "SCE/CS/0001/2022,12.500", "SCE/CS/0002/2022,99.50",
                           'SCE/CS/0003/2022,"12,500"'))
    assert balances(p) == {"SCE/CS/0001/2022": D("12.50"), "SCE/CS/0002/2022": D("99.50"),
                           "SCE/CS/0003/2022": D("12500")}


def test_the_column_decides_12_500_when_it_writes_commas_as_decimals():
    p = parse_balances(csv("Reg No;Balance", "SCE/CS/0001/2022;12,500", "SCE/CS/0002/2022;250,50"))
    assert balances(p) == {"SCE/CS/0001/2022": D("12.50"), "SCE/CS/0002/2022": D("250.50")}


def test_a_column_that_writes_decimals_both_ways_refuses_only_the_ambiguous_rows():
    p = parse_balances(csv("Reg No;Balance", "SCE/CS/0001/2022;1,250.00", "SCE/CS/0002/2022;250,50",
                           "SCE/CS/0003/2022;12.500", "SCE/CS/0004/2022;12,500"))
    assert balances(p) == {"SCE/CS/0001/2022": D("1250"), "SCE/CS/0002/2022": D("250.50")}
    assert [(e.row, e.column) for e in p.errors] == [(4, "Balance"), (5, "Balance")]
    reason = p.errors[0].reason
    assert "“12.500” could be KES 12,500.00 or KES 12.50" in reason
    assert "“1,250.00”, row 2" in reason and "“250,50”, row 3" in reason


def test_a_lone_12_500_with_points_is_refused_and_with_a_comma_is_thousands():
    p = parse_balances(csv("Reg No;Balance", "SCE/CS/0001/2022;12.500", "SCE/CS/0002/2022;12,500",
                           "SCE/CS/0003/2022;400"))
    assert balances(p) == {"SCE/CS/0002/2022": D("12500"), "SCE/CS/0003/2022": D("400")}
    assert [(e.row, e.column) for e in p.errors] == [(2, "Balance")]
    assert "nothing else in this column shows" in p.errors[0].reason


def test_an_ambiguous_amount_over_the_limit_is_still_absurd():
    p = parse_balances(csv("Reg No;Balance", "SCE/CS/0001/2022;999.999.999", "SCE/CS/0002/2022;12.500"))
    assert [(e.row, "absurd" in e.reason) for e in p.errors] == [(2, True)]
    assert balances(p) == {"SCE/CS/0002/2022": D("12500")}


# --- registration numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["'SED/ECD/0007/2021", " 'sed/ecd/0007/2021 ", "’SED/ECD/0007/2021",
                                     '="SED/ECD/0007/2021"', "SED/ECD/\u200b0007/2021", "SED / ECD / 0007 / 2021"])
def test_registration_numbers_without_the_apostrophe_and_stray_characters(written):
    p = parse_balances(csv("Reg No,Balance", f'"{written.replace(chr(34), chr(34) * 2)}",100'))
    assert p.errors == [] and balances(p) == {"SED/ECD/0007/2021": D("100")}


# --- rows that are not data -------------------------------------------------------------------------

def test_sub_totals_footers_captions_and_repeated_headers_are_skipped_and_counted():
    data = xlsx(
        ["FEE BALANCES"], [],
        ["S/No", "Reg No", "Name", "Balance"],
        [None, "SCHOOL OF EDUCATION", None, None],                        # 4 caption
        [1, "SED/ECD/0001/2021", "A", 100],
        [2, "SED/ECD/0002/2021", "B", 200],
        [None, "Sub-total", None, 300],                                    # 7
        [],                                                                # 8 blank
        [None, "SCHOOL OF COMPUTING", None, None],                         # 9 caption
        ["S/No", "Reg No", "Name", "Balance"],                             # 10 header again (a new page)
        [3, "SCE/CS/0003/2022", "C", "1,000.00"],
        [None, None, "Sub Total", 1000],                                   # 12 label in another column
        [None, "Grand Total", None, 1300],                                 # 13
        [None, "Total outstanding:", None, "1,300.00"],                    # 14
        [],
        ["Prepared by: ____________", None, None, None],                   # 16 signature lines
        [None, "Checked by:", None, None],
        [None, "Date printed: 20/11/2026", None, None],
        [None, "Approved by", "J. Otieno", "Signature ______"],
    )
    p = parse_balances(data)
    assert p.errors == [] and p.row_warnings == []
    assert balances(p) == {"SED/ECD/0001/2021": D("100"), "SED/ECD/0002/2021": D("200"),
                           "SCE/CS/0003/2022": D("1000")}
    assert p.skipped_rows == [4, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19]
    assert p.rows_read == 3
    assert ("Skipped: 13 rows that are not data (totals, signature or title lines, blank rows): rows 4, 7, 8, 9, "
            "10, 12, 13, 14, 15, 16, …." in p.preview_warnings())


def test_a_row_shaped_like_a_registration_number_that_fails_is_still_an_error():
    p = parse_balances(csv("Reg No,Balance", "SCE-CS-0001-2022,100", "SCE/CS/0002/2022,abc", "12345,",
                           "JOHN DOE,100", "JOHN DOE,"))
    assert [(e.row, e.column) for e in p.errors] == [(2, "Reg No"), (3, "Balance"), (4, "Reg No"), (5, "Reg No")]
    assert p.skipped_rows == [6]                                         # a name alone: a caption


def test_a_blank_amount_beside_a_registration_number_is_0_with_a_warning_for_that_row():
    p = parse_balances(xlsx(["Reg No", "Balance"], ["SCE/CS/0001/2022", None], ["SCE/CS/0002/2022", "  "],
                            ["SCE/CS/0003/2022", "-"], ["SCE/CS/0004/2022", 5]))
    assert p.errors == []
    assert balances(p) == {"SCE/CS/0001/2022": D("0"), "SCE/CS/0002/2022": D("0"), "SCE/CS/0003/2022": D("0"),
                           "SCE/CS/0004/2022": D("5")}
    assert [(w.row, w.column) for w in p.row_warnings] == [(2, "Balance"), (3, "Balance")]   # "-" says nil itself
    warnings = p.preview_warnings()
    assert "2 rows with a registration number but no amount are read as KES 0.00 (listed below): check them " \
           "before confirming." in warnings
    assert {"row": 2, "column": "Balance", "value": "",
            "reason": "no amount: read as KES 0.00 (a zero shown as blank is written as an empty cell)"} in warnings
