"""Views outside the admin sites: liveness/readiness and public certificate verification.

/health/ answers 200 "ok" or 503 "unavailable". Superusers, and monitoring that sends the
`HEALTH_TOKEN` of the environment (`Authorization: Bearer …`), also get one entry per check: the
database, the cache, the task queue, and the jobs sweep (it ends jobs whose worker died and lists
them under `swept`). Anyone else learns nothing of how the system is built."""
from __future__ import annotations

import hmac
import uuid

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .throttle import rate_limit


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any failure to talk to the database is "not healthy"
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)[:200]}


def _task_queue() -> dict:
    try:
        from django_q.brokers import get_broker
        from django_q.status import Stat
        broker = get_broker()
        reachable = bool(broker.ping())
        queued = broker.queue_size()
        clusters = Stat.get_all(broker=broker) or []
        workers = sum(len(getattr(c, "workers", []) or []) for c in clusters)
        ok = reachable and (bool(clusters) or not settings.HEALTH_REQUIRE_WORKERS)
        return {"ok": ok, "broker": broker.info(), "reachable": reachable, "queued": queued,
                "clusters": len(clusters), "workers": workers}
    except Exception as exc:
        return {"ok": False, "error": str(exc)[:200]}


def _cache() -> dict:
    # import progress and the cluster's statistics live there; nothing else stops without it
    cache = caches["default"]
    backend = type(cache).__name__
    key = f"clearance:health:{uuid.uuid4().hex}"
    try:
        cache.set(key, "ok", 10)
        ok = cache.get(key) == "ok"
        cache.delete(key)
    except Exception as exc:
        return {"ok": False, "backend": backend, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "backend": backend} if ok else \
        {"ok": False, "backend": backend, "error": "what was written could not be read back"}


def _jobs(database_ok: bool) -> dict:
    """Sweeps jobs whose worker died (core/services/jobs.py) and says which it ended."""
    if not database_ok:
        return {"ok": False, "error": "the database is unavailable"}
    from .services.jobs import jobs_sweep
    try:
        swept = jobs_sweep()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "swept": [s.as_dict() for s in swept]}


@never_cache
@require_GET
def health(request):
    database = _database()
    checks = {"database": database, "cache": _cache(), "task_queue": _task_queue(), "jobs": _jobs(database["ok"])}
    healthy = all(c["ok"] for c in checks.values())
    body = {"status": "ok" if healthy else "unavailable"}
    if _may_see_details(request):
        body.update(checks)
    return JsonResponse(body, status=200 if healthy else 503)


def _may_see_details(request) -> bool:
    token = settings.HEALTH_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_superuser)


@require_GET
def verify_certificate(request, code: str):
    """Anyone holding a certificate can check it here, on a phone too: whose it is (name,
    registration number, programme) and whether it is valid or revoked (with the date). Nothing
    more: no office's decision, no reason for a revocation. An unknown code is a 404 that says so.
    Lookups are limited per client IP (VERIFY_RATE_LIMIT a minute), so codes cannot be guessed by
    the thousand: over it, a 429 with Retry-After."""
    from .selectors.clearance import certificate_for_verification
    limited = rate_limit(request, scope="verify", limit=settings.VERIFY_RATE_LIMIT)
    if limited is not None:
        response = HttpResponse(f"Too many certificate lookups from your address. Try again in "
                                f"{limited.retry_after} seconds.\n", status=429,
                                content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(limited.retry_after)
        return response
    certificate = certificate_for_verification(code)
    status = 200 if certificate is not None else 404
    return render(request, "core/verify.html", {"certificate": certificate, "code": code,
                                                 "university_name": settings.UNIVERSITY_NAME}, status=status)
