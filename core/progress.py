"""How far long work has got, for pages that follow it from another process.

Applying a balance import runs in one transaction, so a progress column on its row could not move
until the transaction commits. The work reports here instead, to the cache every process sees
(Redis when REDIS_URL is set, the file cache of one host otherwise; see settings.CACHES).

The figure is a nicety, never a dependency: when the cache is down, reporting does nothing, reading
gives None ("no figure") and the work and the pages carry on."""
from __future__ import annotations

import logging

from django.core.cache import cache

log = logging.getLogger(__name__)

TTL_SECONDS = 6 * 3600
BALANCE_IMPORT_APPLY = "balance-import-apply"      # kinds of work that report here


def _key(kind: str, pk) -> str:
    return f"clearance:progress:{kind}:{pk}"


def report(kind: str, pk, percent: float) -> bool:
    """Record the figure; False when the cache could not take it."""
    try:
        cache.set(_key(kind, pk), max(0, min(int(percent), 100)), TTL_SECONDS)
    except Exception as exc:            # any backend's "cannot reach the cache"
        log.warning("progress of %s #%s not reported: the cache is unavailable (%s)", kind, pk, exc)
        return False
    return True


def read(kind: str, pk) -> int | None:
    """The last figure reported; None when there is none or the cache is unavailable."""
    try:
        return cache.get(_key(kind, pk))
    except Exception as exc:
        log.warning("progress of %s #%s not read: the cache is unavailable (%s)", kind, pk, exc)
        return None


def clear(kind: str, pk) -> None:
    try:
        cache.delete(_key(kind, pk))
    except Exception as exc:            # the figure expires by itself (TTL_SECONDS)
        log.warning("progress of %s #%s not cleared: the cache is unavailable (%s)", kind, pk, exc)


def reporter(kind: str, pk):
    """progress(percent) for one run of work: reports to the cache until the cache fails once, then
    goes without for the rest of the run (waiting on a cache that is down at every step would slow
    the work for a figure nobody can read)."""
    down = False

    def progress(percent):
        nonlocal down
        if not down and not report(kind, pk, percent):
            down = True
    return progress
