from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.expressions import RawSQL

from ..models import REASON_MAX_LENGTH


@dataclass
class Refusal:
    pk: int
    label: str
    reason: str

    def __str__(self):
        return f"{self.label}: {self.reason}"


@dataclass
class BulkResult:
    """What a bulk service did and what it refused, row by row."""

    done: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    # ids outside the user's scope, or of nothing at all: counted, never named (a refusal naming a
    # row would tell the clerk what exists beyond their offices), and one answer for both
    unseen: list[int] = field(default_factory=list)
    unseen_where: str = "not in your queue"

    @property
    def done_count(self) -> int:
        return len(self.done)

    def refuse(self, pk, label, reason):
        self.refused.append(Refusal(pk, str(label), reason))

    def refuse_unseen(self, pk):
        self.unseen.append(pk)

    def unseen_text(self, noun: str = "item") -> str:
        """"2 clearance items are not in your queue": the count, nothing of what they are."""
        n = len(self.unseen)
        return f"{n} {noun if n == 1 else noun + 's'} {'is' if n == 1 else 'are'} {self.unseen_where}"

    def raise_if_refused(self, noun: str = "item"):
        """For single-object services: turn the one refusal into a ValidationError."""
        if self.refused:
            raise ValidationError(self.refused[0].reason)
        if self.unseen:
            raise ValidationError(f"This {noun} is {self.unseen_where}.", code="not_in_scope")


def chunked(items, size=2000):
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def id_chunks(ids):
    """Integer ids for `<field>__in=` lookups, chunk by chunk, each chunk being the lookup's value.
    On PostgreSQL all of them at once as one array parameter (`IN (SELECT unnest(…))`): neither
    thousands of ORM parameters nor a statement the driver splits and quotes in Python (at 10,000
    ids both cost more than the query). Elsewhere lists of 2,000, within SQLite's parameter limit."""
    ids = list(ids)
    if connection.vendor == "postgresql":
        if ids:
            yield RawSQL("SELECT unnest(%s::bigint[])", (ids,))
        return
    yield from chunked(ids)


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a bulk step. Building 100,000 rows of plain
    lists and tuples triggers a collection every few hundred allocations, each walking everything
    alive (the file, the plan): 5–10% of an import. Those rows hold no cycles; reference counting
    frees them as before, and the collector runs again when the step ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def bulk_service(func):
    """Decorator for a service that works on many rows at once: atomic, with the cyclic garbage
    collector paused while it runs (gc_paused). With thousands of model instances alive, each
    full collection walks all of them, and a batch ten times larger cost more than ten times as
    much."""
    return transaction.atomic(gc_paused()(func))


def text_within(text: str | None, *, limit: int, what: str = "text") -> str:
    """The text, stripped; refused when longer than `limit` characters (the forms say the limit)."""
    text = (text or "").strip()
    if len(text) > limit:
        raise ValidationError(f"The {what} is {len(text):,} characters long; at most {limit:,} are allowed. "
                              "Shorten it.", code="too_long")
    return text


def require_reason(reason: str, what: str, *, limit: int | None = None) -> str:
    """The reason, stripped. Refused: none given; longer than `limit` (default REASON_MAX_LENGTH)."""
    reason = text_within(reason, limit=limit or REASON_MAX_LENGTH, what="reason")
    if not reason:
        raise ValidationError(f"A reason is required to {what}.", code="reason_required")
    return reason


def lock_requests(request_ids) -> list[int]:
    """Lock these clearance requests until the transaction ends, in ascending id order, and return
    the ids that exist. The one locking order of the domain: a service that derives anything from
    a request's approvals (its status, a decision's stage rule, finance following the holds) locks
    the request rows first, then the approval rows (`lock_rows`, also ascending ids), and reads
    what it derives from only after both are held. Two services touching the same requests then
    run one after the other instead of deciding on what the other is about to change; the fixed
    order means they never deadlock. On SQLite, where SELECT … FOR UPDATE does not exist, write
    transactions begin IMMEDIATE (settings), which serialises them as a whole."""
    from ..models import ClearanceRequest  # the models import nothing from services; keep it that way

    ids = sorted(set(request_ids))
    locked = []
    for chunk in id_chunks(ids):
        locked.extend(ClearanceRequest.objects.select_for_update().filter(pk__in=chunk).order_by("pk")
                      .values_list("pk", flat=True))
    return locked


def lock_rows(queryset, ids, result: BulkResult, *, what: str, missing_unseen: bool = False) -> list:
    """The rows with these ids, locked until the transaction ends, in id order, fetched by
    `id_chunks` (a "select all" of 100,000 ids stays within every database's parameter limit);
    each id that matches nothing is refused as "no such <what>" — or, for a scoped user
    (`missing_unseen`), counted with the rows outside their scope, which get the same answer."""
    queryset = queryset.select_for_update(of=("self",)).order_by("pk")
    rows = [row for chunk in id_chunks(ids) for row in queryset.filter(pk__in=chunk)]
    found = {row.pk for row in rows}
    for pk in ids:
        if pk not in found:
            if missing_unseen:
                result.refuse_unseen(pk)
            else:
                result.refuse(pk, f"#{pk}", f"no such {what}")
    return rows
