"""/api/holds/: the holds of my offices, placing, releasing and waiving them, and an office system
pushing its list through the office hold import (JSON rows or a file; preview, then apply by id)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import Hold, HoldImport
from core.services.holds import hold_place
from tests import factories

pytestmark = pytest.mark.django_db
H = Hold.Status


@pytest.fixture
def lib(make_reviewer):
    return make_reviewer("LIB", email="lib@clearance.test")


@pytest.fixture
def pupils(db):
    return [factories.student_with_reg(f"SCE/CS/000{i}/2022") for i in range(1, 4)]


def test_list_is_my_offices_holds_with_filters(as_user, lib, make_reviewer, offices, pupils):
    mine = hold_place(department=offices["LIB"], student=pupils[0], reason="Book: Dune", acting_user=lib)
    hold_place(department=offices["SPT"], student=pupils[1], reason="Ball", acting_user=make_reviewer("SPT"))
    client = as_user(lib)
    rows = client.get("/api/holds/").json()["results"]
    assert [r["id"] for r in rows] == [mine.pk] and rows[0]["office"] == "LIB" and rows[0]["placed_by"] == lib.email
    assert [r["id"] for r in client.get("/api/holds/", {"student": "sce/cs/0001/2022"}).json()["results"]] == [mine.pk]
    assert client.get("/api/holds/", {"search": "dune", "status": "active"}).json()["results"]
    assert client.get("/api/holds/", {"status": "nonsense"}).status_code == 400


def test_place_on_several_students_by_registration_number(as_user, lib, pupils):
    r = as_user(lib).post("/api/holds/", {"office": "lib", "registration_numbers": ["sce/cs/0001/2022",
                                                                                   " SCE/CS/0002/2022 "],
                                          "reason": "Book: Dune", "amount": "1200.50"}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert len(body["holds"]) == 2 and body["holds"][0]["amount"] == "1200.50" and body["result"]["refused"] == []
    again = as_user(lib).post("/api/holds/", {"office": "LIB", "registration_numbers": ["SCE/CS/0001/2022"],
                                              "reason": "Book: Dune"}, format="json").json()
    assert again["result"]["done"] == [] and "already holds" in again["result"]["refused"][0]["reason"]
    assert Hold.objects.count() == 2


@pytest.mark.parametrize("body, field", [
    ({"office": "SPT", "registration_numbers": ["SCE/CS/0001/2022"], "reason": "x"}, "office"),
    ({"office": "LIB", "registration_numbers": ["SCE/CS/9999/2022"], "reason": "x"}, "registration_numbers"),
    ({"office": "LIB", "registration_numbers": [], "reason": "x"}, "registration_numbers"),
    ({"office": "LIB", "registration_numbers": ["SCE/CS/0001/2022"]}, "reason"),
    ({"office": "LIB", "registration_numbers": ["SCE/CS/0001/2022"], "reason": "x", "amount": "abc"}, "amount"),
    ({"office": "LIB", "registration_numbers": ["SCE/CS/0001/2022"], "reason": "x", "amount": "-5"}, "amount"),
    ({"office": "LIB", "registration_numbers": "SCE/CS/0001/2022", "reason": "x"}, "registration_numbers"),
    ({"office": "LIB", "registration_numbers": ["SCE/CS/0001/2022"], "reason": "x", "student": 1}, "student"),
])
def test_place_refusals_name_the_field_and_place_nothing(as_user, lib, pupils, body, field):
    r = as_user(lib).post("/api/holds/", body, format="json")
    assert r.status_code == 400 and any(k.startswith(field) for k in r.json()["errors"]), r.json()
    assert not Hold.objects.exists()


def test_release_and_waive_and_another_offices_hold_is_a_404(as_user, lib, make_reviewer, offices, pupils):
    client = as_user(lib)
    a = hold_place(department=offices["LIB"], student=pupils[0], reason="Book: Dune", acting_user=lib)
    b = hold_place(department=offices["LIB"], student=pupils[1], reason="Book: Emma", acting_user=lib)
    theirs = hold_place(department=offices["SPT"], student=pupils[2], reason="Ball", acting_user=make_reviewer("SPT"))
    r = client.post(f"/api/holds/{a.pk}/release/", {"reason": "returned"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "released"
    assert client.post(f"/api/holds/{a.pk}/release/", {}, format="json").status_code == 400   # already released
    assert client.post(f"/api/holds/{b.pk}/waive/", {}, format="json").json()["errors"].keys() == {"reason"}
    assert client.post(f"/api/holds/{b.pk}/waive/", {"reason": "lost in a flood"}, format="json").json()[
        "status"] == "waived"
    for verb in ("release", "waive"):
        assert client.post(f"/api/holds/{theirs.pk}/{verb}/", {"reason": "x"}, format="json").status_code == 404
    assert Hold.objects.get(pk=theirs.pk).status == H.ACTIVE


def test_an_office_system_pushes_its_list_as_json_preview_then_apply(as_key, make_reviewer, pupils):
    system = make_reviewer("LIB", email="library-system@clearance.test")
    client = as_key(system)
    rows = [{"registration_number": "sce/cs/0001/2022", "reason": "Book: Dune", "amount": "500"},
            {"registration_number": "SCE/CS/0002/2022", "reason": "=HYPERLINK(\"x\")"},
            {"registration_number": "SCE/CS/0404/2022", "reason": "Book: Emma"}]
    r = client.post("/api/holds/import/", {"office": "LIB", "rows": rows}, format="json")
    assert r.status_code == 201, r.json()
    preview = r.json()
    assert (preview["status"], preview["placed"], preview["not_found"]) == ("previewed", 2, 1)
    assert not Hold.objects.exists()
    applied = client.post(f"/api/holds/import/{preview['id']}/apply/", {}, format="json")
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    held = dict(Hold.objects.values_list("student__registration_number", "reason"))
    assert held == {"SCE/CS/0001/2022": "Book: Dune", "SCE/CS/0002/2022": "'=HYPERLINK(\"x\")"}
    assert client.post(f"/api/holds/import/{preview['id']}/apply/", {}, format="json").status_code == 400
    assert client.get(f"/api/holds/import/{preview['id']}/").json()["placed"] == 2


def test_a_file_and_apply_at_once(as_user, lib, pupils):
    upload = SimpleUploadedFile("overdue.csv", b"Reg No,Title,Fine\nSCE/CS/0001/2022,Dune,200\n", "text/csv")
    r = as_user(lib).post("/api/holds/import/", {"office": "LIB", "file": upload, "apply": "true"}, format="multipart")
    assert r.status_code == 201, r.json()
    assert r.json()["status"] == "applied" and Hold.objects.get().amount == Decimal("200")


def test_a_stale_preview_is_refused(as_user, lib, offices, pupils):
    client = as_user(lib)
    preview = client.post("/api/holds/import/", {"office": "LIB", "full_list": True, "rows": [
        {"registration_number": "SCE/CS/0001/2022", "reason": "Book: Dune"}]}, format="json").json()
    first = client.post("/api/holds/import/", {"office": "LIB", "apply": True, "rows": [
        {"registration_number": "SCE/CS/0002/2022", "reason": "Book: Emma"}]}, format="json").json()
    assert first["status"] == "applied"
    r = client.post(f"/api/holds/import/{preview['id']}/apply/", {}, format="json")
    assert r.status_code == 400 and HoldImport.objects.get(pk=preview["id"]).status == HoldImport.Status.FAILED


@pytest.mark.parametrize("body, field", [
    ({"office": "LIB"}, None),
    ({"office": "LIB", "rows": []}, "rows"),
    ({"office": "LIB", "rows": [{"registration_number": "SCE/CS/0001/2022"}]}, "rows.0.reason"),
    ({"office": "LIB", "rows": [{"registration_number": "X", "reason": "y", "amount": "abc"}]}, "rows.0.amount"),
    ({"office": "LIB", "rows": [{"registration_number": "X", "reason": "y", "colour": 1}]}, "rows.0.colour"),
    ({"office": "SPT", "rows": [{"registration_number": "X", "reason": "y"}]}, "office"),
    ({"office": "LIB", "rows": "SCE/CS/0001/2022"}, "rows"),
])
def test_import_refusals_write_nothing(as_user, lib, pupils, body, field):
    r = as_user(lib).post("/api/holds/import/", body, format="json")
    assert r.status_code == 400, r.json()
    if field is None:
        assert "either `file`" in r.json()["detail"]
    else:
        assert any(k.startswith(field) for k in r.json()["errors"]), r.json()
    assert not HoldImport.objects.exists()


def test_an_unreadable_file_is_a_400(as_user, lib):
    upload = SimpleUploadedFile("x.csv", b"\x00\x01\x02garbage", "text/csv")
    r = as_user(lib).post("/api/holds/import/", {"office": "LIB", "file": upload}, format="multipart")
    assert r.status_code == 400 and r.json()["detail"] and not HoldImport.objects.exists()


def test_another_offices_import_is_a_404(as_user, lib, make_reviewer, pupils):
    spt = make_reviewer("SPT")
    theirs = as_user(spt).post("/api/holds/import/", {"office": "SPT", "rows": [
        {"registration_number": "SCE/CS/0001/2022", "reason": "Ball"}]}, format="json").json()
    assert as_user(lib).get(f"/api/holds/import/{theirs['id']}/").status_code == 404
    assert as_user(lib).post(f"/api/holds/import/{theirs['id']}/apply/", {}, format="json").status_code == 404
    assert not Hold.objects.exists()
