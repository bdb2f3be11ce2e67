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
