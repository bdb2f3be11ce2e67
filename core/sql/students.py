"""Reads over the students table that an index answers faster than the ORM's query would."""
from __future__ import annotations

from django.db import connection

from ..bulk_load import quote
from ..models import Student


def cohort_years() -> list[int]:
    """The distinct expected graduation years, newest first, by a skip scan of their index: one
    probe per year (a recursive query, on PostgreSQL and SQLite alike), where `SELECT DISTINCT`
    reads every student — 100 ms at 150,000 students, on every page that offers the cohort filter."""
    table = quote(Student._meta.db_table)
    column = quote(Student._meta.get_field("expected_graduation_year").column)
    sql = (f"WITH RECURSIVE years(y) AS (SELECT MAX({column}) FROM {table} "
           f"UNION ALL SELECT (SELECT MAX({column}) FROM {table} WHERE {column} < years.y) FROM years "
           f"WHERE years.y IS NOT NULL) SELECT y FROM years WHERE y IS NOT NULL")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [y for (y,) in cursor.fetchall()]
