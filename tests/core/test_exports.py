"""The one writer of spreadsheets: formula-like text never comes out as a formula."""
from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest

from core.exports import csv_text, neutralise, xlsx_bytes

FORMULAS = ["=1+1", '=HYPERLINK("http://evil.example","x")', "+41 22", "-2+3", "@SUM(A1:A2)",
            "\t=1", "\r=1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_like_text_gets_an_apostrophe(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["SCE/CS/0001/2022", "a=b", "", 5, -1200, Decimal("-3.50"),
                                   datetime.date(2026, 1, 1), True])
def test_everything_else_is_left_as_it_is(value):
    assert neutralise(value) == value


def test_none_is_an_empty_cell():
    assert neutralise(None) == ""


def test_xlsx_cells_are_text_not_formulas():
    data = xlsx_bytes([(FORMULAS[1], -1200, None)], header=("=Value", "Amount", "Empty"), title="Errors")
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    header, row = list(ws.iter_rows())
    assert ws.title == "Errors"
    assert all(c.data_type != "f" for c in header + row)
    assert header[0].value == "'=Value" and row[0].value == "'" + FORMULAS[1]
    assert row[1].value == -1200 and row[1].data_type == "n"     # numbers stay numbers


def test_csv_cells_are_neutralised():
    rows = list(csv.reader(io.StringIO(csv_text([("@SUM(1)", "-5", 7)], header=("a", "b", "c")))))
    assert rows == [["a", "b", "c"], ["'@SUM(1)", "'-5", "7"]]
