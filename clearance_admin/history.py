"""What a history page shows of each change: every field that changed, old → new, whole.

simple-history's admin diffs only *editable* fields (so `status`, `decided_by`, `decided_at`,
`waiting_since` — every field the services write and forms never do — were left out) and shortens
long values in the middle of a word ("Two books not re[41 chars]rned"). Here every tracked field
but the `updated_at` stamp is compared, status first, and values read as on the pages: a choice
by its label, money as `KES 2,500.00`, a moment in the site's time zone and 24-hour format, a
missing value as "—", text whole (the template wraps it).
"""
from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from simple_history.models import ModelChange, ModelDelta
from simple_history.template_utils import HistoricalRecordContextHelper

from core.money import kes

EMPTY = "—"
# moved by every save: a change of its own only in name
NOT_SHOWN = frozenset({"updated_at"})
# read first: what the record's state became
FIRST = ("status",)


def is_money(field) -> bool:
    """Every amount of the domain is a DecimalField(max_digits=12, decimal_places=2) (core.models.KES)."""
    return isinstance(field, models.DecimalField) and field.decimal_places == 2


def display_value(field, value) -> str:
    """One value of a field as a page shows it."""
    if value is None or value == "":
        return EMPTY
    choices = dict(field.flatchoices) if getattr(field, "choices", None) else None
    if choices and value in choices:
        return str(choices[value])
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_format(value, "DATETIME_FORMAT")
    if isinstance(value, datetime.date):
        return date_format(value, "DATE_FORMAT")
    if isinstance(value, Decimal) and is_money(field):
        return kes(value, blank=EMPTY)
    if isinstance(field, models.FileField):
        # the stored name is a random token (core/files.py); the page says a file is there
        return "a file" if value else EMPTY
    return str(value)


def _field_order(name: str):
    return (name not in FIRST, FIRST.index(name) if name in FIRST else 0)


def delta_of(newer, older):
    """The changes from `older` to `newer` (two historical records of one object): simple-history's
    diff of the editable fields and many-to-many ones, plus every other tracked field, which its diff
    leaves out (it reads values through model_to_dict, which skips non-editable fields)."""
    delta = newer.diff_against(older, foreign_keys_are_objs=True)
    changes = [c for c in delta.changes if c.field not in NOT_SHOWN]
    seen = {c.field for c in delta.changes}
    for field in newer.tracked_fields:
        if field.name in seen or field.name in NOT_SHOWN or field.editable:
            continue
        old, new = getattr(older, field.attname), getattr(newer, field.attname)
        if old == new:
            continue
        if isinstance(field, models.ForeignKey):
            old, new = (getattr(r, field.name, None) if v is not None else None
                        for r, v in ((older, old), (newer, new)))
        changes.append(ModelChange(field.name, old, new))
    changes.sort(key=lambda c: (_field_order(c.field), c.field))
    return ModelDelta(changes, [c.field for c in changes], delta.old_record, delta.new_record)


class ChangesHelper(HistoricalRecordContextHelper):
    """simple-history's formatting of one record's changes, with the values whole and read as above."""

    def context_for_delta_changes(self, delta):
        rows = []
        for change in delta.changes:
            field = self.model._meta.get_field(change.field)
            old, new = (self._display(change, field, value) for value in (change.old, change.new))
            if isinstance(field, models.FileField) and change.old and change.new:
                new = "another file"         # both read "a file": say that it was replaced
            rows.append({"field": capfirst(field.verbose_name), "name": change.field, "old": old, "new": new})
        return rows

    def _display(self, change, field, value) -> str:
        if isinstance(field, models.ManyToManyField):
            related = self.prepare_delta_change_value(change, value)   # the related objects
            return ", ".join(str(r) for r in related) or EMPTY
        return display_value(field, value)
