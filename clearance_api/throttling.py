"""Throttling per signed-in person, per API key and per client address, counted in the cache (DRF's
SimpleRateThrottle). As core/throttle.py: a cache that is down lets the request through (logged),
never a 5xx because a counter cannot be read."""
from __future__ import annotations

import logging

from rest_framework.throttling import SimpleRateThrottle

from core.history import client_ip

from .keys import is_key

log = logging.getLogger(__name__)


class _Tolerant(SimpleRateThrottle):
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache is down: allow, and say so in the log
            log.warning("API throttle %s not counted: %s: %s", self.scope, type(exc).__name__, exc)
            return True

    def get_ident(self, request):
        return client_ip(request._request if hasattr(request, "_request") else request) or "unknown"


class PerClientThrottle(_Tolerant):
    """The default for every view: `key` rate per API key, `user` rate per person, `anon` per address."""

    scope = "user"

    def allow_request(self, request, view):
        if is_key(request):
            self.scope = "key"
        elif request.user and request.user.is_authenticated:
            self.scope = "user"
        else:
            self.scope = "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if self.scope == "key":
            ident = f"key:{request.auth.prefix}"
        elif self.scope == "user":
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignInThrottle(_Tolerant):
    """Token requests per client address (on top of the lockout per account and address)."""

    scope = "signin"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
