"""core.selectors.registry: the cohort-opening preview and the dashboard figures, with known answers."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.models import ClearanceRequest
from core.selectors.registry import cohort_open_preview
from core.services.requests import request_revoke, requests_open_for_cohort
from tests import factories


def _cohort(n, year=2026, **fields):
    return factories.StudentFactory.create_batch(n, expected_graduation_year=year, **fields)


def test_preview_classifies_like_the_service_opens(offices, cycle, open_request, registry_user):
    students = _cohort(6)
    _cohort(2, year=2027)
    open_request(students[0])
    twice = open_request(students[1])
    request_revoke(request=twice, acting_user=registry_user, reason="Withdrew")
    request_revoke(request=open_request(students[2]), acting_user=registry_user, reason="Transferred")
    reopened = open_request(students[1])  # revoked, then opened again: open now
    assert reopened.status != ClearanceRequest.Status.REVOKED

    preview = cohort_open_preview(cycle=cycle, graduation_year=2026)
    assert (preview.students, preview.already_open, preview.after_revoked, preview.new) == (6, 2, 1, 3)
    assert preview.to_open == 4
    result = requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=2026)
    assert (result.created_count, result.after_revoked, result.already_open) == (4, 1, 2)
    assert cohort_open_preview(cycle=cycle, graduation_year=2026).to_open == 0


def test_preview_of_another_cycle_ignores_this_one(offices, cycle, open_request):
    students = _cohort(2)
    open_request(students[0])
    other = factories.ClearanceCycleFactory(name="2026 supplementary")
    preview = cohort_open_preview(cycle=other, graduation_year=2026)
    assert (preview.already_open, preview.after_revoked, preview.new) == (0, 0, 2)


def test_preview_narrowed_and_refused_without_a_selection(offices, cycle):
    _cohort(2)
    spa = _cohort(3, school=factories.SchoolFactory(code="SPA"))
    assert cohort_open_preview(cycle=cycle, graduation_year=2026, school=spa[0].school).new == 3
    assert cohort_open_preview(cycle=cycle, student_ids=[spa[0].pk]).new == 1
    with pytest.raises(ValidationError, match="Choose a cohort"):
        cohort_open_preview(cycle=cycle)


def test_preview_is_one_query(offices, cycle, django_assert_num_queries):
    _cohort(5)
    with django_assert_num_queries(1):
        cohort_open_preview(cycle=cycle, graduation_year=2026)


# --- dashboard figures ------------------------------------------------------------------------------

import datetime  # noqa: E402

from django.utils import timezone  # noqa: E402

from core.models import ClearanceApproval  # noqa: E402
from core.selectors.registry import (completion_by_school, completions_over_time,  # noqa: E402
                                     median_days_to_decision, registry_overview)

R = ClearanceRequest.Status


def test_completions_over_time_per_day_with_zero_days(offices, cycle, open_request, complete_request):
    done = [complete_request(open_request(s)) for s in _cohort(3)]
    today = timezone.localdate()
    at = lambda d: timezone.make_aware(datetime.datetime.combine(d, datetime.time(12)))  # noqa: E731
    ClearanceRequest.objects.filter(pk=done[0].pk).update(completed_at=at(cycle.opens_on))
    ClearanceRequest.objects.filter(pk__in=[done[1].pk, done[2].pk]).update(completed_at=at(today))
    figures = completions_over_time([cycle], today=today)
    assert figures["unit"] == "day"
    assert figures["labels"][0] == cycle.opens_on.isoformat() and figures["labels"][-1] == today.isoformat()
    assert figures["counts"][0] == 1 and figures["counts"][-1] == 2 and sum(figures["counts"]) == 3


def test_completions_over_time_by_week_for_a_long_cycle(offices, open_request, complete_request):
    today = timezone.localdate()
    long = factories.ClearanceCycleFactory(name="Long", opens_on=today - datetime.timedelta(days=100),
                                           closes_on=today + datetime.timedelta(days=10))
    figures = completions_over_time([long], today=today)
    assert figures["unit"] == "week" and len(figures["counts"]) in (15, 16) and sum(figures["counts"]) == 0
    assert all(datetime.date.fromisoformat(d).weekday() == 0 for d in figures["labels"])


def test_completion_by_school(offices, cycle, open_request, complete_request, registry_user):
    sce = _cohort(3)
    spa = _cohort(2, school=factories.SchoolFactory(code="SPA"))
    complete_request(open_request(sce[0]))
    open_request(sce[1])
    request_revoke(request=open_request(sce[2]), acting_user=registry_user, reason="Withdrew")
    complete_request(open_request(spa[0]))
    complete_request(open_request(spa[1]))
    rows = {r["code"]: r for r in completion_by_school([cycle.pk])}
    assert (rows["SCE"]["total"], rows["SCE"]["completed"], rows["SCE"]["waiting"], rows["SCE"]["rate"]) == (2, 1, 1, 50.0)
    assert (rows["SPA"]["total"], rows["SPA"]["completed"], rows["SPA"]["rate"]) == (2, 2, 100.0)


def test_median_days_to_decision_per_office(offices, cycle, open_request, complete_request):
    requests = [open_request(s) for s in _cohort(4)]
    now = timezone.now()
    for request, days in zip(requests, [1, 3, 10, None]):  # the fourth is still pending at LIB
        lib = request.approvals.get(department__code="LIB")
        if days is None:
            continue
        ClearanceApproval.objects.filter(pk=lib.pk).update(
            status=ClearanceApproval.Status.APPROVED, waiting_since=now - datetime.timedelta(days=days),
            decided_at=now)
    for request, days in zip(requests[:2], [2, 5]):
        ClearanceApproval.objects.filter(request=request, department__code="SPT").update(
            status=ClearanceApproval.Status.REJECTED, waiting_since=now - datetime.timedelta(days=days),
            decided_at=now, reason="x")
    medians = median_days_to_decision([cycle.pk])
    assert medians[offices["LIB"].pk] == 3.0      # 1, 3, 10 → 3
    assert medians[offices["SPT"].pk] == 3.5      # 2, 5 → 3.5
    assert offices["SCH"].pk not in medians       # nothing decided


def test_registry_overview_runs_a_bounded_number_of_queries(offices, cycle, open_request, complete_request,
                                                            django_assert_max_num_queries):
    for s in _cohort(2):
        complete_request(open_request(s))
    with django_assert_max_num_queries(12) as few:
        registry_overview()
    bound = len(few.captured_queries)
    for s in _cohort(20, school=factories.SchoolFactory(code="SPA")):
        complete_request(open_request(s))
    with django_assert_max_num_queries(bound):
        overview = registry_overview()
    assert sum(overview["over_time"]["counts"]) == 22
