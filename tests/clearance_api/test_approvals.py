"""/api/approvals/: the staff queue (scope, filters, cursor pages) and the decisions, one and bulk,
carrying the state the client saw; another office's item is a 404 or counted, never named."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import ClearanceApproval
from core.services import approvals as approval_services
from core.services.holds import hold_place
from tests import factories
from tests.conftest import approval_of

pytestmark = pytest.mark.django_db
A = ClearanceApproval.Status


@pytest.fixture
def queue(open_request, offices):
    """Three students with open requests (LIB, SPT, ... items each)."""
    return [open_request(factories.StudentFactory()) for _ in range(3)]


@pytest.fixture
def lib(make_reviewer):
    return make_reviewer("LIB", email="lib@clearance.test")


def ids(response):
    return [row["id"] for row in response.json()["results"]]


def test_the_queue_is_my_offices_items_oldest_first_with_their_state(as_user, lib, queue):
    r = as_user(lib).get("/api/approvals/")
    assert r.status_code == 200
    rows = r.json()["results"]
    assert len(rows) == 3 and {row["office"]["code"] for row in rows} == {"LIB"}
    first = ClearanceApproval.objects.get(pk=rows[0]["id"])
    assert rows[0]["state"] == first.state_token and rows[0]["status"] == "pending"
    assert rows[0]["student"]["registration_number"] == first.request.student.registration_number
    assert [row["waiting_since"] for row in rows] == sorted(row["waiting_since"] for row in rows)


def test_filters_search_and_refusals_of_bad_values(as_user, lib, queue):
    client = as_user(lib)
    student = queue[0].student
    assert ids(client.get("/api/approvals/", {"search": student.registration_number.lower()})) == [
        approval_of(queue[0], "LIB").pk]
    assert approval_of(queue[0], "LIB").pk in ids(client.get("/api/approvals/", {"search": student.last_name}))
    assert len(ids(client.get("/api/approvals/", {"status": "pending", "office": "lib"}))) == 3
    assert ids(client.get("/api/approvals/", {"office": "SPT"})) == []
    assert ids(client.get("/api/approvals/", {"overdue": "true"})) == []
    assert len(ids(client.get("/api/approvals/", {"overdue": "false", "waiting_days": 0}))) == 3
    assert len(ids(client.get("/api/approvals/", {"cohort": student.expected_graduation_year,
                                                  "school": student.school.code}))) >= 1
    for bad in ({"status": "maybe"}, {"cohort": "abc"}, {"cohort": "99999999999999999999"}, {"overdue": "perhaps"},
                {"waiting_days": "-1"}, {"cursor": "garbage"}):
        r = client.get("/api/approvals/", bad)
        assert r.status_code == 400, bad
        assert set(r.json()) == {"detail", "errors"} and set(r.json()["errors"]) == set(bad), r.json()


def test_cursor_pages_and_constant_queries(as_user, lib, open_request):
    for _ in range(5):
        open_request(factories.StudentFactory())
    client = as_user(lib)
    page = client.get("/api/approvals/", {"page_size": 2}).json()
    seen = [row["id"] for row in page["results"]]
    assert len(seen) == 2
    while page["next"]:
        page = client.get(page["next"]).json()
        seen = seen + [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == 5
    with CaptureQueriesContext(connection) as small:
        client.get("/api/approvals/", {"page_size": 1})
    with CaptureQueriesContext(connection) as large:
        client.get("/api/approvals/", {"page_size": 5})
    assert len(large) == len(small)


def test_approve_with_what_i_saw(as_user, lib, queue):
    item = approval_of(queue[0], "LIB")
    r = as_user(lib).post(f"/api/approvals/{item.pk}/approve/", {"seen": item.state_token, "notes": "books back"},
                          format="json")
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["decided_by"] == lib.email
    item.refresh_from_db()
    assert item.status == A.APPROVED and item.decided_by == lib


def test_a_stale_decision_is_refused_naming_who_changed_it(as_user, lib, make_reviewer, queue):
    item = approval_of(queue[0], "LIB")
    seen = item.state_token
    other = make_reviewer("LIB", email="lib2@clearance.test")
    approval_services.approval_reject(approval=item, acting_user=other, reason="Book not returned")
    r = as_user(lib).post(f"/api/approvals/{item.pk}/approve/", {"seen": seen}, format="json")
    assert r.status_code == 400
    assert "changed since you opened it" in r.json()["detail"] and "lib2@clearance.test" in r.json()["detail"]
    item.refresh_from_db()
    assert item.status == A.REJECTED


@pytest.mark.parametrize("decision, body", [("approve", {}), ("reject", {"reason": "x"}), ("waive", {"reason": "x"}),
                                            ("reopen", {})])
def test_another_offices_item_is_a_404_and_unchanged(as_user, lib, queue, decision, body):
    item = approval_of(queue[0], "SPT")
    r = as_user(lib).post(f"/api/approvals/{item.pk}/{decision}/", {"seen": item.state_token, **body}, format="json")
    assert r.status_code == 404 and set(r.json()) == {"detail", "errors"}
    assert ClearanceApproval.objects.get(pk=item.pk).status == A.PENDING
    assert as_user(lib).post(f"/api/approvals/999999/{decision}/", {"seen": "x", **body},
                             format="json").status_code == 404


@pytest.mark.parametrize("decision, body, field", [
    ("approve", {}, "seen"),
    ("reject", {"seen": "{seen}"}, "reason"),
    ("waive", {"seen": "{seen}", "reason": ""}, "reason"),
    ("approve", {"seen": "{seen}", "colour": "red"}, "colour"),
    ("approve", {"seen": 12}, None),
    ("reject", {"seen": "{seen}", "reason": ["a", "b"]}, "reason"),
    ("reject", {"seen": "{seen}", "reason": "x" * 5000}, "reason"),
])
def test_bad_bodies_are_a_400_naming_the_field_and_change_nothing(as_user, lib, queue, decision, body, field):
    item = approval_of(queue[0], "LIB")
    body = {k: (v.format(seen=item.state_token) if isinstance(v, str) else v) for k, v in body.items()}
    r = as_user(lib).post(f"/api/approvals/{item.pk}/{decision}/", body, format="json")
    if field is None:       # a number where a string is: read as its text, and that is not what was seen
        assert r.status_code == 400 and "changed since you opened it" in r.json()["detail"]
    else:
        assert r.status_code == 400 and field in r.json()["errors"], r.json()
    assert ClearanceApproval.objects.get(pk=item.pk).status == A.PENDING


def test_malformed_json_is_a_400(as_user, lib, queue):
    item = approval_of(queue[0], "LIB")
    r = as_user(lib).post(f"/api/approvals/{item.pk}/approve/", "{oops", content_type="application/json")
    assert r.status_code == 400 and set(r.json()) == {"detail", "errors"}


def test_approve_is_refused_while_the_office_holds_the_student(as_user, lib, queue):
    item = approval_of(queue[0], "LIB")
    hold_place(department=item.department, student=queue[0].student, reason="Book: Dune", acting_user=lib)
    item.refresh_from_db()
    r = as_user(lib).post(f"/api/approvals/{item.pk}/approve/", {"seen": item.state_token}, format="json")
    assert r.status_code == 400 and "Dune" in r.json()["detail"]
    assert as_user(lib).get("/api/approvals/", {"search": queue[0].student.registration_number}).json()[
        "results"][0]["holds"][0]["reason"] == "Book: Dune"


def test_reject_reopen_waive_in_turn(as_user, lib, queue):
    client = as_user(lib)
    item = approval_of(queue[0], "LIB")
    r = client.post(f"/api/approvals/{item.pk}/reject/", {"seen": item.state_token, "reason": "Fine unpaid"},
                    format="json")
    assert r.json()["status"] == "rejected" and r.json()["reason"] == "Fine unpaid"
    r = client.post(f"/api/approvals/{item.pk}/reopen/", {"seen": r.json()["state"]}, format="json")
    assert r.json()["status"] == "pending"
    r = client.post(f"/api/approvals/{item.pk}/waive/", {"seen": r.json()["state"], "reason": "Dean's letter"},
                    format="json")
    assert r.status_code == 200 and r.json()["status"] == "waived"


def test_bulk_reports_done_refused_and_unseen_row_by_row(as_user, lib, make_reviewer, queue):
    mine = [approval_of(r, "LIB") for r in queue]
    stale = mine[1]
    seen_stale = stale.state_token
    approval_services.approval_reject(approval=stale, acting_user=make_reviewer("LIB", email="lib2@clearance.test"),
                                      reason="Book")
    other = approval_of(queue[0], "SPT")
    items = [{"id": mine[0].pk, "seen": mine[0].state_token}, {"id": stale.pk, "seen": seen_stale},
             {"id": mine[2].pk, "seen": mine[2].state_token}, {"id": other.pk, "seen": other.state_token},
             {"id": 987654, "seen": "x"}]
    r = as_user(lib).post("/api/approvals/bulk/", {"decision": "approve", "items": items}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert sorted(body["done"]) == sorted([mine[0].pk, mine[2].pk])
    assert [row["id"] for row in body["refused"]] == [stale.pk]
    assert "lib2@clearance.test" in body["refused"][0]["reason"] and body["refused"][0]["label"]
    assert body["unseen_count"] == 2 and body["unseen_where"] == "not in your queue"
    assert other.pk not in [row["id"] for row in body["refused"]]       # counted, never named
    assert ClearanceApproval.objects.get(pk=other.pk).status == A.PENDING


@pytest.mark.parametrize("body, field", [
    ({"decision": "reject", "items": [{"id": 1, "seen": "x"}]}, "reason"),
    ({"decision": "bless", "items": [{"id": 1, "seen": "x"}]}, "decision"),
    ({"decision": "approve", "items": []}, "items"),
    ({"decision": "approve", "items": [{"id": 1}]}, "items.0.seen"),
    ({"decision": "approve", "items": [{"id": "one", "seen": "x"}]}, "items.0.id"),
    ({"decision": "approve", "items": [{"id": 1, "seen": "x", "extra": 1}]}, "items.0.extra"),
    ({"decision": "approve", "items": [{"id": 1, "seen": "x"}], "ids": [1]}, "ids"),
    ({"decision": "approve", "items": [{"id": 1, "seen": "x"}] * 1001}, "items"),
    ({"decision": "approve", "items": [{"id": 2**70, "seen": "x"}]}, "items.0.id"),
])
def test_bulk_bad_bodies_are_a_400_naming_the_field(as_user, lib, queue, body, field):
    before = list(ClearanceApproval.objects.order_by("pk").values_list("pk", "status", "updated_at"))
    r = as_user(lib).post("/api/approvals/bulk/", body, format="json")
    assert r.status_code == 400 and any(k.startswith(field) for k in r.json()["errors"]), r.json()
    assert list(ClearanceApproval.objects.order_by("pk").values_list("pk", "status", "updated_at")) == before
