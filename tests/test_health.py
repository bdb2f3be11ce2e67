"""/health/: ok/unavailable for anyone, each check's details for superusers and monitoring."""
import pytest
from django.db import DatabaseError

pytestmark = pytest.mark.django_db

TOKEN = "monitoring-token-0123456789"


@pytest.fixture(autouse=True)
def health_token(settings):
    settings.HEALTH_TOKEN = TOKEN


@pytest.fixture
def client(client):
    """The monitoring system: sends the token, so it sees the details."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def test_anyone_learns_only_ok_or_unavailable(db, settings):
    from django.test import Client
    anonymous = Client()
    assert anonymous.get("/health/").json() == {"status": "ok"}
    assert Client(HTTP_AUTHORIZATION="Bearer wrong").get("/health/").json() == {"status": "ok"}
    settings.HEALTH_TOKEN = ""            # no token configured: an empty one opens nothing
    assert Client(HTTP_AUTHORIZATION="Bearer ").get("/health/").json() == {"status": "ok"}


def test_anyone_still_gets_503_when_something_is_down(db, settings):
    from django.test import Client

    from tests.conftest import CACHE_DOWN
    settings.CACHES = CACHE_DOWN
    response = Client().get("/health/")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_a_superuser_sees_the_details(db):
    from django.test import Client

    from tests import factories
    admin = Client()
    admin.force_login(factories.UserFactory(is_superuser=True, is_staff=True))
    body = admin.get("/health/").json()
    assert body["status"] == "ok" and body["database"]["ok"] is True and "task_queue" in body
    clerk = Client()
    clerk.force_login(factories.UserFactory(is_staff=True))
    assert clerk.get("/health/").json() == {"status": "ok"}


def test_health_ok(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["task_queue"]["ok"] is True
    assert body["task_queue"]["reachable"] is True
    assert body["cache"]["ok"] is True
    assert body["jobs"] == {"ok": True, "swept": []}


def test_health_503_when_database_fails(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def broken(self, sql, params=None):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
    assert "connection refused" in response.json()["database"]["error"]


def test_health_503_when_workers_required_and_none_running(client, settings):
    settings.HEALTH_REQUIRE_WORKERS = True
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["task_queue"]["clusters"] == 0


def test_health_503_naming_the_cache_when_it_is_down(client, settings):
    from tests.conftest import CACHE_DOWN
    settings.CACHES = CACHE_DOWN
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["cache"]["ok"] is False and body["cache"]["backend"] == "RedisCache"
    assert "ConnectionError" in body["cache"]["error"] and "127.0.0.1:1" in body["cache"]["error"]
    assert body["database"]["ok"] is True


def test_health_sweeps_imports_whose_worker_died_and_says_so(client, own_lock_dir):
    from core.models import BalanceImport
    from tests import factories
    from tests.conftest import as_if_claimed
    bi = factories.BalanceImportFactory(status=BalanceImport.Status.PREVIEWED, plan={"changed": [], "unchanged": []})
    as_if_claimed(bi, BalanceImport.Status.APPLYING)
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["jobs"] == {"ok": True, "swept": [
        {"import": bi.pk, "reason": f"Import #{bi.pk}: the worker stopped; nothing was changed — confirm again."}]}
    assert BalanceImport.objects.get(pk=bi.pk).status == BalanceImport.Status.FAILED


def test_the_favicon_is_there(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/core/favicon.ico"
    from django.contrib.staticfiles import finders
    assert finders.find("core/favicon.ico")
    page = client.get("/student/login/", follow=True).content.decode()
    assert 'href="/static/core/favicon.ico"' in page
