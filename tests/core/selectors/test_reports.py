"""Every report of DESIGN.md "Reports" against a small world whose answers are known."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import permissions
from core.history import audit_context, save_tracked
from core.selectors.reports import REPORTS, ReportFilters, parse_filters, percentile
from tests import factories

from tests.reports_world import days_ago, world  # noqa: F401  (world is a fixture)


def rows(name, **raw):
    report = REPORTS[name]
    return list(report.rows(report.parse(raw)))


def test_every_report_of_the_design_is_registered():
    assert list(REPORTS) == ["graduation_list", "pending_by_department", "bottlenecks", "completion_rate",
                             "financial_summary", "gowns", "completed_but_now_held", "audit_trail"]
    for report in REPORTS.values():
        assert report.title and report.description and report.filters


def test_graduation_list_one_row_per_completed_request_with_each_office_decision(world):
    report = REPORTS["graduation_list"]
    header = report.header()
    assert header[:7] == ["Registration number", "Student", "School", "Programme", "Cohort", "Cycle", "Completed at"]
    assert header[7:] == [f"{c} decided" for c in ("FIN", "GOWN", "HOS", "LIB", "REG", "SCH", "SPT")]
    (row,) = rows("graduation_list")
    assert row[:6] == ("SCE/CS/0001/2022", "Ann Achieng", "SCE", "SCE-CS-BSC", 2026, "2026 graduation")
    assert row[6] == world["ra"].completed_at
    decided = dict(zip(header[7:], row[7:]))
    assert decided["FIN decided"] == days_ago(19)
    assert decided["LIB decided"] == days_ago(11)
    assert decided["HOS decided"] is None            # not a resident: no hostel item
    assert all(decided[f"{c} decided"] is not None for c in ("GOWN", "REG", "SCH", "SPT"))


@pytest.mark.parametrize("raw, count", [({}, 1), ({"cohort": "2026"}, 1), ({"cohort": "2027"}, 0),
                                        ({"school": "sce"}, 1), ({"school": "SPA"}, 0),
                                        ({"programme": "SCE-CS-BSC"}, 1)])
def test_graduation_list_filters(world, raw, count):
    assert len(rows("graduation_list", **raw)) == count


def test_graduation_list_filters_by_cycle(world):
    other = factories.ClearanceCycleFactory(name="2025 graduation")
    assert len(rows("graduation_list", cycle=world["cycle"].pk)) == 1
    assert rows("graduation_list", cycle=other.pk) == []


def test_pending_by_department_lists_waiting_items_with_days_and_overdue(world):
    result = rows("pending_by_department", department="LIB")
    assert [(r[0], r[1], r[8], r[9], r[10]) for r in result] == [
        ("LIB", "SCE/CS/0002/2022", 10, 7, "yes"),
        ("LIB", "SPA/EC/0003/2023", 3, 7, "no"),
    ]
    everything = rows("pending_by_department")
    # b: LIB SCH SPT GOWN REG (FIN rejected); c: those and HOS (FIN approved)
    assert len(everything) == 5 + 6
    assert {r[0] for r in everything} == {"GOWN", "HOS", "LIB", "REG", "SCH", "SPT"}
    assert len(rows("pending_by_department", school="SPA")) == 6


def test_pending_by_department_narrowed_to_a_reviewers_scope(world, make_reviewer):
    reviewer = make_reviewer("SPT")
    f = ReportFilters(scope=permissions.review_scope(reviewer).q("request__student"))
    result = list(REPORTS["pending_by_department"].rows(f))
    assert {r[0] for r in result} == {"SPT"} and len(result) == 2


def test_percentile_interpolates_between_ranks():
    assert percentile([], 50) is None
    assert percentile([4.0], 90) == 4.0
    assert percentile([1.0, 2.0, 6.0], 50) == 2.0
    assert percentile([1.0, 2.0, 6.0], 90) == pytest.approx(5.2)


def test_bottlenecks_per_office(world):
    by_code = {r[0]: r for r in rows("bottlenecks")}
    assert list(by_code) == ["FIN", "GOWN", "HOS", "LIB", "REG", "SCH", "SPT"]
    fin = by_code["FIN"]
    assert fin[3:8] == (0, 0, 3, 2.0, 5.2)           # pending, overdue, decided, median, p90
    lib = by_code["LIB"]
    assert lib[3:6] == (2, 1, 1)
    assert lib[6] == lib[7] == 4.0
    assert lib[8] == days_ago(10) and lib[9] == 10
    assert by_code["HOS"][3:6] == (1, 0, 0) and by_code["HOS"][6] is None
    (only,) = rows("bottlenecks", department="LIB", school="SPA")
    assert only[3:6] == (1, 0, 0)


def test_completion_rate_by_school_programme_cohort_with_total(world):
    assert rows("completion_rate") == [
        ("SCE", "SCE-CS-BSC", 2026, 2, 1, 50.0),
        ("SPA", "SPA-EC-BSC", 2027, 1, 0, 0.0),
        ("Total", "", None, 3, 1, 33.3),
    ]
    assert rows("completion_rate", school="SPA")[-1] == ("Total", "", None, 1, 0, 0.0)


def test_financial_summary_per_student_and_total(world):
    result = rows("financial_summary")
    assert [r[0] for r in result] == ["SCE/CS/0001/2022", "SCE/CS/0002/2022", "SPA/EC/0003/2023", "Total"]
    a, b, c, total = result
    assert a[5:] == (Decimal("0"), Decimal("5500"), "unpaid", 0, Decimal("0"), 1, Decimal("5500"), 0, Decimal("0"))
    assert b[5:] == (Decimal("12500"), Decimal("5500"), "unpaid", 1, Decimal("12500"), 0, Decimal("0"), 1,
                     Decimal("2000"))
    assert c[5] == Decimal("-300")
    assert total[5:] == (Decimal("12200"), Decimal("16500"), None, 1, Decimal("12500"), 1, Decimal("5500"), 1,
                         Decimal("2000"))
    assert [r[0] for r in rows("financial_summary", cohort="2027")] == ["SPA/EC/0003/2023", "Total"]


def test_gowns_out_and_deposits_held(world):
    result = rows("gowns")
    assert [(r[0], r[2], r[11], r[13]) for r in result] == [
        ("G-1", "SCE/CS/0001/2022", "held", "yes"),        # out, return date passed
        ("G-3", "SPA/EC/0003/2023", "held", "no"),         # returned, deposit not refunded yet
    ]
    assert [r[0] for r in rows("gowns", school="SPA")] == ["G-3"]


def test_completed_but_now_held_reuses_the_rule_4_selector(world):
    (row,) = rows("completed_but_now_held")
    assert row[0] == "SCE/CS/0001/2022" and row[5] == "2026 graduation"
    assert row[7:10] == ("LIB", '=HYPERLINK("x")', Decimal("1500"))     # neutralised by the writers, not here
    assert rows("completed_but_now_held", school="SPA") == []


def test_audit_trail_diffs_each_object_against_its_previous_record(world, registry_user):
    a = world["a"]
    with audit_context(ip="10.0.0.7"):
        a.first_name = "Anne"
        save_tracked(a, user=registry_user, reason="Name corrected")
    today = timezone.localdate().isoformat()
    trail = rows("audit_trail", since=today, until=today)
    mine = [r for r in trail if r[4] == "Student" and r[5] == a.pk and r[6] == "changed"]
    assert [r[7:] for r in mine] == [("first_name", "Ann", "Anne")]
    when, who, ip, reason = mine[0][:4]
    assert (who, ip, reason) == ("registry@clearance.test", "10.0.0.7", "Name corrected")
    created = [r for r in trail if r[4] == "Student" and r[5] == a.pk and r[6] == "created"]
    assert len(created) == 1
    assert {r[4] for r in trail} >= {"ClearanceApproval", "ClearanceRequest", "Hold", "Payment", "GownIssuance"}
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
    assert rows("audit_trail", since=tomorrow) == []


def test_audit_trail_since_keeps_the_diff_against_a_record_before_the_range(world, registry_user):
    from core.models import Student
    a = world["a"]
    Student.history.filter(id=a.pk).update(history_date=days_ago(5))    # created five days ago
    a.last_name = "Akinyi"
    save_tracked(a, user=registry_user, reason="")
    since = (timezone.localdate() - datetime.timedelta(days=1)).isoformat()
    mine = [r for r in rows("audit_trail", since=since) if r[4] == "Student" and r[5] == a.pk]
    assert [r[6:] for r in mine] == [("changed", "last_name", "Achieng", "Akinyi")]


@pytest.mark.parametrize("raw, field, message", [
    ({"cycle": "abc"}, "cycle", "no clearance cycle has the id 'abc'"),
    ({"cycle": "999999"}, "cycle", "no clearance cycle has the id '999999'"),
    ({"cohort": "20x6"}, "cohort", "'20x6' is not a year such as 2026"),
    ({"school": "NOPE"}, "school", "no school has the code 'NOPE'"),
    ({"department": "XYZ"}, "department", "no department has the code 'XYZ'"),
    ({"since": "2026-02-30"}, "since", "'2026-02-30' is not a date written YYYY-MM-DD"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "until", "the last day is before the first"),
])
def test_bad_filter_values_are_named(world, raw, field, message):
    with pytest.raises(ValidationError) as exc:
        parse_filters(raw)
    assert exc.value.message_dict == {field: [message]}


def test_a_filter_the_report_does_not_take_is_refused(world):
    with pytest.raises(ValidationError) as exc:
        REPORTS["audit_trail"].parse({"school": "SCE"})
    assert exc.value.message_dict == {"school": ["this report does not take a school filter"]}


@pytest.mark.parametrize("name", list(REPORTS))
def test_queries_do_not_grow_with_rows(world, name, open_request, complete_request):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            list(REPORTS[name].rows())
        return len(ctx.captured_queries)
    before = count()
    for i in range(3):
        s = factories.student_with_reg(f"SCE/CS/01{i:02d}/2022")
        factories.FinanceRecordFactory(student=s)
        factories.GownIssuanceFactory(student=s)
        complete_request(open_request(s))
        factories.HoldFactory(department=world["offices"]["LIB"], student=s)
    assert count() == before
