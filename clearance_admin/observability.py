"""What the IT office's monitoring reads: a log line per request (core/logs.py) and `/metrics` for
Prometheus.

Request counts and latencies are counted in the process that served them (prometheus_client; with
several gunicorn workers set PROMETHEUS_MULTIPROC_DIR to a folder they share and every worker's
figures are summed). The record's figures — task queue depth, balance imports by status, decisions
per office, exports waiting — are read from the database when /metrics is scraped, so they are the
same whichever process answers.

/metrics answers only a caller with `Authorization: Bearer $METRICS_TOKEN` or from an address in
METRICS_ALLOWED_IPS (addresses or networks, comma-separated; the client address as core.history
reads it behind TRUSTED_PROXY_COUNT proxies); by default only this host (127.0.0.1, ::1). Anyone else
gets a 404, as if there were nothing there."""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from core.history import client_ip
from core.logs import mask_secrets, new_request_id, reset_request_id, set_request_id

log = logging.getLogger("clearance.request")

REQUESTS = Counter("clearance_http_requests", "Requests answered, by site, method and status class.",
                   ["site", "method", "status"])
LATENCY = Histogram("clearance_http_request_duration_seconds", "Time to answer a request, by site.", ["site"],
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
KNOWN_PREFIXES = {"health", "verify", "static", "metrics"}


def site_of(request) -> str:
    """The site a request was for: the admin site's name (staff, finance, registry, student,
    admin), or the path's first part for the few pages outside them; "other" for anything else
    (so a scan of random URLs cannot make a label per URL)."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.namespace:
        return match.namespace.split(":")[0]
    first = request.path.strip("/").split("/", 1)[0]
    return first if first in KNOWN_PREFIXES else "other"


class RequestLogMiddleware:
    """First in MIDDLEWARE: gives the request its id (and answers it in X-Request-ID), then writes
    the request's one log line and counts it in the metrics, however the request ended."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            site = site_of(request)
            user = getattr(request, "user", None)
            user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
            REQUESTS.labels(site, request.method if request.method in _METHODS else "OTHER",
                            f"{status // 100}xx").inc()
            LATENCY.labels(site).observe(elapsed)
            path = mask_secrets(request.path)   # the M-PESA callbacks' URL secret
            log.info("%s %s %s %.0fms", request.method, path, status, elapsed * 1000,
                     extra={"method": request.method, "path": path, "site": site, "user_id": user_id,
                            "status": status, "duration_ms": round(elapsed * 1000, 1)})
            reset_request_id(token)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RecordCollector:
    """The record's figures, read at each scrape (a handful of grouped counts, no row read)."""

    def collect(self):
        from django_q.brokers import get_broker

        from core.models import BalanceImport, ClearanceApproval, ExportFile

        queue = GaugeMetricFamily("clearance_task_queue_depth", "Tasks waiting for a worker.")
        try:
            queue.add_metric([], get_broker().queue_size() or 0)
        except Exception:                      # the broker is down: no figure rather than a failed scrape
            pass
        yield queue
        imports = GaugeMetricFamily("clearance_balance_imports", "Balance imports by status.", labels=["status"])
        by_status = dict(BalanceImport.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in BalanceImport.Status.values:
            imports.add_metric([status], by_status.get(status, 0))
        yield imports
        decisions = GaugeMetricFamily("clearance_decisions", "Clearance items by office and status (pending: "
                                      "waiting for a decision).", labels=["office", "status"])
        for office, status, n in (ClearanceApproval.objects.values_list("department__code", "status")
                                  .annotate(n=Count("pk")).values_list("department__code", "status", "n")
                                  .order_by("department__code", "status")):
            decisions.add_metric([office, status], n)
        yield decisions
        exports = GaugeMetricFamily("clearance_exports", "Background exports by status.", labels=["status"])
        by_status = dict(ExportFile.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in ExportFile.Status.values:
            exports.add_metric([status], by_status.get(status, 0))
        yield exports


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer "):].encode(),
                                                                      token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    return any(address in network for network in _networks())


def _networks():
    networks = []
    for item in settings.METRICS_ALLOWED_IPS:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            logging.getLogger(__name__).warning("METRICS_ALLOWED_IPS: %r is not an address or network", item)
    return networks


def metrics_view(request):
    if not _allowed(request):
        raise Http404("Not here.")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(RecordCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
