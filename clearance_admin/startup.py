"""What must hold before Clearance serves anyone (web server, development server, task worker).

A missing SECRET_KEY with DEBUG off would let Django start and answer every page with a 500, the
reason only in the log; here it stops start-up with one line instead. Commands that serve nobody
(makemigrations, migrate, check) run without a key, and `check --deploy` warns about it (W009).
"""
from __future__ import annotations

MISSING_SECRET_KEY = ("Clearance will not start: SECRET_KEY is not set. Set SECRET_KEY in the environment "
                      "(or .env) to a long random value, or DEBUG=true for development.")
SERVING_COMMANDS = {"runserver", "qcluster"}


def has_secret_key() -> bool:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:
        return False


def require_secret_key() -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    try:
        settings.SECRET_KEY          # Django refuses an empty one, here rather than on every page
    except ImproperlyConfigured:
        raise SystemExit(MISSING_SECRET_KEY) from None
