"""Clearance cycles: created and changed by the registry, with history naming who and what."""
from __future__ import annotations

import datetime

from django.db import transaction

from ..history import save_tracked
from ..models import ClearanceCycle

CYCLE_FIELDS = ("name", "graduation_year", "opens_on", "closes_on", "is_closed", "max_resubmissions")


@transaction.atomic
def cycle_create(*, acting_user, name: str, opens_on: datetime.date, closes_on: datetime.date,
                 graduation_year: int | None = None, is_closed: bool = False,
                 max_resubmissions: int | None = None) -> ClearanceCycle:
    """Create a cycle. Refused (ValidationError): a name already used; closes before it opens."""
    cycle = ClearanceCycle(name=(name or "").strip(), opens_on=opens_on, closes_on=closes_on,
                           graduation_year=graduation_year, is_closed=is_closed,
                           max_resubmissions=max_resubmissions)
    cycle.full_clean()
    return save_tracked(cycle, user=acting_user, reason="Cycle created")


@transaction.atomic
def cycle_update(*, cycle: ClearanceCycle, acting_user, **changes) -> ClearanceCycle:
    """Change a cycle's name, dates, closed flag or re-submission limit; the history reason names
    the fields changed (and says "closed"/"re-opened" when the flag moved). Nothing changed →
    nothing written. Refused (ValidationError): as `cycle_create`."""
    unknown = set(changes) - set(CYCLE_FIELDS)
    if unknown:
        raise TypeError(f"cycle_update() cannot change {', '.join(sorted(unknown))}")
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
    cycle = ClearanceCycle.objects.select_for_update().get(pk=cycle.pk)
    changed = [f for f in CYCLE_FIELDS if f in changes and getattr(cycle, f) != changes[f]]
    if not changed:
        return cycle
    for f in changed:
        setattr(cycle, f, changes[f])
    cycle.full_clean()
    if "is_closed" in changed:
        reason = "Cycle closed" if cycle.is_closed else "Cycle re-opened"
        others = [f for f in changed if f != "is_closed"]
        reason += f"; changed {', '.join(others)}" if others else ""
    else:
        reason = f"Cycle changed: {', '.join(changed)}"
    return save_tracked(cycle, user=acting_user, reason=reason)
