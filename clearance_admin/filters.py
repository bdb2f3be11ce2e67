"""List filters shared by the sites: a student's school, programme and cohort, reached through
whatever path leads from the listed model to its student; the rows a balance import wrote."""
from __future__ import annotations

from django.contrib import admin
from unfold.contrib.filters.admin import DropdownFilter

from core.models import Programme, School
from core.selectors.clearance import cohort_years


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
        return [(str(y), str(y)) for y in cohort_years()]


def student_filters(student_path: str = ""):
    """(SchoolFilter, ProgrammeFilter, CohortFilter) for a list whose rows reach a student by
    `student_path` (e.g. "request__student"); URL parameters ?school=, ?programme=, ?cohort=."""
    return tuple(type(f"{base.__name__.strip('_')}Filter", (base,), {"student_path": student_path})
                 for base in (_School, _Programme, _Cohort))


class WrittenByImportFilter(admin.SimpleListFilter):
    """The rows a balance import wrote, from their history: `?import=<id>-<what>`, where `what` is
    one of `kinds` (e.g. placed, updated, released). Offered only when asked for (the links on an
    import's page), then shown in the filters with what it is."""

    title = "written by a balance import"
    parameter_name = "import"
    kinds: dict[str, str] = {}

    def parsed(self):
        number, _, kind = (self.value() or "").partition("-")
        pk = parse_id(number)
        return (pk, kind) if pk is not None and kind in self.kinds else (None, None)

    def lookups(self, request, model_admin):
        pk, kind = self.parsed()
        if self.value() is None:
            return []
        # a value no link makes is still a filter (of nothing), never dropped to show everything
        return [(self.value(), f"Balance import #{pk}: {self.kinds[kind]}" if pk else "no such import")]

    def queryset(self, request, queryset):
        pk, kind = self.parsed()
        if pk is None:
            return queryset if self.value() is None else queryset.none()
        return queryset.filter(pk__in=self.history_ids(pk, kind))

    def history_ids(self, pk, kind):
        raise NotImplementedError


class HoldsOfImportFilter(WrittenByImportFilter):
    kinds = {"placed": "holds placed", "updated": "holds changed", "released": "holds released"}

    def history_ids(self, pk, kind):
        from core.models import Hold
        rows = Hold.history.model.objects.filter(balance_import_id=pk, released_for_payment_id__isnull=True)
        if kind == "placed":
            rows = rows.filter(history_type="+")
        else:
            rows = rows.filter(history_type="~", status=Hold.Status.ACTIVE if kind == "updated" else Hold.Status.RELEASED)
        return rows.values("id")


class ApprovalsOfImportFilter(WrittenByImportFilter):
    kinds = {"approved": "finance items approved", "rejected": "finance items rejected"}

    def history_ids(self, pk, kind):
        from core.models import ClearanceApproval
        return ClearanceApproval.history.model.objects.filter(decided_by_import_id=pk, history_type="~",
                                                              status=kind).values("id")
