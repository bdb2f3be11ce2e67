"""Writing many rows in few statements, history included.

`load` inserts new rows for demo data and benchmarks only: Django's bulk_create prepares every
value through the field machinery, which costs more than the database write itself at a million
rows. Here primary keys are assigned in Python (the table is locked for the load by the surrounding
transaction on SQLite; on PostgreSQL the sequence is moved past them afterwards), values are adapted
once per type and rows go in with executemany, each with its "+" historical row, exactly as
bulk_create_with_history would write it. Services never call `load`.

The statement helpers below it (`bulk_cursor`, `any_of`, `update_from_values`, `insert_new`,
`insert_history_select`) are what core.history's bulk writes and the balance import are built on:
one statement per batch whatever the number of rows, history copied by the database.
"""
from __future__ import annotations

import contextlib
import datetime
import queue
import threading
from decimal import Decimal
from dataclasses import dataclass
from operator import itemgetter

from django.core.management.color import no_style
from django.db import connection, models
from django.utils import timezone

from .history import current_ip

_IDENTITY = (models.AutoField, models.BigAutoField, models.CharField, models.TextField, models.IntegerField,
             models.BooleanField, models.ForeignKey, models.EmailField, models.PositiveSmallIntegerField,
             models.PositiveIntegerField, models.GenericIPAddressField)


def memo(func):
    """func with its results kept per (hashable) argument: for values that repeat across rows."""
    cache = {}

    def adapt(value):
        try:
            return cache[value]
        except KeyError:
            cache[value] = result = func(value)
            return result
        except TypeError:  # unhashable
            return func(value)
    return adapt


def _adapter(field):
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        return memo(ops.adapt_datetimefield_value)  # demo rows share few distinct timestamps
    if isinstance(field, models.DateField):
        return ops.adapt_datefield_value
    if isinstance(field, models.FileField):
        return lambda v: (v.name if v else "") or ""
    if isinstance(field, models.DecimalField):
        return lambda v: None if v is None else ops.adapt_decimalfield_value(v, field.max_digits, field.decimal_places)
    if isinstance(field, _IDENTITY):
        return None
    return lambda v, f=field: f.get_db_prep_save(v, connection)


def _columns(model, *, skip_pk=False):
    fields = [f for f in model._meta.concrete_fields if not (skip_pk and f.primary_key)]
    return fields, [_adapter(f) for f in fields]


@contextlib.contextmanager
def bulk_cursor():
    """A cursor for statements that carry thousands of values. On PostgreSQL it binds parameters
    on the server: Django's psycopg cursors bind on the client, which for a statement of 10,000
    values means splitting and quoting it in Python, slower than the database runs it. Execute
    wrappers and query logging apply as to Django's own cursors. On SQLite, Django's cursor."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    wrapped = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with wrapped as cursor:
        yield cursor


def any_of(column_sql: str, values, field) -> tuple[str, list]:
    """`column IN (values)` as SQL and parameters. On PostgreSQL one array parameter, in binary
    (`= ANY(CAST(%b AS type[]))`), so the statement stays short whatever the number of values;
    use it with `bulk_cursor`. `field` gives the array's type."""
    values = list(values)
    if connection.vendor == "postgresql":
        return f"{column_sql} = ANY(CAST(%b AS {field.db_type(connection)}[]))", [values]
    return f"{column_sql} IN ({', '.join(['%s'] * len(values))})", values


def _insert(model, fields, rows):
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    with bulk_cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def _next_pk(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX({connection.ops.quote_name(model._meta.pk.column)}) "
                       f"FROM {connection.ops.quote_name(model._meta.db_table)}")
        return (cursor.fetchone()[0] or 0) + 1


def _defaults(model, now):
    """attname → default value (or a callable giving one) for fields a row may leave out."""
    out = {}
    for f in model._meta.concrete_fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            out[f.attname] = now
        elif f.has_default():
            out[f.attname] = f.default
        elif f.null:
            out[f.attname] = None
        elif isinstance(f, (models.CharField, models.TextField, models.FileField)) and f.blank:
            out[f.attname] = ""
    return out


