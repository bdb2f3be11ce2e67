"""Finding students by registration number or name without reading every student.

A clerk types a name or a number (or part of one) into a queue of a million items. Django's
admin search is `UPPER(column) LIKE '%word%'` over every searched column, a scan of the whole table
joined to the queue: 6.5 s at 1,000,000 approvals. Here each student has one search text,
"REGISTRATION_NUMBER FIRST_NAME LAST_NAME", and each word typed must occur in it (as in Django's
search: every word, any field), answered by an index on both databases:

- PostgreSQL: a pg_trgm GIN index on `UPPER(<search text>)` (migration 0020), which serves the
  very `LIKE` written here;
- SQLite: an FTS5 table with the trigram tokenizer, `core_student_search` (rowid = student id),
  kept by triggers on core_student (`install_sqlite_search`, run by migration 0020 and after
  every migrate: SQLite's schema editor rebuilds a table to alter it, which drops its triggers).

A word shorter than three characters has no trigram: it is matched by `LIKE` over the rows the
longer words left (or over every student, when all words are that short).
"""
from __future__ import annotations

from django.db import connection
from django.db.models import F, Func, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.utils.text import smart_split, unescape_string_literal

SEARCH_TABLE = "core_student_search"
_TEXT = "UPPER({t}registration_number || ' ' || {t}first_name || ' ' || {t}last_name)"
TRIGRAM_INDEX = "core_student_search_trgm"


def search_words(text: str) -> list[str]:
    """The words of a search box, as Django's admin splits them ("quoted phrases" kept whole)."""
    words = []
    for bit in smart_split(text or ""):
        if bit[:1] in ('"', "'") and bit[-1:] == bit[:1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        bit = " ".join(bit.split())
        if bit:
            words.append(bit)
    return words


class SearchText(Func):
    """A student's search text, "REGISTRATION_NUMBER FIRST_NAME LAST_NAME", upper-cased on
    PostgreSQL: there exactly the expression the trigram index is built on (migration 0020), so
    that `LIKE` on it is answered from the index. The separator is written in the SQL, not sent as
    a parameter, for the same reason."""

    arg_joiner = " || ' ' || "
    output_field = TextField()

    def __init__(self, *, upper: bool):
        self.template = "UPPER(%(expressions)s)" if upper else "(%(expressions)s)"
        super().__init__(F("registration_number"), F("first_name"), F("last_name"))


def students_matching(students: QuerySet, text: str) -> QuerySet:
    """`students` narrowed to those whose registration number or name holds every word of `text`
    (case-insensitive, anywhere). No words: `students` unchanged. Safe inside a subquery (no table
    name is written here)."""
    words = search_words(text)
    if not words:
        return students
    if connection.vendor == "postgresql":
        students = students.alias(search_text=SearchText(upper=True))
        for word in words:
            students = students.filter(search_text__contains=word.upper())
        return students
    long_words = [w for w in words if len(w) >= 3]
    if long_words:
        match = " AND ".join('"' + w.replace('"', '""') + '"' for w in long_words)
        students = students.filter(pk__in=RawSQL(f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH %s",
                                                 [match]))
    short_words = [w for w in words if len(w) < 3]
    if short_words:
        # SQLite's LIKE ignores the case of ASCII letters itself (its UPPER knows no other letters)
        students = students.alias(search_text=SearchText(upper=False))
        for word in short_words:
            students = students.filter(search_text__icontains=word)
    return students


# --- schema (migration 0020 and post_migrate) ----------------------------------------------------

def install_postgresql_search(schema_editor) -> None:
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON core_student "
                          f"USING gin (({_TEXT.format(t='')}) gin_trgm_ops)")


def drop_postgresql_search(schema_editor) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


_ROW = "new.registration_number || ' ' || new.first_name || ' ' || new.last_name"
SQLITE_TRIGGERS = {
    f"{SEARCH_TABLE}_ai": f"AFTER INSERT ON core_student BEGIN "
                          f"INSERT INTO {SEARCH_TABLE}(rowid, text) VALUES (new.id, {_ROW}); END",
    f"{SEARCH_TABLE}_au": f"AFTER UPDATE OF id, registration_number, first_name, last_name ON core_student BEGIN "
                          f"DELETE FROM {SEARCH_TABLE} WHERE rowid = old.id; "
                          f"INSERT INTO {SEARCH_TABLE}(rowid, text) VALUES (new.id, {_ROW}); END",
    f"{SEARCH_TABLE}_ad": f"AFTER DELETE ON core_student BEGIN DELETE FROM {SEARCH_TABLE} WHERE rowid = old.id; END",
}


def install_sqlite_search(conn) -> bool:
    """Create the FTS5 table and its triggers where missing, filling the table from core_student
    when anything was missing (idempotent; a no-op when all is in place). True when it (re)built."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name = 'core_student' AND type = 'table'")
        if cursor.fetchone() is None:
            return False
        cursor.execute("SELECT name FROM sqlite_master WHERE name = %s OR (type = 'trigger' AND name LIKE %s)",
                       [SEARCH_TABLE, f"{SEARCH_TABLE}_%"])
        present = {name for (name,) in cursor.fetchall()}
        if present >= {SEARCH_TABLE, *SQLITE_TRIGGERS}:
            return False
        cursor.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5(text, tokenize='trigram')")
        for name, body in SQLITE_TRIGGERS.items():
            cursor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
        cursor.execute(f"DELETE FROM {SEARCH_TABLE}")
        cursor.execute(f"INSERT INTO {SEARCH_TABLE}(rowid, text) SELECT id, registration_number || ' ' || "
                       f"first_name || ' ' || last_name FROM core_student")
        return True


def drop_sqlite_search(conn) -> None:
    with conn.cursor() as cursor:
        for name in SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")
