"""The registry's reports (DESIGN.md "Reports"), each a name in `REPORTS` with its title, what it
shows, its columns, the filters it takes and `rows(filters)`: an iterator of plain tuples read in
chunks (`values_list(...).iterator(chunk_size=…)`), a fixed number of queries whatever the number
of rows, so a 100,000-row export streams with flat memory. The writers in core/exports and the
`export_report` command, the report pages and the benchmarks all read these and nothing else.

Filters are parsed once by `parse_filters` (a message per bad value, never a traceback); `scope`
narrows approvals to what a reviewer may see (core.permissions.ReviewScope.q) and is set by the
staff site only, never from input.
"""
from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.dateparse import parse_date

from ..sql.reports import graduation_list_rows
from ..models import (ClearanceApproval, ClearanceCycle, ClearanceRequest, Department, FinanceRecord,
                      Hold, Payment, Programme, School, Student)
from .clearance import completed_but_now_held
from .gowns import gowns_out_or_deposit_held
from .staff import approvals_overdue

CHUNK = 2000
R = ClearanceRequest.Status
A = ClearanceApproval.Status
FINANCE_CODE = "FIN"

# --- columns and filters ----------------------------------------------------------------------

TEXT, INT, MONEY, DATE, DATETIME, DAYS, PERCENT = "text", "int", "money", "date", "datetime", "days", "percent"


@dataclass(frozen=True)
class Column:
    label: str
    kind: str = TEXT        # how the writers format it (core/exports)
    width: int = 14         # characters, for the xlsx column


FILTER_NAMES = ("cycle", "cohort", "school", "programme", "department", "since", "until")
FILTER_HELP = {
    "cycle": "a clearance cycle's id",
    "cohort": "expected graduation year, e.g. 2026",
    "school": "a school's code, e.g. SCE",
    "programme": "a programme's code",
    "department": "an office's code, e.g. LIB",
    "since": "first day, YYYY-MM-DD",
    "until": "last day, YYYY-MM-DD",
}


@dataclass(frozen=True)
class ReportFilters:
    cycle: int | None = None
    cohort: int | None = None
    school: str | None = None
    programme: str | None = None
    department: str | None = None
    since: datetime.date | None = None
    until: datetime.date | None = None
    cycle_name: str = ""
    # approvals a reviewer may see (ReviewScope.q("request__student")); set by the staff site only
    scope: Q | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        """What was asked for, as JSON-able text (the export log, the title row)."""
        return {name: str(getattr(self, name)) for name in FILTER_NAMES if getattr(self, name) is not None}

    def describe(self) -> str:
        parts = []
        for name, value in self.as_dict().items():
            if name == "cycle" and self.cycle_name:
                value = f"{self.cycle_name} (#{value})"
            parts.append(f"{name} {value}")
        if self.scope is not None:
            parts.append("your offices only")
        return ", ".join(parts) or "no filters (everything)"


def parse_filters(raw: Mapping[str, object], *, accepted=FILTER_NAMES) -> ReportFilters:
    """Filters from text (a command line, a query string): each value checked against the
    database; every bad one is named in the ValidationError (a dict: filter → message). A filter
    the report does not take is refused too."""
    errors, out = {}, {}
    for name, value in raw.items():
        if value in (None, ""):
            continue
        if name not in FILTER_NAMES:
            errors[name] = f"there is no filter called {name}"
            continue
        if name not in accepted:
            errors[name] = f"this report does not take a {name} filter"
            continue
        text = str(value).strip()
        if name == "cycle":
            cycle = ClearanceCycle.objects.filter(pk=int(text)).only("pk", "name").first() \
                if text.isascii() and text.isdigit() and len(text) < 10 else None
            if cycle is None:
                errors[name] = f"no clearance cycle has the id {text!r}"
            else:
                out["cycle"], out["cycle_name"] = cycle.pk, cycle.name
        elif name == "cohort":
            if not (text.isascii() and text.isdigit() and len(text) == 4):
                errors[name] = f"{text!r} is not a year such as 2026"
            else:
                out["cohort"] = int(text)
        elif name in ("school", "programme", "department"):
            model = {"school": School, "programme": Programme, "department": Department}[name]
            code = model.objects.filter(code__iexact=text).values_list("code", flat=True).first() \
                if len(text) <= 20 else None
            if code is None:
                errors[name] = f"no {model._meta.verbose_name} has the code {text!r}"
            else:
                out[name] = code
        else:
            day = None
            try:
                day = parse_date(text)
            except ValueError:
                pass
            if day is None:
                errors[name] = f"{text!r} is not a date written YYYY-MM-DD"
            else:
                out[name] = day
    if not errors and out.get("since") and out.get("until") and out["since"] > out["until"]:
        errors["until"] = "the last day is before the first"
    if errors:
        raise ValidationError({name: [message] for name, message in errors.items()})
    return ReportFilters(**out)


