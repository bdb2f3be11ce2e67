"""Logs a machine reads: one JSON object per line (settings.LOGGING, LOG_FORMAT=json, the default),
every line carrying the request id of the request it belongs to.

The id comes from the caller's `X-Request-ID` (a load balancer's, when it is a plain token) or is
made here; it is answered back in `X-Request-ID`, written on the request's one summary line
(logger "clearance.request": method, path, site, user id, status, duration) and handed to every task
the request queues (django-q2's pre_enqueue/pre_execute signals carry it in the task's package), so
a worker's lines about an import say which request asked for it."""
from __future__ import annotations

import contextvars
import logging
import re
import uuid

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("clearance_request_id", default=None)
_worker_token: contextvars.ContextVar = contextvars.ContextVar("clearance_request_id_token", default=None)
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")       # a caller's id is used only when it is a plain token


def new_request_id(given: str | None = None) -> str:
    """The caller's id when it is a plain token (at most 128 letters, digits, `._:-`), else a new one."""
    if given and ACCEPTED_ID.match(given):
        return given
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):
    """Set the id for this context; returns the token to reset it with."""
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record (None outside a request or a task a request queued)."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


def mask_secrets(text: str) -> str:
    """The text as logged: the M-PESA callbacks' secret (MPESA_CALLBACK_SECRET, a part of their
    URL path) replaced by "<secret>", so no request line or "Not Found: <path>" gives it away."""
    from django.conf import settings
    secret = getattr(settings, "MPESA_CALLBACK_SECRET", "")
    return text.replace(secret, "<secret>") if secret and isinstance(text, str) and secret in text else text


class SecretFilter(logging.Filter):
    """Masks the URL secrets (mask_secrets) in every record the console writes: its arguments and
    the request Django's own 4xx/5xx lines carry."""

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in record.args)
        record.msg = mask_secrets(record.msg)
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str) and hasattr(request, "path"):
            record.request = mask_secrets(f"<{type(request).__name__}: {request.method} {request.path!r}>")
        return True


def connect_task_signals() -> None:
    """Carry the request id into the tasks a request queues (called from CoreConfig.ready: the
    logging settings import this module before the apps are loaded)."""
    from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute
    pre_enqueue.connect(_carry_request_id, dispatch_uid="core.logs.task_request_id")
    pre_execute.connect(_take_request_id, dispatch_uid="core.logs.task_request_id_in")
    post_execute_in_worker.connect(_drop_request_id, dispatch_uid="core.logs.task_request_id_out")


def _carry_request_id(sender, task, **kwargs):
    request_id = _request_id.get()
    if request_id:
        task["request_id"] = request_id


def _take_request_id(sender, func, task, **kwargs):
    # a sync task (tests, Q_CLUSTER sync) runs inside the request: it keeps the request's id
    if task.get("request_id") and not task.get("sync"):
        _worker_token.set(_request_id.set(task["request_id"]))


def _drop_request_id(sender, func, task, **kwargs):
    token = _worker_token.get()
    if token is not None:
        _request_id.reset(token)
        _worker_token.set(None)
