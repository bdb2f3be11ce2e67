"""/staff/ queue at a university's scale (issue 14 item 7): the search goes through the students'
index (core/sql/search.py), the count stops a few pages ahead (clearance_admin/paginators.py),
"waiting" is pending with the stage open — each still right for the clerk and still scoped.
Timings are benchmarks/staff_changelist.py's business, not these tests'."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clearance_admin.staff import ClearanceApprovalAdmin
from core.models import ClearanceApproval, Student
from core.services.requests import requests_open_for_cohort
from core.services.status import approvals_refresh_stage_open
from tests import factories

pytestmark = pytest.mark.django_db

A = ClearanceApproval.Status
QUEUE = reverse("staff:core_clearanceapproval_changelist")


def rows(response) -> list:
    return list(response.context["cl"].result_list)


def listed(client, query="") -> set[int]:
    response = client.get(QUEUE + query)
    assert response.status_code == 200, query
    return {a.pk for a in rows(response)}


@pytest.fixture
def lib_client(client, lib_reviewer):
    client.force_login(lib_reviewer)
    return client


def cohort(n, cycle, registry_user, year=2026, **fields):
    """n students of one school with open requests in `cycle`; returns their LIB approvals' ids."""
    school = factories.SchoolFactory(code="SCE")
    dept = factories.AcademicDepartmentFactory(school=school, code="CS")
    programme = factories.ProgrammeFactory(academic_department=dept)
    factories.StudentFactory.create_batch(n, expected_graduation_year=year, school=school, academic_department=dept,
                                          programme=programme, **fields)
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=year)
    return list(ClearanceApproval.objects.filter(request__student__expected_graduation_year=year,
                                                 department__code="LIB").values_list("pk", flat=True))


# --- queries: the same for 10 rows and 200 ----------------------------------------------------------

QUERIES = ["", "?status__exact=pending", "?queue=waiting", "?status__exact=pending&p=3", "?q=SCE/CS", "?q=Stu"]


def queries_of(client, query) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(QUEUE + query)
    assert response.status_code == 200, query
    return len(ctx)


def test_the_queue_runs_the_same_few_queries_for_10_rows_and_200(lib_client, cycle, registry_user, offices,
                                                                  django_assert_max_num_queries):
    cohort(10, cycle, registry_user, year=2026, last_name="Student")
    small = {q: queries_of(lib_client, q) for q in QUERIES if "p=3" not in q}
    cohort(190, cycle, registry_user, year=2027, last_name="Student")
    for query in QUERIES:
        with django_assert_max_num_queries(15):
            response = lib_client.get(QUEUE + query)
        assert len(rows(response)) == 50, query          # a full page, whatever the case
        if query in small:
            assert queries_of(lib_client, query) == small[query], query


# --- search: by name and registration number, through the index, scoped ---------------------------

@pytest.fixture
def searchable(open_request, offices):
    amina = factories.student_with_reg("SCE/CS/0417/2022", first_name="Amina", last_name="Wanjiru-Kamau")
    brian = factories.student_with_reg("SBE/ACC/0042/2021", first_name="Brian", last_name="Otieno")
    return open_request(amina), open_request(brian)


def lib_of(request):
    return ClearanceApproval.objects.get(request=request, department__code="LIB").pk


@pytest.mark.parametrize("typed", ["Amina", "amina", "wanjiru", "Kamau", "amina kamau", "  AMINA   wanjiru  ",
                                   '"Amina Wanjiru"', "SCE/CS/0417/2022", "sce/cs/0417", "0417", "Wanjiru-K"])
def test_search_finds_the_student_by_name_or_registration_number(lib_client, searchable, typed):
    amina, _ = searchable
    assert listed(lib_client, "?q=" + typed) == {lib_of(amina)}


@pytest.mark.parametrize("typed", ["Amina Otieno", "SCE/CS/0042", "Zebedee", "0417/2021"])
def test_search_needs_every_word_and_finds_nobody_else(lib_client, searchable, typed):
    assert listed(lib_client, "?q=" + typed) == set()


def test_a_short_word_is_matched_too(lib_client, searchable):
    amina, brian = searchable
    assert listed(lib_client, "?q=42") == {lib_of(brian)}
    assert listed(lib_client, "?q=Otieno 21") == {lib_of(brian)}
    assert listed(lib_client, "?q=Otieno 22") == set()


@pytest.mark.parametrize("typed", ["%", "_", "\\", "'", '"', "a%b", "%%%", "SCE_CS", "*", "OR", "NEAR(x)", '"unclosed'])
def test_search_characters_of_like_and_fts_are_plain_text(lib_client, searchable, typed):
    response = lib_client.get(QUEUE, {"q": typed})
    assert response.status_code == 200
    assert rows(response) == []


def test_the_search_asks_the_students_index_not_a_scan_of_the_queue(lib_client, searchable):
    from core.sql.search import SEARCH_TABLE
    with CaptureQueriesContext(connection) as ctx:
        assert len(listed(lib_client, "?q=Wanjiru")) == 1
    page = [q["sql"] for q in ctx.captured_queries if '"core_clearanceapproval"."waiting_since"' in q["sql"]]
    assert page, "the page's query"
    if connection.vendor == "sqlite":
        assert all(f"FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH" in sql for sql in page)
    else:   # the very expression the trigram index of migration 0020 is built on
        assert all("UPPER(" in sql and "|| ' ' ||" in sql for sql in page)
    assert not any('UPPER("core_student"."first_name"' in sql for sql in page)   # Django's per-column LIKE