def _student_q(f: ReportFilters, student: str) -> Q:
    """Cohort, school and programme on the student at `student` ("" for the Student itself)."""
    at = f"{student}__" if student else ""
    q = Q()
    if f.cohort is not None:
        q &= Q(**{f"{at}expected_graduation_year": f.cohort})
    if f.school:
        q &= Q(**{f"{at}school__code": f.school})
    if f.programme:
        q &= Q(**{f"{at}programme__code": f.programme})
    return q


def _cycle_q(f: ReportFilters, cycle: str) -> Q:
    return Q(**{cycle: f.cycle}) if f.cycle is not None else Q()


def _name(first, last) -> str:
    return f"{first} {last}".strip()


def _offices(f: ReportFilters | None = None):
    qs = Department.objects.order_by("stage", "code")
    if f is not None and f.department:
        qs = qs.filter(code=f.department)
    return list(qs.only("pk", "code", "name", "sla_days"))


# --- the report registry ----------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    filters: tuple[str, ...]
    _columns: Callable[[ReportFilters], list[Column]]
    _rows: Callable[[ReportFilters], Iterator[tuple]]
    # the same rows with every moment already written as the csv shows it (local time text), for a
    # report whose database can do it; None: `rows`
    _csv_rows: Callable[[ReportFilters], Iterator[tuple]] | None = None

    def columns(self, filters: ReportFilters | None = None) -> list[Column]:
        return self._columns(filters or ReportFilters())

    def header(self, filters: ReportFilters | None = None) -> list[str]:
        return [c.label for c in self.columns(filters)]

    def rows(self, filters: ReportFilters | None = None) -> Iterator[tuple]:
        return self._rows(filters or ReportFilters())

    @property
    def csv_moments_as_text(self) -> bool:
        """Whether `rows_for_csv` gives every moment as text."""
        return self._csv_rows is not None

    def rows_for_csv(self, filters: ReportFilters | None = None) -> Iterator[tuple]:
        """`rows`, where a report can with each moment as the text the csv shows ("YYYY-MM-DD
        HH:MM:SS", local time; `csv_moments_as_text`), for core.exports.csv_chunks."""
        return (self._csv_rows or self._rows)(filters or ReportFilters())

    def parse(self, raw: Mapping[str, object]) -> ReportFilters:
        return parse_filters(raw, accepted=self.filters)


REPORTS: dict[str, Report] = {}


def report(name, title, description, filters, columns, *, csv_rows=None):
    def register(rows):
        cols = columns if callable(columns) else (lambda f, _c=list(columns): _c)
        REPORTS[name] = Report(name, title, description, tuple(filters), cols, rows, csv_rows)
        return rows
    return register


STUDENT_COLUMNS = [Column("Registration number", width=20), Column("Student", width=26), Column("School", width=8),
                   Column("Programme", width=14), Column("Cohort", INT, 8)]
STUDENT_FIELDS = ("registration_number", "first_name", "last_name", "school__code", "programme__code",
                  "expected_graduation_year")


def _student_fields(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}__{name}" for name in STUDENT_FIELDS)


def _student_cells(values) -> tuple:
    reg, first, last, school, programme, cohort = values
    return reg, _name(first, last), school, programme, cohort


# graduation list --------------------------------------------------------------------------------

def _graduation_columns(f):
    return [*STUDENT_COLUMNS, Column("Cycle", width=18), Column("Completed at", DATETIME, 17),
            *[Column(f"{d.code} decided", DATETIME, 17) for d in _offices()]]


def _graduation_rows(f: ReportFilters, *, as_text: bool) -> Iterator[tuple]:
    """The graduation list's rows; `as_text`: each moment as the local time text the csv shows
    ("YYYY-MM-DD HH:MM:SS"), else an aware datetime."""
    # the csv is written whole, by a writer that touches no database: the query may read ahead
    return graduation_list_rows(office_ids=[d.pk for d in _offices()], status=R.COMPLETED, cycle=f.cycle,
                                cohort=f.cohort, school=f.school, programme=f.programme,
                                zone=timezone.get_current_timezone() if as_text else None, chunk=CHUNK,
                                read_ahead=as_text)


@report("graduation_list", "Graduation list",
        "Completed clearance requests, one row per student, with the date each office decided.",
        ("cycle", "cohort", "school", "programme"), _graduation_columns,
        csv_rows=lambda f: _graduation_rows(f, as_text=True))
