"""Production differs from development only by environment values: with DEBUG=false, SECRET_KEY and
ALLOWED_HOSTS set, Django's deploy checks pass; each secure setting can be turned off from the
environment for an intranet on plain HTTP."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz-production",
              "ALLOWED_HOSTS": "clearance.example.ac.ke"}


def _run(code_or_args, **env):
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    # no .env file is read from a temporary directory, and nothing of the test run leaks in
    return subprocess.run([sys.executable, *code_or_args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**base, "DJANGO_SETTINGS_MODULE": "clearance_admin.settings", **env})


def test_check_deploy_is_clean_with_only_the_production_values_set():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_each_secure_setting_can_be_turned_off_for_plain_http():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
            "s.SECURE_PROXY_SSL_HEADER)")
    on = _run(["-c", code], **PRODUCTION)
    assert on.stdout.split() == ["True", "True", "True", "31536000", "('HTTP_X_FORWARDED_PROTO',", "'https')"], on.stderr
    off = _run(["-c", code], **PRODUCTION, SECURE_SSL_REDIRECT="false", SESSION_COOKIE_SECURE="false",
               CSRF_COOKIE_SECURE="false", SECURE_HSTS_SECONDS="0", SECURE_PROXY_SSL_HEADER="false")
    assert off.stdout.split() == ["False", "False", "False", "0", "None"], off.stderr
    dev = _run(["-c", code], DEBUG="true")
    assert dev.stdout.split() == ["False", "False", "False", "0", "None"], dev.stderr


MISSING_KEY = ("Clearance will not start: SECRET_KEY is not set. Set SECRET_KEY in the environment (or .env) "
               "to a long random value, or DEBUG=true for development.")


def test_without_a_secret_key_nothing_serves_and_says_why_in_one_line():
    no_key = {"DEBUG": "false", "ALLOWED_HOSTS": "clearance.example.ac.ke"}
    for start in (["-c", "import clearance_admin.wsgi"], ["-c", "import clearance_admin.asgi"],
                  ["manage.py", "runserver", "127.0.0.1:8999", "--noreload"], ["manage.py", "qcluster"]):
        result = _run(start, **no_key)
        assert result.returncode != 0, start
        assert result.stderr.strip().splitlines() == [MISSING_KEY], start


def test_commands_that_serve_nobody_run_without_a_secret_key():
    result = _run(["manage.py", "makemigrations", "--check", "--dry-run"], DEBUG="false")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_connection_age_comes_from_the_environment():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "d = s.DATABASES['default']; print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])")
    assert _run(["-c", code], **PRODUCTION).stdout.split() == ["0", "True"]
    assert _run(["-c", code], **PRODUCTION, CONN_MAX_AGE="60").stdout.split() == ["60", "True"]


def test_every_page_carries_a_content_security_policy(client, db):
    policy = client.get("/staff/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"]      # no inline script runs
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "Content-Security-Policy" in client.get("/verify/NOPE/")
