"""Loading many new rows fast, history included: for demo data and benchmarks only.

Django's bulk_create prepares every value through the field machinery, which costs more than the
database write itself at a million rows. Here primary keys are assigned in Python (the table is
locked for the load by the surrounding transaction on SQLite; on PostgreSQL the sequence is moved
past them afterwards), values are adapted once per type and rows go in with executemany. Each row
also gets its "+" historical row, naming the user and the reason, exactly as bulk_create_with_history
would write it. Services never use this: they go through core.history.
"""
from __future__ import annotations

from django.core.management.color import no_style
from django.db import connection, models
from django.utils import timezone

from .history import current_ip

_IDENTITY = (models.AutoField, models.BigAutoField, models.CharField, models.TextField, models.IntegerField,
             models.BooleanField, models.ForeignKey, models.EmailField, models.PositiveSmallIntegerField,
             models.PositiveIntegerField, models.GenericIPAddressField)


def _memo(func):
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
        return _memo(ops.adapt_datetimefield_value)  # demo rows share few distinct timestamps
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


def _insert(model, fields, rows):
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
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