def graduation_list(f: ReportFilters) -> Iterator[tuple]:
    return _graduation_rows(f, as_text=False)


# pending by department --------------------------------------------------------------------------

@report("pending_by_department", "Pending by office",
        "Every item still waiting for an office's decision, oldest first, with days waiting and "
        "whether it is past the office's SLA.",
        ("department", "cycle", "cohort", "school", "programme"),
        [Column("Office", width=8), *STUDENT_COLUMNS, Column("Cycle", width=18),
         Column("Waiting since", DATETIME, 17), Column("Days waiting", INT, 8), Column("SLA days", INT, 8),
         Column("Overdue", width=8)])
def pending_by_department(f: ReportFilters, *, now=None) -> Iterator[tuple]:
    now = now or timezone.now()
    qs = (ClearanceApproval.objects.filter(status=A.PENDING).exclude(request__status=R.REVOKED)
          .filter(_cycle_q(f, "request__cycle_id"), _student_q(f, "request__student")))
    if f.department:
        qs = qs.filter(department__code=f.department)
    if f.scope is not None:
        qs = qs.filter(f.scope)
    qs = (qs.order_by("department__stage", "department__code", "waiting_since", "pk")
          .values_list("department__code", *_student_fields("request__student"), "request__cycle__name",
                       "waiting_since", "department__sla_days"))
    for code, *student, cycle, since, sla in qs.iterator(chunk_size=CHUNK):
        days = max((now - since).days, 0)        # ClearanceApproval.days_waiting / is_overdue
        yield (code, *_student_cells(student), cycle, since, days, sla, "yes" if days > sla else "no")


# bottlenecks ------------------------------------------------------------------------------------

