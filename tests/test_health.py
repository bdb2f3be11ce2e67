import pytest
from django.db import DatabaseError

pytestmark = pytest.mark.django_db


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
