"""Report queries written by hand where the ORM's would cost more than the file they feed."""
from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.db import connection

from ..bulk_load import LocalText, local_text_sql, quote, stream_rows
from ..models import ClearanceApproval, ClearanceCycle, ClearanceRequest, Programme, School, Student


def _table(model) -> str:
    return quote(model._meta.db_table)


def graduation_list_rows(*, office_ids: list[int], status: str, cycle: int | None = None, cohort: int | None = None,
                         school: str | None = None, programme: str | None = None, zone=None,
                         chunk: int = 2000, read_ahead: bool = False) -> Iterator[tuple]:
    """Requests of `status`, ordered by registration number then id, as plain tuples:
    (registration number, student's name, school code, programme code, cohort, cycle name,
    completed at, then when each office of `office_ids` decided — None where it has no item or
    has not decided). Moments are aware UTC datetimes, or with `zone` (a tzinfo with a `key`)
    the text of their local time there, "YYYY-MM-DD HH:MM:SS" (core.bulk_load.moment_text).
    `read_ahead`: see core.bulk_load.stream_rows (only for a caller reading every row).

    Each request's approvals are read once, through the (request, department) index, in the
    query itself — no GROUP BY over every selected column, and the cost follows the rows
    exported: PostgreSQL aggregates them per office in a LATERAL subquery (and writes the local
    time text itself); SQLite, which has no LATERAL, aggregates them into one text per request
    ("d1,d2,,d4": each office in its place), and the moments are converted here (one zone look-up per distinct minute: core.bulk_load.LocalText;
    SQLite's own 'localtime' costs more than the query)."""
    q = quote
    postgres = connection.vendor == "postgresql"
    select_params: list = []

    def moment(sql: str) -> str:
        if not postgres:
            # an expression has no declared type: the raw text, not Django's converter per value
            return f"CAST({sql} AS TEXT)"
        if zone is None:
            return sql
        text, extra = local_text_sql(sql, zone.key)
        select_params.extend(extra)
        return text

    columns = [f"s.{q('registration_number')}", f"s.{q('first_name')}", f"s.{q('last_name')}", f"sc.{q('code')}",
               f"p.{q('code')}", f"s.{q('expected_graduation_year')}", f"c.{q('name')}", moment(f"r.{q('completed_at')}")]
    approvals = _table(ClearanceApproval)
    lateral, lateral_params = "", []
    if postgres:
        if office_ids:
            columns += [moment(f"g.d{i}") for i in range(len(office_ids))]
            aggregates = ", ".join(f"MAX(a.{q('decided_at')}) FILTER (WHERE a.{q('department_id')} = %s) AS d{i}"
                                   for i in range(len(office_ids)))
            lateral = (f" LEFT JOIN LATERAL (SELECT {aggregates} FROM {approvals} a "
                       f"WHERE a.{q('request_id')} = r.{q('id')}) g ON TRUE")
            lateral_params = list(office_ids)
    elif office_ids:
        # one text per request, each office's decision in its place ("" for none): "d1,d2,,d4"
        cells = " || ',' || ".join(f"coalesce(MAX(CASE WHEN a.{q('department_id')} = %s THEN a.{q('decided_at')} END), '')"
                                   for _ in office_ids)
        columns.append(f"(SELECT {cells} FROM {approvals} a WHERE a.{q('request_id')} = r.{q('id')})")
        select_params.extend(office_ids)
    where, where_params = [f"r.{q('status')} = %s"], [status]
    for sql, value in ((f"r.{q('cycle_id')} = %s", cycle), (f"s.{q('expected_graduation_year')} = %s", cohort),
                       (f"sc.{q('code')} = %s", school), (f"p.{q('code')} = %s", programme)):
        if value is not None:
            where.append(sql)
            where_params.append(value)
    sql = (f"SELECT {', '.join(columns)} FROM {_table(ClearanceRequest)} r "
           f"JOIN {_table(Student)} s ON s.{q('id')} = r.{q('student_id')} "
           f"JOIN {_table(School)} sc ON sc.{q('id')} = s.{q('school_id')} "
           f"JOIN {_table(Programme)} p ON p.{q('id')} = s.{q('programme_id')} "
           f"JOIN {_table(ClearanceCycle)} c ON c.{q('id')} = r.{q('cycle_id')}{lateral} "
           f"WHERE {' AND '.join(where)} ORDER BY s.{q('registration_number')}, r.{q('id')}")
    params = [*select_params, *lateral_params, *where_params]
    if postgres:
        moments = () if zone is not None else tuple(range(7, 8 + len(office_ids)))
        return _named(stream_rows(sql, params, moments=moments, chunk=chunk))
    return _sqlite_rows(stream_rows(sql, params, chunk=chunk, read_ahead=read_ahead), bool(office_ids), zone)


def _named(rows) -> Iterator[tuple]:
    for reg, first, last, *rest in rows:
        yield (reg, f"{first} {last}".strip(), *rest)


def _sqlite_rows(rows, offices: bool, zone) -> Iterator[tuple]:
    # the moments are SQLite's UTC text: to local text (the zone looked up once per minute), or
    # to aware datetimes; "" (no decision) is None. Inline, not a call per value: 800,000 of them
    utc, parse = datetime.timezone.utc, datetime.datetime.fromisoformat
    local = LocalText(zone) if zone is not None else None
    minutes = local.minutes if local is not None else {}
    for row in rows:
        reg, first, last, school, programme, cohort, cycle, *texts = row
        if offices:
            texts = [texts[0], *texts[1].split(",")]
        moments = []
        for text in texts:
            if not text:
                moments.append(None)
            elif local is None:
                moments.append(parse(text).replace(tzinfo=utc))
            else:
                head = minutes.get(text[:16])
                moments.append(head + text[16:19] if head else local(text))
        yield (reg, f"{first} {last}".strip(), school, programme, cohort, cycle, *moments)