def percentile(ordered: list[float], p: float) -> float | None:
    """The p-th percentile (0–100) of sorted values, interpolated between the closest ranks (as
    PostgreSQL's percentile_cont); None for no values."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@report("bottlenecks", "Bottlenecks",
        "Per office: items pending, overdue (waiting longer than its SLA), median and 90th-percentile "
        "days from waiting to decision, and the oldest item waiting.",
        ("cycle", "cohort", "school", "programme", "department"),
        [Column("Office", width=8), Column("Name", width=20), Column("SLA days", INT, 8), Column("Pending", INT, 9),
         Column("Overdue", INT, 9), Column("Decided", INT, 9), Column("Median days to decision", DAYS, 12),
         Column("90th percentile days", DAYS, 12), Column("Oldest waiting since", DATETIME, 17),
         Column("Oldest days waiting", INT, 10)])
def bottlenecks(f: ReportFilters, *, now=None) -> Iterator[tuple]:
    now = now or timezone.now()
    base = (ClearanceApproval.objects.exclude(request__status=R.REVOKED)
            .filter(_cycle_q(f, "request__cycle_id"), _student_q(f, "request__student")))
    if f.department:
        base = base.filter(department__code=f.department)
    pending = {d: (n, oldest) for d, n, oldest in base.filter(status=A.PENDING).order_by()
               .values_list("department_id").annotate(n=Count("pk"), oldest=Min("waiting_since"))}
    overdue = dict(approvals_overdue(base, now=now).order_by().values_list("department_id").annotate(n=Count("pk")))
    durations: dict[int, list[float]] = {}
    decided = (base.exclude(status=A.PENDING).filter(decided_at__isnull=False).order_by("department_id")
               .values_list("department_id", "waiting_since", "decided_at"))
    for department_id, group in itertools.groupby(decided.iterator(chunk_size=CHUNK), key=lambda r: r[0]):
        durations[department_id] = sorted(max((d - w).total_seconds(), 0) / 86400 for _, w, d in group)
    for d in _offices(f):
        n, oldest = pending.get(d.pk, (0, None))
        days = durations.get(d.pk, [])
        median, p90 = percentile(days, 50), percentile(days, 90)
        yield (d.code, d.name, d.sla_days, n, overdue.get(d.pk, 0), len(days),
               None if median is None else round(median, 1), None if p90 is None else round(p90, 1),
               oldest, max((now - oldest).days, 0) if oldest else None)


# completion rate --------------------------------------------------------------------------------

@report("completion_rate", "Completion rate",
        "Requests (not revoked) and completed ones by school, programme and cohort, with the rate; the last "
        "row is the total.",
        ("cycle", "cohort", "school", "programme"),
        [Column("School", width=8), Column("Programme", width=14), Column("Cohort", INT, 8),
         Column("Requests", INT, 10), Column("Completed", INT, 10), Column("Completion %", PERCENT, 12)])
def completion_rate(f: ReportFilters) -> Iterator[tuple]:
    qs = (ClearanceRequest.objects.exclude(status=R.REVOKED).filter(_cycle_q(f, "cycle_id"), _student_q(f, "student"))
          .order_by().values_list("student__school__code", "student__programme__code",
                                  "student__expected_graduation_year")
          .annotate(n=Count("pk"), done=Count("pk", filter=Q(status=R.COMPLETED)))
          .order_by("student__school__code", "student__programme__code", "student__expected_graduation_year"))
    total = done_total = 0
    for school, programme, cohort, n, done in qs.iterator(chunk_size=CHUNK):
        total, done_total = total + n, done_total + done
        yield school, programme, cohort, n, done, round(100 * done / n, 1)
    yield "Total", "", None, total, done_total, round(100 * done_total / total, 1) if total else 0.0


# financial summary ------------------------------------------------------------------------------

def _sum_of(queryset, column):
    return Subquery(queryset.order_by().values("student_id").annotate(s=Sum(column)).values("s")[:1])


def _count_of(queryset):
    return Subquery(queryset.order_by().values("student_id").annotate(n=Count("pk")).values("n")[:1])


@report("financial_summary", "Financial summary",
        "Per student with a finance record, a payment or a finance hold: the balance owed (negative is a "
        "credit), the graduation fee, active finance holds and payments verified and not yet verified; "
        "the last row is the total.",
        ("cohort", "school", "programme"),
        [*STUDENT_COLUMNS, Column("Tuition balance", MONEY, 14), Column("Graduation fee", MONEY, 12),
         Column("Fee status", width=10), Column("Finance holds", INT, 8), Column("Held amount", MONEY, 14),
         Column("Payments verified", INT, 9), Column("Verified amount", MONEY, 14),
         Column("Payments unverified", INT, 9), Column("Unverified amount", MONEY, 14)])
def financial_summary(f: ReportFilters) -> Iterator[tuple]:

    holds = Hold.objects.filter(student_id=OuterRef("pk"), department__code=FINANCE_CODE, status=Hold.Status.ACTIVE)
    payments = Payment.objects.filter(student_id=OuterRef("pk"))
    verified, unverified = payments.filter(verified_at__isnull=False), payments.filter(verified_at__isnull=True)
    qs = (Student.objects.filter(_student_q(f, ""))
          .filter(Exists(FinanceRecord.objects.filter(student_id=OuterRef("pk"))) | Exists(payments) | Exists(holds))
          .annotate(n_holds=_count_of(holds), held=_sum_of(holds, "amount"),
                    n_verified=_count_of(verified), verified=_sum_of(verified, "amount"),
                    n_unverified=_count_of(unverified), unverified=_sum_of(unverified, "amount"))
          .order_by("registration_number")
          .values_list(*STUDENT_FIELDS, "finance_record__tuition_balance", "finance_record__graduation_fee",
                       "finance_record__graduation_fee_status", "n_holds", "held", "n_verified", "verified",
                       "n_unverified", "unverified"))
    zero = Decimal("0")
    totals = [zero, zero, None, 0, zero, 0, zero, 0, zero]
    for row in qs.iterator(chunk_size=CHUNK):
        figures = [row[6], row[7], row[8], row[9] or 0, row[10] or zero, row[11] or 0, row[12] or zero,
                   row[13] or 0, row[14] or zero]
        for i, value in enumerate(figures):
            if i != 2 and value is not None:
                totals[i] += value
        yield (*_student_cells(row[:6]), *figures)
    yield ("Total", "", "", "", None, *totals)


# gowns ------------------------------------------------------------------------------------------

@report("gowns", "Gowns out and deposits held",
        "Every gown not returned yet and every deposit still held, with whether the return is overdue.",
        ("cohort", "school", "programme"),
        [Column("Gown", width=10), Column("Size", width=6), *STUDENT_COLUMNS, Column("Issued at", DATETIME, 17),
         Column("Return by", DATE, 11), Column("Returned at", DATETIME, 17), Column("Deposit", MONEY, 11),
         Column("Deposit status", width=13), Column("Refunded", MONEY, 11), Column("Return overdue", width=8)])
def gowns(f: ReportFilters, *, today=None) -> Iterator[tuple]:
    today = today or timezone.localdate()
    # the same gowns as the gown store's lists (core/selectors/gowns.py)
    qs = (gowns_out_or_deposit_held().filter(_student_q(f, "student")).order_by("issued_at", "pk")
          .values_list("gown_code", "size", *_student_fields("student"), "issued_at", "expected_return_on",
                       "returned_at", "deposit", "deposit_status", "refunded_amount"))
    for code, size, *rest in qs.iterator(chunk_size=CHUNK):
        issued, due, returned, deposit, status, refunded = rest[6:]
        # GownIssuance.is_overdue's rule, on plain values
        yield (code, size, *_student_cells(rest[:6]), issued, due, returned, deposit, status, refunded,
               "yes" if returned is None and due < today else "no")


# completed but now held -------------------------------------------------------------------------

@report("completed_but_now_held", "Completed but now held",
        "Completed clearances whose student has an active hold now (rule 4): one row per hold; the "
        "registry decides whether to revoke.",
        ("cycle", "cohort", "school", "programme"),
        [*STUDENT_COLUMNS, Column("Cycle", width=18), Column("Completed at", DATETIME, 17),
         Column("Office", width=8), Column("Hold reason", width=30), Column("Amount", MONEY, 12),
         Column("Placed at", DATETIME, 17)])
def completed_but_now_held_rows(f: ReportFilters) -> Iterator[tuple]:
    requests = completed_but_now_held().filter(_cycle_q(f, "cycle_id"), _student_q(f, "student"))
    holds: dict[int, list[tuple]] = {}
    for student_id, *hold in (Hold.objects.filter(status=Hold.Status.ACTIVE,
                                                  student_id__in=requests.values("student_id"))
                              .order_by("student_id", "placed_at", "pk")
                              .values_list("student_id", "department__code", "reason", "amount", "placed_at")):
        holds.setdefault(student_id, []).append(tuple(hold))
    qs = (requests.order_by("student__registration_number", "pk")
          .values_list("student_id", *_student_fields("student"), "cycle__name", "completed_at"))
    for student_id, *rest in qs.iterator(chunk_size=CHUNK):
        for hold in holds.get(student_id, []):
            yield (*_student_cells(rest[:6]), *rest[6:], *hold)


# audit trail ------------------------------------------------------------------------------------

NOT_DIFFED = {"updated_at"}     # moves with every save; says nothing a reader needs
CHANGE_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


def history_models():
    """Every domain model with simple-history, in a fixed order."""
    return sorted((m for m in apps.get_app_config("core").get_models()
                   if getattr(m, "history", None) is not None and not m.__name__.startswith("Historical")),
                  key=lambda m: m.__name__)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value).replace(tzinfo=None)
    return str(value)


@report("audit_trail", "Audit trail",
        "Every historical record of every domain model in the date range: when, who, from which IP, "
        "why, and each field that changed with its old and new value (by model, then object, then time).",
        ("since", "until"),
        [Column("When", DATETIME, 17), Column("Who", width=26), Column("IP address", width=15),
         Column("Reason", width=30), Column("Model", width=18), Column("Object", INT, 9), Column("Change", width=8),
         Column("Field", width=18), Column("Old", width=24), Column("New", width=24)])
def audit_trail(f: ReportFilters) -> Iterator[tuple]:
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(f.since, datetime.time.min, tz) if f.since else None
    end = datetime.datetime.combine(f.until + datetime.timedelta(days=1), datetime.time.min, tz) if f.until else None
    for model in history_models():
        historical = model.history.model
        fields = [fl.attname for fl in historical.tracked_fields if fl.attname not in NOT_DIFFED]
        pk = model._meta.pk.attname
        in_range = historical.objects.all()
        if start:
            in_range = in_range.filter(history_date__gte=start)
        if end:
            in_range = in_range.filter(history_date__lt=end)
        # the objects changed in the range, each with its earlier records too (the diff needs the one before)
        qs = historical.objects.filter(**{f"{pk}__in": in_range.values(pk)})
        if end:
            qs = qs.filter(history_date__lt=end)
        qs = (qs.order_by(pk, "history_date", "history_id")
              .values_list(pk, "history_date", "history_type", "history_user__email", "ip_address",
                           "history_change_reason", *fields))
        previous = None
        for record in qs.iterator(chunk_size=CHUNK):
            object_id, when, kind, who, ip, reason, *values = record
            before = previous[6:] if previous is not None and previous[0] == object_id else None
            previous = record
            if start and when < start:
                continue
            head = (when, who or "", ip or "", reason or "", model.__name__, object_id, CHANGE_TYPES.get(kind, kind))
            if kind != "~" or before is None:
                yield (*head, "", "", "")
                continue
            changed = [(name, old, new) for name, old, new in zip(fields, before, values) if old != new]
            if not changed:
                yield (*head, "", "", "")
            for name, old, new in changed:
                yield (*head, name, _text(old), _text(new))
