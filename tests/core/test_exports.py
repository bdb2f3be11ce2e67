"""The one writer of spreadsheets: formula-like text never comes out as a formula."""
from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest

from core.exports import neutralise, xlsx_bytes

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


# --- the streaming writers of reports ------------------------------------------------------------

from core.exports import CSV_CHUNK_ROWS, Counted, csv_chunks, xlsx_write  # noqa: E402
from core.selectors.reports import Column  # noqa: E402

COLUMNS = [Column("=Name", width=30), Column("Amount", "money", 12), Column("Count", "int"),
           Column("When", "datetime", 17), Column("Day", "date"), Column("Rate", "percent")]
MOMENT = datetime.datetime(2026, 3, 1, 7, 30, tzinfo=datetime.timezone.utc)     # 10:30 in Nairobi


def _xlsx(rows, **kwargs):
    out = io.BytesIO()
    xlsx_write(rows, columns=COLUMNS, title=kwargs.pop("title", "Graduation list — cohort 2026"), out=out)
    out.seek(0)
    return openpyxl.load_workbook(out).active


def test_xlsx_report_has_a_title_row_a_styled_frozen_header_widths_and_formats(settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    ws = _xlsx([("Ann", Decimal("12500.50"), 3, MOMENT, datetime.date(2026, 3, 2), 33.3)])
    assert ws["A1"].value == "Graduation list — cohort 2026" and ws["A1"].font.b
    header = [c.value for c in ws[2]]
    assert header == ["'=Name", "Amount", "Count", "When", "Day", "Rate"]
    assert all(c.font.b and c.fill.fgColor.rgb.endswith("DCE6F1") for c in ws[2])
    assert ws.freeze_panes == "A3"
    assert ws.column_dimensions["A"].width == 30 and ws.column_dimensions["B"].width == 12
    name, amount, count, when, day, rate = ws[3]
    assert amount.value == 12500.5 and amount.number_format == "#,##0.00"
    assert count.value == 3 and count.number_format == "0"
    assert when.value == datetime.datetime(2026, 3, 1, 10, 30) and when.number_format == "yyyy-mm-dd hh:mm"
    assert day.value == datetime.datetime(2026, 3, 2) and day.number_format == "yyyy-mm-dd"
    assert rate.value == 33.3 and rate.number_format == '0.0"%"'


def test_xlsx_report_cells_are_neutralised_and_empty_stays_empty():
    ws = _xlsx([(f, None, None, None, None, None) for f in FORMULAS] + [("plain", -5, None, None, None, None)],
               title="=cmd|' /C calc'!A0")
    assert ws["A1"].value == "'=cmd|' /C calc'!A0"
    cells = [c for row in ws.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    # (XML reads a carriage return back as a line feed)
    assert [ws.cell(row=3 + i, column=1).value for i in range(len(FORMULAS))] == [
        "'" + f.replace("\r", "\n") for f in FORMULAS]
    assert ws.cell(row=3, column=2).value is None
    last = 3 + len(FORMULAS)
    assert ws.cell(row=last, column=2).value == -5       # a negative number stays a number


def test_xlsx_report_reuses_no_value_across_rows():
    ws = _xlsx([("a", 1, 1, None, None, None), ("b", None, 2, None, None, None)])
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=3)] == [
        ["a", 1, 1, None, None, None], ["b", None, 2, None, None, None]]


def test_csv_report_streams_in_chunks_with_neutralised_cells(settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    rows = [("=1+1", Decimal("-3.50"), i, MOMENT, datetime.date(2026, 3, 2), 50.0) for i in range(CSV_CHUNK_ROWS + 1)]
    counted = Counted(rows)
    chunks = list(csv_chunks(counted, columns=COLUMNS))
    assert len(chunks) == 3 and counted.count == CSV_CHUNK_ROWS + 1
    text = "".join(chunks)
    assert text.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text[1:])))
    assert parsed[0] == ["'=Name", "Amount", "Count", "When", "Day", "Rate"]
    assert parsed[1] == ["'=1+1", "-3.50", "0", "2026-03-01 10:30:00", "2026-03-02", "50.0"]
    assert len(parsed) == CSV_CHUNK_ROWS + 2


def test_csv_chunks_is_lazy():
    def rows():
        yield ("a", 1, 1, None, None, None)
        raise AssertionError("read past the first chunk")
    assert next(csv_chunks(rows(), columns=COLUMNS)).startswith("\ufeff")  # header before any row is read


# --- moments as csv text, one zone look-up per minute (core.bulk_load.LocalText) ------------------

from core.bulk_load import LocalText, moment_text  # noqa: E402


@pytest.mark.parametrize("zone", ["Africa/Nairobi", "Europe/London", "Asia/Kolkata", "America/St_Johns"])
def test_local_text_is_moment_text_across_transitions_and_odd_offsets(zone):
    import zoneinfo
    tz = zoneinfo.ZoneInfo(zone)
    utc = datetime.timezone.utc
    local = LocalText(tz, limit=50)
    start = datetime.datetime(2026, 3, 29, 0, 0, 0, 999_999, tzinfo=utc)     # London moves at 01:00 UTC
    instants = [start + datetime.timedelta(seconds=37 * i) for i in range(400)]
    instants += [datetime.datetime(1890, 6, 1, 12, 0, 30, tzinfo=utc),         # local mean time: odd seconds
                 datetime.datetime(2026, 10, 25, 0, 59, 59, tzinfo=utc), datetime.datetime(2026, 10, 25, 1, 0, tzinfo=utc)]
    for moment in instants:
        stored = str(moment.replace(tzinfo=None))          # what SQLite holds: naive UTC text
        assert local(stored) == moment_text(moment, tz), stored
    assert local(None) is None


def test_csv_rows_with_moments_as_text_are_still_neutralised_and_left_as_written():
    rows = [("=1+1", Decimal("-3.50"), 1, "2026-03-01 10:30:00", datetime.date(2026, 3, 2), 50.0),
            ("plain", None, 2, None, None, None)]
    text = "".join(csv_chunks(rows, columns=COLUMNS, moments_as_text=True))
    parsed = list(csv.reader(io.StringIO(text[1:])))
    assert parsed[1] == ["'=1+1", "-3.50", "1", "2026-03-01 10:30:00", "2026-03-02", "50.0"]
    assert parsed[2] == ["plain", "", "2", "", "", ""]


def test_read_ahead_gives_every_chunk_stops_when_closed_and_raises_what_the_reader_raised():
    import threading

    from core.bulk_load import _read_ahead
    chunks = iter([[1, 2], [3], []])
    assert list(_read_ahead(lambda: next(chunks))) == [[1, 2], [3]]
    endless = _read_ahead(lambda: [0])
    assert next(endless) == [0]
    endless.close()                        # the caller stops early: the thread is stopped and joined
    assert not [t for t in threading.enumerate() if t.name == "stream_rows read-ahead"]

    def broken():
        raise ValueError("disk I/O error")
    with pytest.raises(ValueError, match="disk I/O error"):
        list(_read_ahead(broken))
