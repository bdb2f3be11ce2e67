"""List filters shared by the sites: a student's school, programme and cohort, reached through
whatever path leads from the listed model to its student."""
from __future__ import annotations

from unfold.contrib.filters.admin import DropdownFilter

from core.models import Programme, School, Student


MAX_ID_DIGITS = 18      # below 2**63: an id any database column can hold


def parse_id(value) -> int | None:
    """An id from a URL or form value: ASCII digits only ("²" passes str.isdigit() and then fails
    int()), short enough for a database integer; None for anything else."""
    value = str(value or "")
    if value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS:
        return int(value)
    return None


class _StudentFilter(DropdownFilter):
    student_path = ""  # "" when the list is of students, "student" or "request__student" otherwise
    field = ""

    def lookup_choices(self):
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return self.lookup_choices()

    def queryset(self, request, queryset):
        value = parse_id(self.value())
        if value is None:
            return queryset
        path = f"{self.student_path}__{self.field}" if self.student_path else self.field
        return queryset.filter(**{path: value})


class _School(_StudentFilter):
    title, parameter_name, field = "school", "school", "school_id"

    def lookup_choices(self):
        return [(str(s.pk), str(s)) for s in School.objects.order_by("code")]


class _Programme(_StudentFilter):
    title, parameter_name, field = "programme", "programme", "programme_id"

    def lookup_choices(self):
        return [(str(p.pk), f"{p.code} — {p.name}") for p in Programme.objects.order_by("code")]


class _Cohort(_StudentFilter):
    title, parameter_name, field = "cohort", "cohort", "expected_graduation_year"

    def lookup_choices(self):
        years = (Student.objects.order_by("-expected_graduation_year")
                 .values_list("expected_graduation_year", flat=True).distinct())
        return [(str(y), str(y)) for y in years]


def student_filters(student_path: str = ""):
    """(SchoolFilter, ProgrammeFilter, CohortFilter) for a list whose rows reach a student by
    `student_path` (e.g. "request__student"); URL parameters ?school=, ?programme=, ?cohort=."""
    return tuple(type(f"{base.__name__.strip('_')}Filter", (base,), {"student_path": student_path})
                 for base in (_School, _Programme, _Cohort))
