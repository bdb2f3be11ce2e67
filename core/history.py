"""Who, from where and why for every historical record.

simple-history records the user of the current request; services also run from commands, imports
and scheduled tasks, so they name the acting user and the reason explicitly. The request's IP
address is kept in a context variable set by `AuditContextMiddleware` and written to the
`ip_address` column that every historical model inherits from `HistoricalAudit`.
"""
from __future__ import annotations

import contextlib
import ipaddress
from collections import defaultdict
from contextvars import ContextVar

from django.conf import settings
from django.db import connection, models
from django.db.models import Case, Value, When
from django.utils import timezone
from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record
from simple_history.utils import bulk_create_with_history

_ip: ContextVar[str | None] = ContextVar("clearance_audit_ip", default=None)
_reason: ContextVar[str | None] = ContextVar("clearance_audit_reason", default=None)

BULK_BATCH_SIZE = 500
BULK_UPDATE_BATCH_SIZE = 2000
MAX_CASE_BRANCHES = 32  # beyond this, a VALUES join is cheaper than CASE


class HistoricalAudit(models.Model):
    """Extra columns on every historical table."""

    ip_address = models.GenericIPAddressField("IP address", null=True, blank=True)

    class Meta:
        abstract = True


def client_ip(request) -> str | None:
    """The address of the person making the request. Behind `TRUSTED_PROXY_COUNT` proxies, each of
    which appends the address it received from to X-Forwarded-For, that is the N-th entry from the
    right: everything left of it the client wrote itself. A header shorter than that, or an entry
    that is not an IP address, means the request did not come through our proxies: the connection's
    own address is recorded instead."""
    remote = request.META.get("REMOTE_ADDR") or None
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _ip.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _ip.reset(token)


@contextlib.contextmanager
def audit_context(*, ip: str | None = None, reason: str | None = None):
    """Set the IP and/or default change reason for history written inside the block."""
    tokens = []
    if ip is not None:
        tokens.append((_ip, _ip.set(ip)))
    if reason is not None:
        tokens.append((_reason, _reason.set(reason)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_ip() -> str | None:
    return _ip.get()


@receiver(pre_create_historical_record)
def _fill_audit_columns(sender, history_instance, **kwargs):
    if history_instance.ip_address is None:
        history_instance.ip_address = _ip.get()
    if not history_instance.history_change_reason and _reason.get():
        history_instance.history_change_reason = _reason.get()


SYSTEM_PREFIX = "system: "


def as_system(reason: str, system: bool = True) -> str:
    """The change reason of a write the system makes by rule (history user None): says so, so a
    missing user in history reads "system: finance follows the holds", never a person forgotten."""
    if not system or reason.startswith(SYSTEM_PREFIX):
        return reason
    return SYSTEM_PREFIX + reason


def tracked(instance, *, user, reason: str = ""):
    """Mark an instance so its next save() records `user` and `reason` in its history."""
    instance._history_user = user
    instance._change_reason = reason or _reason.get() or ""
    return instance


def save_tracked(instance, *, user, reason: str = "", update_fields=None):
    tracked(instance, user=user, reason=reason)
    instance.save(update_fields=update_fields)
    return instance


def bulk_create_tracked(objs, model, *, user, reason: str = "", batch_size=BULK_BATCH_SIZE):
    """bulk_create plus one historical row per object, in batches."""
    if not objs:
        return []
    return bulk_create_with_history(
        objs, model, batch_size=batch_size, default_user=user,
        default_change_reason=reason or _reason.get() or "",
        custom_historical_attrs={"ip_address": _ip.get()},
    )


def bulk_update_tracked(objs, model, fields, *, user, reason: str = "", batch_size=BULK_UPDATE_BATCH_SIZE):
    """Write `fields` of already-changed instances, plus one historical row per object.

    Django's bulk_update builds a CASE branch per row and field, which costs more than the write.
    Here a field that has one value across the batch is a plain SET, and a field that varies is a
    CASE with one branch per distinct value (`WHEN id IN (...)`), so a batch is one UPDATE whose
    size grows with distinct values, not rows. File fields must already be stored (FieldFile.save).
    `objs` may be model instances or dicts holding the primary key and `fields` (attnames). The
    historical rows are copied by the database from the rows just written (INSERT … SELECT), so
    callers need not load columns they do not change, and history holds exactly what was stored."""
    if not objs:
        return 0
    as_dicts = isinstance(objs[0], dict)
    get = dict.get if as_dicts else getattr
    put = dict.__setitem__ if as_dicts else setattr
    pk_name = model._meta.pk.attname
    auto_now = [f.attname for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
    now = timezone.now()
    updated = 0
    from .bulk_load import History, any_of, insert_history_select, update_from_values
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    for start in range(0, len(objs), batch_size):
        batch = objs[start:start + batch_size]
        for obj in batch:
            for name in auto_now:
                put(obj, name, now)
        pks = [get(obj, pk_name) for obj in batch]
        names = [model._meta.get_field(name).attname for name in [*fields, *auto_now]]
        groups_of = {}
        for attname in names:
            groups = defaultdict(list)
            for obj, pk in zip(batch, pks):
                groups[get(obj, attname)].append(pk)
            groups_of[attname] = groups
        if max(len(g) for g in groups_of.values()) > MAX_CASE_BRANCHES:
            # many distinct values (amounts, per-row reasons): one UPDATE joined to a VALUES table, with
            # the fields that have one value across the batch set once
            varying = [a for a in names if len(groups_of[a]) > 1]
            updated += update_from_values(model, varying, [(pk, *[get(obj, a) for a in varying])
                                                           for obj, pk in zip(batch, pks)],
                                          history=History("~", user, reason or _reason.get() or "", now),
                                          constants={a: next(iter(groups_of[a])) for a in names
                                                     if len(groups_of[a]) == 1})
        else:
            updated += _update_by_groups(model, pks, groups_of)
            where, params = any_of(pk_column, pks, model._meta.pk)
            insert_history_select(model, where, params, history_type="~", user=user,
                                  reason=reason or _reason.get() or "", when=now)
    return updated


def _update_by_groups(model, pks, groups_of) -> int:
    """One UPDATE: a field with one value is a plain SET, one that varies a CASE per distinct value."""
    values = {}
    for attname, groups in groups_of.items():
        field = model._meta.get_field(attname)
        if len(groups) == 1:
            values[attname] = next(iter(groups))
        else:
            values[attname] = Case(*[When(pk__in=ids, then=Value(value, output_field=field))
                                     for value, ids in groups.items()], output_field=field)
    return model._default_manager.filter(pk__in=pks).update(**values)
