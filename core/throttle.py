"""A fixed-window request limit per client IP, counted in the cache.

The cache is shared by every web process when REDIS_URL is set (per process otherwise, which still
bounds a single scraper). A cache that is down lets the request through: a lookup is never refused,
nor answered with a 500, because the counter cannot be read."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import caches

from .history import client_ip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limited:
    retry_after: int  # seconds until the window ends


def rate_limit(request, *, scope: str, limit: int, period: int = 60) -> Limited | None:
    """Count this request against `limit` per `period` seconds for its client IP in `scope`;
    Limited when it is over, None when it may go on (also when `limit` is 0, or the cache fails)."""
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // period)
    key = f"clearance:rate:{scope}:{client_ip(request) or 'unknown'}:{window}"
    cache = caches["default"]
    try:
        cache.add(key, 0, timeout=period + 1)
        count = cache.incr(key)
    except ValueError:       # expired between add and incr: this request starts the window
        count = 1
    except Exception as exc:  # the cache is down: allow, and say so in the log
        log.warning("rate limit %s not counted: %s: %s", scope, type(exc).__name__, exc)
        return None
    if count > limit:
        return Limited(retry_after=max(1, int((window + 1) * period - now + 0.999)))
    return None
