"""/api/balances/import/: the finance system pushes balances as JSON rows or a file; preview, poll,
apply by id with the engine's rules (errors need skip_errors, applied once, stale plans refused);
large ones through the task queue."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import BalanceImport, FinanceRecord, Hold
from core.services import balances as balance_services
from tests import factories

pytestmark = pytest.mark.django_db
B = BalanceImport.Status
ROWS = [{"registration_number": "sce/cs/0001/2022", "tuition_balance": "900.00"},
        {"registration_number": "SCE/CS/0002/2022", "tuition_balance": "100", "graduation_fee_paid": True},
        {"registration_number": "SCE/CS/9999/2022", "tuition_balance": "5"}]


@pytest.fixture
def three(offices):
    students = [factories.student_with_reg(f"SCE/CS/{i:04d}/2022") for i in (1, 2, 3)]
    for s in students:
        factories.FinanceRecordFactory(student=s, tuition_balance=Decimal("100"))
    return students


@pytest.fixture
def fin(as_user, finance_user):
    return as_user(finance_user)


def balance(student):
    return FinanceRecord.objects.get(student=student).tuition_balance


def test_json_rows_preview_then_apply(fin, three):
    r = fin.post("/api/balances/import/", {"rows": ROWS}, format="json")
    assert r.status_code == 201, r.json()
    p = r.json()
    # 0001's balance and 0002's graduation fee change; 9999 is no student
    assert (p["status"], p["changed"], p["unchanged"], p["not_found"], p["error_count"]) == ("previewed", 2, 0, 1, 0)
    assert balance(three[0]) == Decimal("100")
    assert fin.get(f"/api/balances/import/{p['id']}/").json()["status"] == "previewed"
    a = fin.post(f"/api/balances/import/{p['id']}/apply/", {}, format="json")
    assert a.status_code == 200 and a.json()["status"] == "applied"
    assert balance(three[0]) == Decimal("900") and Hold.objects.filter(student=three[0], status="active").exists()
    again = fin.post(f"/api/balances/import/{p['id']}/apply/", {}, format="json")
    assert again.status_code == 400 and "already applied" in again.json()["detail"]


def test_a_file_as_the_site_takes_it(fin, three):
    upload = SimpleUploadedFile("bal.csv", b"Reg No;Balance (KES)\nSCE/CS/0001/2022;KES 12,500.00\n", "text/csv")
    r = fin.post("/api/balances/import/", {"file": upload}, format="multipart")
    assert r.status_code == 201 and r.json()["changed"] == 1


def test_errors_need_skip_errors(fin, three):
    upload = SimpleUploadedFile("bal.csv", b"Reg No,Balance\nSCE/CS/0001/2022,900\nSCE/CS/0002/2022,lots\n",
                                "text/csv")
    p = fin.post("/api/balances/import/", {"file": upload}, format="multipart").json()
    assert p["error_count"] == 1 and p["errors"][0]["column"]
    r = fin.post(f"/api/balances/import/{p['id']}/apply/", {}, format="json")
    assert r.status_code == 400 and balance(three[0]) == Decimal("100")
    r = fin.post(f"/api/balances/import/{p['id']}/apply/", {"skip_errors": True}, format="json")
    assert r.status_code == 200 and balance(three[0]) == Decimal("900")


def test_a_stale_plan_is_refused(fin, three):
    first = fin.post("/api/balances/import/", {"rows": ROWS[:1]}, format="json").json()
    second = fin.post("/api/balances/import/", {"rows": [dict(ROWS[0], tuition_balance="50")]}, format="json").json()
    assert fin.post(f"/api/balances/import/{second['id']}/apply/", {}, format="json").status_code == 200
    r = fin.post(f"/api/balances/import/{first['id']}/apply/", {}, format="json")
    assert r.status_code == 400 and balance(three[0]) == Decimal("50")


def test_large_ones_go_through_the_task_queue(fin, three, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(balance_services, "ASYNC_ROWS", 1)
    with django_capture_on_commit_callbacks(execute=True):
        r = fin.post("/api/balances/import/", {"rows": ROWS}, format="json")
    assert r.status_code == 202 and r.json()["status"] == "uploaded"
    assert fin.get(f"/api/balances/import/{r.json()['id']}/").json()["status"] == "previewed"   # the worker ran
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        a = fin.post(f"/api/balances/import/{r.json()['id']}/apply/", {}, format="json")
    assert a.status_code == 202 and a.json()["status"] == "queued"
    assert fin.post(f"/api/balances/import/{r.json()['id']}/apply/", {}, format="json").status_code == 400
    for callback in callbacks:
        callback()
    assert fin.get(f"/api/balances/import/{r.json()['id']}/").json()["status"] == "applied"
    assert balance(three[0]) == Decimal("900")


@pytest.mark.parametrize("body, field", [
    ({}, None),
    ({"rows": []}, "rows"),
    ({"rows": [{"registration_number": "SCE/CS/0001/2022"}]}, "rows.0.tuition_balance"),
    ({"rows": [{"registration_number": "SCE/CS/0001/2022", "tuition_balance": "abc"}]}, "rows.0.tuition_balance"),
    ({"rows": [{"registration_number": "SCE/CS/0001/2022", "tuition_balance": "1e300"}]}, "rows.0.tuition_balance"),
    ({"rows": [{"registration_number": "SCE/CS/0001/2022", "tuition_balance": 1, "x": 1}]}, "rows.0.x"),
    ({"rows": ROWS, "apply": True}, "apply"),
])
def test_bad_bodies_write_nothing(fin, three, body, field):
    r = fin.post("/api/balances/import/", body, format="json")
    assert r.status_code == 400, r.json()
    if field is None:
        assert "either `file`" in r.json()["detail"]
    else:
        assert any(k.startswith(field) for k in r.json()["errors"]), r.json()
    assert not BalanceImport.objects.exists()


def test_unknown_ids_and_other_roles(fin, as_user, lib_reviewer, three):
    assert fin.get("/api/balances/import/424242/").status_code == 404
    assert fin.post("/api/balances/import/424242/apply/", {}, format="json").status_code == 404
    r = as_user(lib_reviewer).post("/api/balances/import/", {"rows": ROWS}, format="json")
    assert r.status_code == 403 and not BalanceImport.objects.exists()
