"""/api/reports/{name}/ (JSON pages, xlsx/csv through the reports' writers, the Reports page's
permission) and /api/gowns/ (the gown store: list, issue, return, refund)."""
from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest

from core.models import ExportFile, ExportLog, GownIssuance
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def reg(as_user, registry_user):
    return as_user(registry_user)


def test_a_report_as_json_pages(reg, open_request, offices, settings, monkeypatch):
    for _ in range(3):
        open_request(factories.StudentFactory())
    from clearance_api import reports
    monkeypatch.setattr(reports, "PAGE_ROWS", 4)
    r = reg.get("/api/reports/pending_by_department/")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["report"] == "pending_by_department" and body["columns"] and len(body["rows"]) == 4
    assert body["next"] and body["previous"] is None
    nxt = reg.get(body["next"]).json()
    assert nxt["page"] == 2 and nxt["previous"]


def test_xlsx_and_csv_through_the_same_writers_and_logged(reg, open_request, offices):
    open_request(factories.StudentFactory())
    x = reg.get("/api/reports/pending_by_department/", {"format": "xlsx"})
    assert x.status_code == 200 and x["Content-Disposition"].startswith("attachment;")
    sheet = openpyxl.load_workbook(io.BytesIO(x.content)).active
    assert "Pending by department" in str(sheet["A1"].value) or sheet.max_row > 1
    c = reg.get("/api/reports/pending_by_department/", {"format": "csv", "department": "LIB"})
    assert c.status_code == 200 and c["Content-Type"].startswith("text/csv") and b"LIB" in c.content
    assert ExportLog.objects.count() == 2


def test_a_large_file_is_written_in_the_background(reg, open_request, offices, settings):
    settings.EXPORT_BACKGROUND_ROWS = 1
    open_request(factories.StudentFactory())
    r = reg.get("/api/reports/pending_by_department/", {"format": "csv"})
    assert r.status_code == 202 and ExportFile.objects.filter(pk=r.json()["export"]).exists()


@pytest.mark.parametrize("query, field", [({"cohort": "20x6"}, "cohort"), ({"colour": "red"}, "colour"),
                                          ({"format": "pdf"}, "format"), ({"page": "0"}, "page"),
                                          ({"page": "abc"}, "page"), ({"school": "NOPE"}, "school")])
def test_bad_parameters_are_a_400_naming_them(reg, offices, query, field):
    r = reg.get("/api/reports/graduation_list/", query)
    assert r.status_code == 400 and field in r.json()["errors"], r.json()


def test_who_reads_which_report(as_user, finance_user, lib_reviewer, student, offices, open_request):
    fin, lib = as_user(finance_user), as_user(lib_reviewer)
    assert fin.get("/api/reports/financial_summary/").status_code == 200
    assert fin.get("/api/reports/graduation_list/").status_code == 404
    assert lib.get("/api/reports/audit_trail/").status_code == 404
    assert as_user(student.user).get("/api/reports/pending_by_department/").status_code == 403
    assert as_user(lib_reviewer).get("/api/reports/nonsense/").status_code == 404
    # office staff: only their offices' pending items
    open_request(factories.StudentFactory())
    rows = lib.get("/api/reports/pending_by_department/").json()["rows"]
    assert rows and {row[0] for row in rows} == {"LIB"}


# --- gowns ---------------------------------------------------------------------------------------

@pytest.fixture
def store(as_user, make_reviewer, settings):
    settings.GOWN_REQUIRES_COMPLETED = False
    return as_user(make_reviewer("GOWN", email="gown@clearance.test"))


@pytest.fixture
def graduand(db):
    return factories.student_with_reg("SCE/CS/0001/2022")


def test_issue_return_refund(store, graduand):
    r = store.post("/api/gowns/", {"registration_number": "sce/cs/0001/2022", "gown_code": " g-001 ", "size": "M"},
                   format="json")
    assert r.status_code == 201, r.json()
    gown = r.json()
    assert gown["gown_code"] == "G-001" and gown["deposit_status"] == "held" and gown["returned_at"] is None
    assert [g["id"] for g in store.get("/api/gowns/", {"view": "out"}).json()["results"]] == [gown["id"]]
    again = store.post("/api/gowns/", {"registration_number": "SCE/CS/0001/2022", "gown_code": "G-002", "size": "M"},
                       format="json")
    assert again.status_code == 400 and "already has a gown" in again.json()["detail"]
    assert store.post(f"/api/gowns/{gown['id']}/refund/", {}, format="json").status_code == 400   # still out
    back = store.post(f"/api/gowns/{gown['id']}/return/", {"damage_notes": "torn sleeve"}, format="json")
    assert back.status_code == 200 and back.json()["returned_at"]
    assert store.post(f"/api/gowns/{gown['id']}/return/", {}, format="json").status_code == 400
    part = store.post(f"/api/gowns/{gown['id']}/refund/", {"amount": "1500", "retained_reason": "sleeve repair"},
                      format="json")
    assert part.status_code == 200 and part.json()["refunded_amount"] == "1500.00"
    assert GownIssuance.objects.get().refunded_amount == Decimal("1500")


def test_issue_refused_before_clearance_is_complete(store, graduand, settings):
    settings.GOWN_REQUIRES_COMPLETED = True
    r = store.post("/api/gowns/", {"registration_number": "SCE/CS/0001/2022", "gown_code": "G-1", "size": "M"},
                   format="json")
    assert r.status_code == 400 and not GownIssuance.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"registration_number": "SCE/CS/9999/2022", "gown_code": "G-1", "size": "M"}, "registration_number"),
    ({"registration_number": "SCE/CS/0001/2022", "gown_code": "G-1", "size": "XXL"}, "size"),
    ({"registration_number": "SCE/CS/0001/2022", "gown_code": "G-1", "size": "M", "deposit": "abc"}, "deposit"),
    ({"registration_number": "SCE/CS/0001/2022", "gown_code": "G-1", "size": "M", "colour": "red"}, "colour"),
    ({"registration_number": "SCE/CS/0001/2022", "size": "M"}, "gown_code"),
])
def test_issue_bad_bodies(store, graduand, body, field):
    r = store.post("/api/gowns/", body, format="json")
    assert r.status_code == 400 and field in r.json()["errors"], r.json()
    assert not GownIssuance.objects.exists()


def test_only_the_gown_store(as_user, lib_reviewer, finance_user, graduand, store):
    gown = factories.GownIssuanceFactory(student=graduand)
    for user in (lib_reviewer, finance_user):
        client = as_user(user)
        assert client.get("/api/gowns/").status_code == 403
        assert client.post(f"/api/gowns/{gown.pk}/return/", {}, format="json").status_code == 403
    assert GownIssuance.objects.get().returned_at is None
    assert store.post("/api/gowns/424242/return/", {}, format="json").status_code == 404