def load(rows: list[dict], model, *, user, reason: str) -> list[dict]:
    """Insert new rows (dicts of attnames; left-out fields take their defaults) with one historical
    row each. Sets row["id"] and returns the rows."""
    if not rows:
        return rows
    now = timezone.now()
    defaults = _defaults(model, now)
    fields, adapters = _columns(model)
    pk_name = model._meta.pk.attname
    pk = _next_pk(model)
    values = []
    for row in rows:
        row[pk_name] = pk
        pk += 1
        full = []
        for f, adapt in zip(fields, adapters):
            name = f.attname
            if name in row:
                v = row[name]
            else:
                v = defaults[name]
                if callable(v):
                    v = v()
                row[name] = v
            full.append(v if adapt is None else adapt(v))
        values.append(full)
    _insert(model, fields, [tuple(v) for v in values])

    insert_history(model, [dict(zip((f.attname for f in fields), v)) for v in values], history_type="+",
                   user=user, reason=reason, adapted=True, when=now)
    reset_sequences(model)
    return rows


def copy_in(rows, model, *, user, reason: str, batch: int = 50_000, check_keys: bool = True) -> tuple[int, int]:
    """Insert many new rows (an iterable of dicts of attnames; left-out fields take their defaults)
    with one "+" historical row each, for demo data and benchmarks only (keys assigned here, as
    `load` does: nothing else may write the table meanwhile). PostgreSQL: binary COPY through psycopg, then
    the history copied by the database (`insert_history_select`), no row read back; 1,000,000 rows
    in seconds where `load`'s executemany takes minutes. SQLite: executemany per batch, history
    likewise. `check_keys=False` (PostgreSQL, a superuser, inside a transaction; a benchmark that
    made every foreign key itself): the foreign-key triggers are off until the transaction ends —
    checking 1,000,000 deferred keys at commit costs more than the COPY. Returns (first primary
    key, number of rows); the rows' keys are consecutive."""
    now = timezone.now()
    defaults = _defaults(model, now)
    fields, adapters = _columns(model)
    postgres = connection.vendor == "postgresql"
    if postgres:
        adapters = [(lambda v: (v.name if v else "") or "") if isinstance(f, models.FileField) else None
                    for f in fields]
    names = [f.attname for f in fields]
    pk_name = model._meta.pk.attname
    first = pk = _next_pk(model)

    def values():
        nonlocal pk
        for row in rows:
            out = []
            for name, adapt in zip(names, adapters):
                if name == pk_name:
                    v = pk
                else:
                    v = row[name] if name in row else defaults[name]
                    if callable(v):
                        v = v()
                out.append(v if adapt is None else adapt(v))
            pk += 1
            yield tuple(out)

    table = quote(model._meta.db_table)
    cols = ", ".join(quote(f.column) for f in fields)
    if postgres:
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            rebuild = []
            if not check_keys:
                cursor.execute("SET LOCAL session_replication_role = replica")
                cursor.execute("SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                               "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
                               "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                               [model._meta.db_table])
                rebuild = cursor.fetchall()
                for name, _ in rebuild:
                    cursor.execute(f"DROP INDEX {quote(name)}")
            # binary: the server parses nothing (text COPY of timestamps took five times longer)
            cursor.execute("SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                           [model._meta.db_table])
            oids = dict(cursor.fetchall())
            with cursor.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([oids[f.column] for f in fields])
                for row in values():
                    copy.write_row(row)
            for _, definition in rebuild:
                cursor.execute(definition)
    else:
        chunk = []
        for row in values():
            chunk.append(row)
            if len(chunk) >= batch:
                _insert(model, fields, chunk)
                chunk = []
        _insert(model, fields, chunk)
    count = pk - first
    if count:
        pk_col = quote(model._meta.pk.column)
        insert_history_select(model, f"{pk_col} >= %s AND {pk_col} < %s", [first, pk], history_type="+",
                              user=user, reason=reason, when=now)
        reset_sequences(model)
    if postgres and not check_keys:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    return first, count


def insert_history(model, items, *, history_type: str, user, reason: str, adapted: bool = False, when=None) -> None:
    """One historical row per item (a model instance or a dict of attnames), written with
    executemany: what simple-history's bulk_history_create writes, without building a model
    instance and an INSERT compilation per row."""
    if not items:
        return
    history_model = model.history.model
    fields, adapters = _columns(model)
    tracked = {f.attname for f in fields}
    h_fields, _ = _columns(history_model, skip_pk=True)
    extra = {"history_date": connection.ops.adapt_datetimefield_value(when or timezone.now()),
             "history_change_reason": reason, "history_type": history_type,
             "history_user_id": user.pk if user else None, "ip_address": current_ip()}
    adapter_of = {f.attname: (None if adapted else a) for f, a in zip(fields, adapters)}
    picks = [(f.attname in tracked, f.attname) for f in h_fields]
    get = dict.get if items and isinstance(items[0], dict) else getattr
    rows = []
    for item in items:
        row = []
        for is_tracked, name in picks:
            if is_tracked:
                value = get(item, name)
                adapt = adapter_of[name]
                row.append(value if adapt is None else adapt(value))
            else:
                row.append(extra[name])
        rows.append(tuple(row))
    _insert(history_model, h_fields, rows)


def reset_sequences(*model_list) -> None:
    """After loading with explicit keys, move PostgreSQL's sequences past them (no-op on SQLite)."""
    statements = connection.ops.sequence_reset_sql(no_style(), list(model_list))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def update_from_values(model, fields: list[str], rows: list[tuple], *, batch_size: int | None = None,
                       history: History | None = None, constants: dict | None = None) -> int:
    """Set `fields` (attnames) per row with one statement per batch: rows are (pk, value, …) tuples
    of Python values. SQLite: one prepared `UPDATE t SET a = ?, … WHERE id = ?` run by
    executemany over the batch. PostgreSQL: the same join over `unnest()` of one array parameter per column,
    so the statement stays small and is planned in no time (a VALUES list of thousands of rows takes
    longer to plan than to run there). Either way one statement whatever the values, where Django's
    bulk_update builds a CASE branch per row and field. With `history`, one historical row per row
    written, holding what was stored: on PostgreSQL in the same statement (`WITH u AS (UPDATE …
    RETURNING *) INSERT INTO <history> … FROM u`, no second pass over the rows), on SQLite copied
    right after each batch. `constants` (attname → value) are set alike on every row, as one
    parameter each rather than a column of identical values. Rows go in ascending primary key:
    on SQLite, 50,000 updates in key order took half the time of the same in the callers' order
    (neighbouring rows share pages). Returns the number of rows sent."""
    if not rows:
        return 0
    rows = sorted(rows, key=itemgetter(0))
    ops = connection.ops
    opts = model._meta
    field_objs = [opts.get_field(name) for name in fields]
    adapters = [_adapter(f) for f in field_objs]
    table = ops.quote_name(opts.db_table)
    pk_col = ops.quote_name(opts.pk.column)
    columns = ", ".join(["id", *[f"c{i}" for i in range(len(fields))]])
    sets = ", ".join(f"{ops.quote_name(f.column)} = v.c{i}" for i, f in enumerate(field_objs))
    const_params = []
    for name, value in (constants or {}).items():
        field = opts.get_field(name)
        adapt = _adapter(field)
        sets += f", {ops.quote_name(field.column)} = %s"
        const_params.append(value if adapt is None else adapt(value))
    postgres = connection.vendor == "postgresql"
    if batch_size is None:
        # SQLite: as many rows as one statement's parameters allow (32,766)
        # PostgreSQL: one array per column, and one join for the lot (chunks would scan the table each)
        batch_size = 100_000 if postgres else max(1, min(5000, 30000 // (len(fields) + 1)))
    if postgres:
        # %b: arrays go in binary (quoting 10,000 values as array text in Python costs seconds)
        arrays = ", ".join([f"CAST(%b AS {opts.pk.rel_db_type(connection)}[])",
                            *[f"CAST(%b AS {f.db_type(connection)}[])" for f in field_objs]])
        sql = f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({columns}) WHERE {table}.{pk_col} = v.id"
        if history is not None:
            head, head_params = _history_insert(model, history)
            sql = f"WITH u AS ({sql} RETURNING {table}.*) {head} FROM u"
    else:
        row_sets = ", ".join([*(f"{ops.quote_name(f.column)} = %s" for f in field_objs),
                              *(f"{ops.quote_name(opts.get_field(name).column)} = %s" for name in (constants or {}))])
    sent = 0
    with bulk_cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            if postgres:
                params = [[row[0] for row in batch]]
                for i, adapt in enumerate(adapters, start=1):
                    params.append([row[i] if adapt is None else adapt(row[i]) for row in batch])
                cursor.execute(sql, [*const_params, *params, *(head_params if history is not None else [])])
            else:
                # one prepared UPDATE by primary key, run by executemany: SQLite steps it in C, about
                # 2.5 times faster than joining a VALUES table of the batch
                params = [(*[value if adapt is None else adapt(value) for value, adapt in zip(row[1:], adapters)],
                           *const_params, row[0]) for row in batch]
                cursor.executemany(f"UPDATE {table} SET {row_sets} WHERE {pk_col} = %s", params)
                if history is not None:
                    where, where_params = any_of(pk_col, [row[0] for row in batch], opts.pk)
                    insert_history_select(model, where, where_params, history_type=history.history_type,
                                          user=history.user, reason=history.reason, when=history.when)
            sent += len(batch)
    return sent


def insert_new(model, rows: list[dict]) -> int:
    """Insert new rows (dicts of attnames; left-out fields take their defaults) with executemany,
    letting the database assign primary keys (safe beside concurrent writers, unlike `load`).
    Writes no history: callers read the rows back by a natural key and pass them to insert_history."""
    if not rows:
        return 0
    defaults = _defaults(model, timezone.now())
    fields, adapters = _columns(model, skip_pk=True)
    values = []
    for row in rows:
        full = []
        for f, adapt in zip(fields, adapters):
            v = row[f.attname] if f.attname in row else defaults[f.attname]
            if callable(v):
                v = v()
            full.append(v if adapt is None else adapt(v))
        values.append(tuple(full))
    _insert(model, fields, values)
    return len(values)


@dataclass(frozen=True)
class History:
    """What a bulk write records: one historical row per row written, of this type ("+", "~"),
    by this user, for this reason, at this time."""
    history_type: str
    user: object
    reason: str
    when: datetime.datetime | None = None


def _history_insert(model, history: History) -> tuple[str, list]:
    """`INSERT INTO <history> (…) SELECT <the model's columns>, <user, reason, …>` (the FROM is the
    caller's): SQL and parameters."""
    ops = connection.ops
    history_model = model.history.model
    tracked = {f.attname: f for f in model._meta.concrete_fields}
    h_fields, _ = _columns(history_model, skip_pk=True)
    extra = {"history_date": ops.adapt_datetimefield_value(history.when or timezone.now()),
             "history_change_reason": history.reason, "history_type": history.history_type,
             "history_user_id": history.user.pk if history.user else None, "ip_address": current_ip()}
    columns, selects, params = [], [], []
    for f in h_fields:
        columns.append(ops.quote_name(f.column))
        if f.attname in tracked:
            selects.append(ops.quote_name(tracked[f.attname].column))
        else:
            # typed on PostgreSQL: an untyped parameter in a SELECT list is text there
            selects.append(f"CAST(%s AS {f.db_type(connection)})" if connection.vendor == "postgresql" else "%s")
            params.append(extra[f.attname])
    return (f"INSERT INTO {ops.quote_name(history_model._meta.db_table)} ({', '.join(columns)}) "
            f"SELECT {', '.join(selects)}"), params


def insert_history_select(model, where: str, params, *, history_type: str, user, reason: str, when=None) -> int:
    """One historical row per row of `model` matching `where` (SQL over the model's table, with
    `params`), copied by the database itself: `INSERT INTO history (…) SELECT …, %s, … FROM table
    WHERE …`. For rows a service has just written in bulk: no row travels through Python, which
    at 100,000 rows costs more than the write. Returns the number of historical rows written."""
    head, head_params = _history_insert(model, History(history_type, user, reason, when))
    sql = f"{head} FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where}"
    with bulk_cursor() as cursor:
        cursor.execute(sql, [*head_params, *params])
        return cursor.rowcount


def update_ids(model, ids: list, constants: dict, *, history: History | None = None, batch_size: int = 5000) -> int:
    """Set the same values (`constants`, attname → value) on every row whose primary key is in
    `ids`: one UPDATE per batch (one array parameter on PostgreSQL, where the whole list is one
    batch), and with `history` one historical row per row written, copied from what was stored (in
    the same statement on PostgreSQL). In ascending key order (see `update_from_values`). Returns
    the number of rows sent."""
    if not ids or not constants:
        return 0
    ids = sorted(ids)
    ops = connection.ops
    opts = model._meta
    table = ops.quote_name(opts.db_table)
    pk_col = ops.quote_name(opts.pk.column)
    sets, params = [], []
    for name, value in constants.items():
        field = opts.get_field(name)
        adapt = _adapter(field)
        sets.append(f"{ops.quote_name(field.column)} = %s")
        params.append(value if adapt is None else adapt(value))
    postgres = connection.vendor == "postgresql"
    sent = 0
    with bulk_cursor() as cursor:
        for start in range(0, len(ids), 1_000_000 if postgres else batch_size):
            batch = ids[start:start + (1_000_000 if postgres else batch_size)]
            where, where_params = any_of(f"{table}.{pk_col}", batch, opts.pk)
            sql = f"UPDATE {table} SET {', '.join(sets)} WHERE {where}"
            if postgres and history is not None:
                head, head_params = _history_insert(model, history)
                cursor.execute(f"WITH u AS ({sql} RETURNING {table}.*) {head} FROM u",
                               [*params, *where_params, *head_params])
            else:
                cursor.execute(sql, [*params, *where_params])
                if history is not None:
                    insert_history_select(model, where, where_params, history_type=history.history_type,
                                          user=history.user, reason=history.reason, when=history.when)
            sent += len(batch)
    return sent


def _run_in(sql: str, params: list, column: str, field, ids: list, chunk: int):
    """Each chunk of ids (all at once on PostgreSQL) run through `sql`; yields the cursor after each."""
    if not ids:
        return
    step = len(ids) if connection.vendor == "postgresql" else chunk
    with bulk_cursor() as cursor:
        for start in range(0, len(ids), step):
            in_sql, in_params = any_of(column, ids[start:start + step], field)
            cursor.execute(sql.format(ids=in_sql), [*params, *in_params])
            yield cursor


def fetch_in(sql: str, params: list, column: str, field, ids: list, *, chunk: int = 5000) -> list[tuple]:
    """Run `sql`, whose `{ids}` stands for `column IN (ids)` (`field` types them; it must come after
    every other placeholder, its parameters follow `params`), for every chunk
    of ids (all at once on PostgreSQL), and return the raw rows: no ORM preparation per value nor
    converters per cell, which at 100,000 rows cost more than the query."""
    return [row for cursor in _run_in(sql, params, column, field, ids, chunk) for row in cursor.fetchall()]


def execute_in(sql: str, params: list, column: str, field, ids: list, *, chunk: int = 5000) -> int:
    """`fetch_in` for a statement that writes (an UPDATE … WHERE {ids}): the rows it changed."""
    return sum(cursor.rowcount for cursor in _run_in(sql, params, column, field, ids, chunk))


def quote(name: str) -> str:
    """A table or column name quoted for this database."""
    return connection.ops.quote_name(name)


def decimal_of(value) -> Decimal | None:
    """A raw decimal column value (float/int/str on SQLite, Decimal on PostgreSQL) → Decimal with
    two places, as the money columns hold it."""
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(Decimal("0.01"))


def stream_rows(sql: str, params, *, moments: tuple[int, ...] = (), chunk: int = 2000, read_ahead: bool = False):
    """The rows of a query, streamed a chunk at a time, memory flat whatever their number — on
    PostgreSQL through psycopg's `stream` (libpq's chunked rows mode: the query planned as any
    other, the rows sent as they come; a server-side cursor is planned for the first rows, which
    on fresh statistics nested-looped a 100,000-row export for minutes, and a plain client-side
    one holds the whole result) — without Django's converters on every cell: the columns at
    positions `moments` (DateTimeFields) come back as aware UTC datetimes (PostgreSQL gives them
    so; SQLite gives naive UTC, or text for an expression), every other column as the database
    gives it (text, numbers). At 100,000 rows of eight moments Django's per-cell conversion costs
    more than the query; use it only where every other column needs no conversion. The
    connection runs nothing else until the rows are read or the iterator is closed.

    `read_ahead` (SQLite; for a caller that reads every row and touches no database meanwhile, such
    as a csv export): the next chunk is read by a thread while the caller works on this one —
    SQLite runs the query without Python's lock, so on two cores the query and the caller's work
    overlap instead of adding up. The thread is stopped and waited for when the iterator ends or
    is closed, before the cursor is."""
    utc = datetime.timezone.utc
    parse = datetime.datetime.fromisoformat
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            rows = cursor.cursor.stream(sql, params, size=chunk)
        else:
            cursor.execute(sql, params)
            raw = cursor.cursor                     # the DB-API cursor: no Django wrapper in the thread
            chunks = _read_ahead(lambda: raw.fetchmany(chunk)) if read_ahead else iter(lambda: raw.fetchmany(chunk), [])
            rows = (row for rows in chunks for row in rows)
        if not moments:
            yield from rows
            return
        for row in rows:
            row = list(row)
            for i in moments:
                value = row[i]
                if isinstance(value, str):          # SQLite, an expression: UTC text
                    row[i] = parse(value).replace(tzinfo=utc)
                elif value is not None and value.tzinfo is None:    # SQLite, a column: naive UTC
                    row[i] = value.replace(tzinfo=utc)
            yield tuple(row)


def _read_ahead(fetch):
    """The lists `fetch()` returns until an empty one, each fetched by a thread one step ahead."""
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work():
        try:
            while not stop.is_set():
                rows = fetch()
                ready.put(rows)
                if not rows:
                    return
        except BaseException as exc:            # raised again in the caller's thread
            ready.put(exc)

    thread = threading.Thread(target=work, name="stream_rows read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            rows = ready.get()
            if isinstance(rows, BaseException):
                raise rows
            if not rows:
                return
            yield rows
    finally:
        stop.set()
        while thread.is_alive():                # a chunk it is putting must not block it
            try:
                ready.get(timeout=0.01)
            except queue.Empty:
                pass
        thread.join()


# --- moments as the text a csv shows -----------------------------------------------------------
# A csv shows a moment as its local time, "YYYY-MM-DD HH:MM:SS". Converting and formatting 800,000
# datetimes one by one costs more than the rest of a 100,000-row export.

def moment_text(value: datetime.datetime, zone) -> str:
    """An aware datetime as the text of its local time in `zone`, seconds truncated: what
    isoformat(sep=" ", timespec="seconds") writes of the local time."""
    return value.astimezone(zone).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def local_text_sql(sql: str, zone: str) -> tuple[str, list]:
    """PostgreSQL: SQL (and the parameters that follow `sql`'s own) giving the moment `sql` (a
    timestamptz column, subquery or aggregate) as `moment_text` would write it in the zone named
    `zone` — to_char truncates the fraction as isoformat does."""
    return f"to_char(({sql}) AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI:SS')", [zone]


class LocalText:
    """Calls turn SQLite's stored UTC text of a moment ("YYYY-MM-DD HH:MM:SS[.ffffff]") into
    `moment_text` of it in `zone` (None stays None). The zone's offset is looked up once per
    distinct minute, not per value: a minute's local text is remembered and the seconds appended.
    A minute in which the offset changes, or an offset that is not whole minutes (local mean
    times of the 19th century), is converted value by value. At most `limit` minutes are kept."""

    def __init__(self, zone, limit: int = 200_000):
        self.zone = zone
        self.limit = limit
        self.minutes: dict[str, str | None] = {}

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        head = self.minutes.get(text[:16], "")
        if head == "":
            head = self._minute(text[:16])
        if head is None:
            return moment_text(datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc),
                               self.zone)
        return head + text[16:19]

    def _minute(self, key: str) -> str | None:
        start = datetime.datetime.fromisoformat(key).replace(tzinfo=datetime.timezone.utc)
        first = start.astimezone(self.zone)
        last = (start + datetime.timedelta(seconds=59, microseconds=999_999)).astimezone(self.zone)
        offset = first.utcoffset()
        whole = offset == last.utcoffset() and offset.total_seconds() % 60 == 0
        if len(self.minutes) >= self.limit:
            self.minutes.clear()
        self.minutes[key] = head = first.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes") if whole else None
        return head
