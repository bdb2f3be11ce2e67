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
