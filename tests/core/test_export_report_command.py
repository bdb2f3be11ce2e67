"""`manage.py export_report`: for every report, the file it writes holds the selector's rows."""
from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from core.exports import neutralise
from core.models import ExportLog
from core.selectors.reports import REPORTS
from tests.reports_world import world  # noqa: F401  (a fixture)

ARGS = {"audit_trail": ["--since", "2000-01-01"], "pending_by_department": ["--department", "LIB"],
        "graduation_list": ["--cohort", "2026"]}


def as_excel(value):
    """A selector's value as openpyxl reads it back from the xlsx."""
    value = neutralise(value)
    if value == "":
        return None
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).replace(tzinfo=None)
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time.min)
    if isinstance(value, Decimal):
        return float(value)
    return value


def as_csv(value):
    value = neutralise(value)
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    return str(value)


def close(a, b):
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return abs(a - b) < datetime.timedelta(milliseconds=2)      # Excel keeps moments to the millisecond
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) < 1e-9
    return a == b


def expected_rows(name, args):
    report = REPORTS[name]
    raw = {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args), 2)}
    return list(report.rows(report.parse(raw))), report


@pytest.mark.parametrize("name", list(REPORTS))
def test_xlsx_of_every_report_holds_the_selectors_rows(world, name, tmp_path, capsys):
    out = tmp_path / f"{name}.xlsx"
    args = ARGS.get(name, [])
    rows, report = expected_rows(name, args)      # before: the export itself goes into the audit trail
    call_command("export_report", name, "--format", "xlsx", "--out", str(out), *args)
    assert rows, "the world gives every report rows"
    ws = openpyxl.load_workbook(out).active
    assert ws["A1"].value.startswith(report.title + " — ")
    assert [c.value for c in ws[2]] == [neutralise(h) for h in report.header()]
    written = [[c.value for c in row] for row in ws.iter_rows(min_row=3)]
    assert len(written) == len(rows)
    for got, want in zip(written, rows):
        want = [as_excel(v) for v in want]
        got = got + [None] * (len(want) - len(got))
        assert all(close(g, w) for g, w in zip(got, want)), (got, want)
    assert f"Wrote {len(rows)} rows of {name}" in capsys.readouterr().out
    log = ExportLog.objects.get()
    assert (log.report, log.format, log.rows, log.user, log.made_by) == (name, "xlsx", len(rows), None,
                                                                       "command export_report")
    assert log.history.get().history_type == "+"


@pytest.mark.parametrize("name", list(REPORTS))
def test_csv_of_every_report_holds_the_selectors_rows(world, name, tmp_path):
    out = tmp_path / f"{name}.csv"
    args = ARGS.get(name, [])
    rows, report = expected_rows(name, args)
    call_command("export_report", name, "--format", "csv", "--out", str(out), *args)
    text = out.read_text(encoding="utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == [neutralise(h) for h in report.header()]
    assert parsed[1:] == [[as_csv(v) for v in row] for row in rows]
    assert ExportLog.objects.get().filters == {k.lstrip("-"): v for k, v in zip(args[::2], args[1::2])}


def test_a_formula_from_the_data_comes_out_as_text(world, tmp_path):
    out = tmp_path / "held.xlsx"
    call_command("export_report", "completed_but_now_held", "--out", str(out))
    ws = openpyxl.load_workbook(out).active
    assert ws.cell(row=3, column=9).value == "'=HYPERLINK(\"x\")"
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_list_names_every_report(capsys, db):
    call_command("export_report", "--list")
    out = capsys.readouterr().out
    for report in REPORTS.values():
        assert f"{report.name}: {report.title}." in out
    assert "--since, --until" in out


@pytest.mark.parametrize("args, message", [
    (["nope", "--out", "x.xlsx"], "There is no report called 'nope'"),
    ([], "Name a report"),
    (["gowns"], "--out FILE"),
    (["graduation_list", "--out", "x.xlsx", "--cycle", "12ab"], "--cycle: no clearance cycle has the id '12ab'"),
    (["graduation_list", "--out", "x.xlsx", "--cohort", "last"], "--cohort: 'last' is not a year such as 2026"),
    (["graduation_list", "--out", "x.xlsx", "--school", "ZZZ"], "--school: no school has the code 'ZZZ'"),
    (["audit_trail", "--out", "x.xlsx", "--since", "yesterday"],
     "--since: 'yesterday' is not a date written YYYY-MM-DD"),
    (["audit_trail", "--out", "x.xlsx", "--school", "SCE"], "--school: this report does not take a school filter"),
    (["gowns", "--out", "/no/such/folder/x.xlsx"], "there is no folder /no/such/folder"),
])
def test_bad_arguments_are_a_clear_command_error(db, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CommandError) as exc:
        call_command("export_report", *args)
    assert message in str(exc.value)
    assert not ExportLog.objects.exists()
