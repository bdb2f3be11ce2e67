"""How far long work has got, for pages that follow it from another process.

Applying a balance import runs in one transaction, so a progress column on its row could not move
until the transaction commits. The work reports here instead, to the cache every process sees
(Redis when REDIS_URL is set, the file cache of one host otherwise; see settings.CACHES)."""
from __future__ import annotations

from django.core.cache import cache

TTL_SECONDS = 6 * 3600
BALANCE_IMPORT_APPLY = "balance-import-apply"      # kinds of work that report here


def _key(kind: str, pk) -> str:
    return f"clearance:progress:{kind}:{pk}"


def report(kind: str, pk, percent: float) -> None:
    cache.set(_key(kind, pk), max(0, min(int(percent), 100)), TTL_SECONDS)


def read(kind: str, pk) -> int | None:
    return cache.get(_key(kind, pk))


def clear(kind: str, pk) -> None:
    cache.delete(_key(kind, pk))
