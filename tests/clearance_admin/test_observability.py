"""Logs and metrics for the IT office: a request id on every request (theirs or ours) and on every
log line, one JSON line per request, the id carried into the tasks a request queues; /metrics with
request counts and latencies per site and the record's figures, for the token or the allowed
addresses only."""
from __future__ import annotations

import json
import logging
import re

import pytest
from django.conf import settings as django_settings
from pythonjsonlogger.json import JsonFormatter

from core.logs import RequestIdFilter, current_request_id, reset_request_id, set_request_id
from core.models import ClearanceApproval


@pytest.fixture
def registry_client(client, registry_user):
    client.force_login(registry_user)
    return client


def test_a_callers_request_id_is_kept_and_answered_and_junk_is_replaced(client, db):
    kept = client.get("/health/", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert kept["X-Request-ID"] == "lb-7f3a.42"
    for junk in ("<script>", "x" * 200, "a b"):
        made = client.get("/health/", HTTP_X_REQUEST_ID=junk)
        assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])
    assert client.get("/health/")["X-Request-ID"] != client.get("/health/")["X-Request-ID"]


def test_each_request_has_one_line_with_its_id_user_site_status_and_duration(registry_client, registry_user, caplog):
    with caplog.at_level(logging.INFO, logger="clearance.request"):
        response = registry_client.get("/registry/reports/", HTTP_X_REQUEST_ID="req-1")
        registry_client.get("/nowhere/at/all/")
    lines = [r for r in caplog.records if r.name == "clearance.request"]
    assert len(lines) == 2
    line = lines[0]
    assert (line.request_id, line.method, line.path, line.site, line.user_id, line.status) == (
        "req-1", "GET", "/registry/reports/", "registry", registry_user.pk, response.status_code)
    assert line.duration_ms >= 0
    assert (lines[1].site, lines[1].status) == ("other", 404)       # a scan cannot make a label per URL


def test_the_lines_are_json_with_the_request_id():
    config = django_settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(fmt=config["fmt"], rename_fields=config["rename_fields"])
    record = logging.LogRecord("core.tasks", logging.WARNING, __file__, 1, "import #%s failed", (4,), None)
    token = set_request_id("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        reset_request_id(token)
    line = json.loads(formatter.format(record))
    assert (line["level"], line["logger"], line["request_id"], line["message"]) == (
        "WARNING", "core.tasks", "abc123", "import #4 failed")
    assert "time" in line


def test_a_task_queued_by_a_request_logs_under_its_id():
    from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute

    task = {"id": "t1", "func": "core.tasks.jobs_sweep_task", "args": (), "kwargs": {}}
    token = set_request_id("req-from-web")
    try:
        pre_enqueue.send(sender="django_q", task=task)
    finally:
        reset_request_id(token)
    assert task["request_id"] == "req-from-web" and current_request_id() is None
    # the worker process: the id is the request's while the task runs, and gone afterwards
    pre_execute.send(sender="django_q", func=None, task=task)
    assert current_request_id() == "req-from-web"
    post_execute_in_worker.send(sender="django_q", func=None, task=task)
    assert current_request_id() is None


def _metrics(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_count_requests_per_site_and_read_the_record(registry_client, open_request, student):
    open_request(student)
    registry_client.get("/registry/")
    response = registry_client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    values = _metrics(response.content.decode())
    assert values['clearance_http_requests_total{method="GET",site="registry",status="2xx"}'] >= 1
    assert values['clearance_http_request_duration_seconds_count{site="registry"}'] >= 1
    pending_lib = ClearanceApproval.objects.filter(department__code="LIB", status="pending").count()
    assert pending_lib > 0
    assert values['clearance_decisions{office="LIB",status="pending"}'] == pending_lib
    assert values['clearance_balance_imports{status="applied"}'] == 0
    assert "clearance_task_queue_depth" in values


@pytest.mark.parametrize("extra, allowed", [
    ({"REMOTE_ADDR": "10.1.2.3"}, False),
    ({"REMOTE_ADDR": "10.1.2.3", "HTTP_AUTHORIZATION": "Bearer wrong"}, False),
    ({"REMOTE_ADDR": "10.1.2.3", "HTTP_AUTHORIZATION": "Bearer s3cret-token"}, True),
    ({"REMOTE_ADDR": "192.168.7.9"}, True),                          # in METRICS_ALLOWED_IPS' network
    ({"REMOTE_ADDR": "::1"}, False),                                 # not in the list set here
])
def test_metrics_answer_the_token_or_the_allowed_addresses_only(client, db, settings, extra, allowed):
    settings.METRICS_TOKEN = "s3cret-token"
    settings.METRICS_ALLOWED_IPS = ["192.168.7.0/24", "not-an-address"]
    response = client.get("/metrics", **extra)
    assert response.status_code == (200 if allowed else 404)
    if not allowed:
        assert b"clearance_" not in response.content


def test_behind_a_proxy_the_forwarded_address_is_the_one_checked(client, db, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # the proxy (127.0.0.1) appends the caller's address; what the caller wrote before it is not trusted
    spoofed = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.5")
    assert spoofed.status_code == 404
    local = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert local.status_code == 200