def test_search_keeps_the_clerks_scope(client, make_reviewer, searchable, offices):
    amina, brian = searchable
    spt = make_reviewer("SPT")
    client.force_login(spt)
    found = listed(client, "?q=Amina")
    assert found == {ClearanceApproval.objects.get(request=amina, department__code="SPT").pk}
    # a school office clerk limited to SBE finds Brian's SCH item, never Amina's
    sch = make_reviewer("SCH", schools=[brian.student.school])
    client.force_login(sch)
    assert listed(client, "?q=Amina") == set()
    assert listed(client, "?q=Otieno") == {ClearanceApproval.objects.get(request=brian, department__code="SCH").pk}


def test_search_follows_renames_and_deletions(lib_client, searchable):
    amina, brian = searchable
    Student.objects.filter(pk=amina.student_id).update(last_name="Njeri")
    assert listed(lib_client, "?q=Wanjiru") == set()
    assert listed(lib_client, "?q=Njeri") == {lib_of(amina)}
    Student.objects.filter(pk=brian.student_id).update(registration_number="SBE/ACC/0043/2021")
    assert listed(lib_client, "?q=0042") == set()
    assert listed(lib_client, "?q=0043/2021") == {lib_of(brian)}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 table and its triggers are SQLite's")
def test_sqlite_search_index_is_rebuilt_when_a_migration_dropped_its_triggers(lib_client, searchable):
    from core.sql.search import SEARCH_TABLE, install_sqlite_search
    amina, _ = searchable
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {SEARCH_TABLE}_au")      # what a table rebuild of core_student does
    assert install_sqlite_search(connection) is True
    Student.objects.filter(pk=amina.student_id).update(first_name="Zawadi")
    assert listed(lib_client, "?q=Zawadi") == {lib_of(amina)}
    assert install_sqlite_search(connection) is False          # all in place: nothing done


# --- the count: exact while short, "more than N" past a few pages, paging still right --------------

def test_a_long_queue_is_counted_only_a_few_pages_ahead_and_pages_on(lib_client, cycle, registry_user, offices,
                                                                     monkeypatch):
    monkeypatch.setattr(ClearanceApprovalAdmin, "list_per_page", 2)
    ids = cohort(30, cycle, registry_user)
    in_order = list(ClearanceApproval.objects.filter(pk__in=ids).order_by("waiting_since", "pk")
                    .values_list("pk", flat=True))
    response = lib_client.get(QUEUE)
    cl = response.context["cl"]
    assert not cl.paginator.exact and cl.paginator.limit == 8         # 1 + 3 pages of 2
    assert f"more than 8 {ClearanceApproval._meta.verbose_name_plural}" in " ".join(response.content.decode().split())
    assert not cl.can_show_all                                         # never "Show all" of an uncounted list
    assert [a.pk for a in rows(response)] == in_order[:2]
    assert "?all=" not in response.content.decode()
    assert [a.pk for a in rows(lib_client.get(QUEUE + "?all="))] == in_order[:2]   # typed by hand: one page
    # page 14 is past the first count; asking for it counts further, and the rows are the right ones
    response = lib_client.get(QUEUE + "?p=14")
    assert response.status_code == 200
    assert [a.pk for a in rows(response)] == in_order[26:28]
    assert response.context["cl"].paginator.limit == 34
    assert response.context["cl"].paginator.exact and response.context["cl"].result_count == 30
    assert f"30 {ClearanceApproval._meta.verbose_name_plural}" in " ".join(response.content.decode().split())
    assert lib_client.get(QUEUE + "?p=16").status_code == 302        # past the end: Django's ?e=1, as before


def test_a_short_queue_is_counted_exactly(lib_client, cycle, registry_user, offices):
    cohort(3, cycle, registry_user)
    response = lib_client.get(QUEUE)
    assert response.context["cl"].paginator.exact and response.context["cl"].result_count == 3


# --- waiting: pending with the stage open ---------------------------------------------------------

@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_waiting_is_pending_with_every_earlier_stage_cleared(client, make_reviewer, open_request, offices,
                                                            approval):
    cleared = open_request(factories.StudentFactory())
    for a in cleared.approvals.exclude(department__code="REG"):
        ClearanceApproval.objects.filter(pk=a.pk).update(status=A.WAIVED if a.department.code == "SPT" else A.APPROVED,
                                                         reason="Waived at the office", decided_at=a.waiting_since)
    blocked = open_request(factories.StudentFactory())            # its stage-1 items still pending
    rejected = open_request(factories.StudentFactory())
    for a in rejected.approvals.exclude(department__code="REG"):
        ClearanceApproval.objects.filter(pk=a.pk).update(status=A.APPROVED, decided_at=a.waiting_since)
    ClearanceApproval.objects.filter(request=rejected, department__code="LIB").update(
        status=A.REJECTED, reason="Book not returned")
    # written past the services: stored as every decision service stores it afterwards
    approvals_refresh_stage_open([cleared.pk, blocked.pk, rejected.pk])
    client.force_login(make_reviewer("REG"))
    assert listed(client, "?queue=waiting") == {approval(cleared, "REG").pk}
    assert listed(client, "?status__exact=pending") == {approval(r, "REG").pk for r in (cleared, blocked, rejected)}
    client.force_login(make_reviewer("LIB"))
    assert listed(client, "?queue=waiting") == {approval(blocked, "LIB").pk}    # stage 1: every pending item waits


# --- the cohort filter's choices ---------------------------------------------------------------------

def test_cohort_choices_are_every_distinct_year_newest_first(db):
    from core.selectors.clearance import cohort_years
    assert cohort_years() == []
    for year in (2025, 2027, 2025, 2026, 2027):
        factories.StudentFactory(expected_graduation_year=year)
    assert cohort_years() == [2027, 2026, 2025]
