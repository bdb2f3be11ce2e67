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
