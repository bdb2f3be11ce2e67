"""The invariants of DESIGN.md, checked on the database as it is (`check_consistency`).

1. request-status: a request that is neither completed nor revoked has the status
   `derive_request_status` gives its approvals; a completed one has `completed_at`, a revoked one
   `revoked_at` (rule 4: otherwise they stay as they are).
2. balance-hold (rule 5, when FIN exists and is active): a stored balance above
   FINANCE_HOLD_THRESHOLD ⇔ exactly one active FIN hold from the balance import, of that amount —
   or none, when the student's latest FIN import hold was released for a verified payment that
   covers that balance (core/services/holds.py: holds_release_paid; the next import places it
   again if the finance system still shows the balance).
3. finance-decision (rule 5, when FINANCE_AUTO_CLEAR is on and FIN exists): the FIN approval of
   an open request is rejected while any FIN hold is active, else approved — unless it was waived,
   or an earlier stage is still open (then the approve is not due yet, and an approval made before
   that stage re-opened stands, as it does for any office).
4. stage-open: an approval's stored `stage_open` (what the queue's "waiting" reads) is true exactly
   when no approval of its request in an earlier stage is still to be cleared.

Set-based: rows are read in keyset chunks of CHUNK as plain tuples (no model instances), with a
constant number of queries per chunk, so 100,000 students and 700,000 approvals take seconds and
little memory. Each rule's decision is a plain function of plain values (`*_problem(s)`), which
the tests drive directly for states the database constraints forbid.
"""
from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Iterable, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, Value

from ..models import ClearanceApproval, ClearanceRequest, Department, Hold, Student
from ..money import kes
from ..services._common import id_chunks
from ..services.finance import finance_department
from ..services.status import derive_request_status

RULE_STATUS = "request-status"
RULE_BALANCE_HOLD = "balance-hold"
RULE_FINANCE_DECISION = "finance-decision"
RULE_STAGE_OPEN = "stage-open"
RULES = (RULE_STATUS, RULE_BALANCE_HOLD, RULE_FINANCE_DECISION, RULE_STAGE_OPEN)

CHUNK = 5000

R = ClearanceRequest.Status
A = ClearanceApproval.Status
CLOSED = (R.COMPLETED, R.REVOKED)


@dataclass(frozen=True)
class Violation:
    rule: str
    model: str       # the model whose row is wrong (or, for a missing row, whose row lacks it)
    pk: int
    label: str       # what a person looks up: a registration number, a request, an approval
    message: str

    def __str__(self):
        return f"{self.rule}: {self.label}: {self.message}"


def consistency_violations(limit: int | None = None) -> list[Violation]:
    """Every violated invariant (the first `limit` of them), read in one snapshot where the
    database gives one (`consistency_snapshot`)."""
    with consistency_snapshot():
        return list(islice(iter_consistency_violations(), limit))


def iter_consistency_violations() -> Iterator[Violation]:
    """The violations rule by rule, in id order within a rule, as they are found: a caller that
    stops early reads no further chunks."""
    yield from request_status_violations()
    yield from balance_hold_violations()
    yield from finance_decision_violations()
    yield from stage_open_violations()


@contextlib.contextmanager
def consistency_snapshot():
    """On PostgreSQL, outside any transaction: one REPEATABLE READ, READ ONLY transaction, so every
    chunk sees the same moment and a write landing between two of them is not reported as a
    violation. Inside a transaction already (the caller's, a test's) the reads run in it as they
    are. On SQLite, no transaction: write transactions begin IMMEDIATE here (settings), and holding
    the write lock for the seconds a check takes would stall every writer; a violation reported
    while writes run is worth a second look there."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _keyset(queryset, fields: Iterable[str], size: int | None = None) -> Iterator[list[tuple]]:
    """The rows of `queryset` as (pk, *fields) tuples in ascending pk, `size` at a time, each
    chunk one query that starts after the last pk seen (no OFFSET, no server-side cursor)."""
    size = size or CHUNK
    fields = list(fields)
    last = None
    while True:
        qs = queryset if last is None else queryset.filter(pk__gt=last)
        rows = list(qs.order_by("pk").values_list("pk", *fields)[:size])
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1][0]


def _kes(amount) -> str:
    return kes(amount, "no amount")


# --- 1. request status --------------------------------------------------------------------------

def _counts_text(counts: dict[str, int]) -> str:
    order = {s: i for i, s in enumerate(A.values)}
    parts = [f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99)) if n]
    return ", ".join(parts) or "no approvals"


def request_status_problem(status: str, approval_counts: dict[str, int], *, completed_at=None,
                           revoked_at=None) -> str | None:
    """What is wrong with a request's stored status, given how many of its approvals are in each
    status; None when nothing is."""
    if status == R.REVOKED:
        return None if revoked_at is not None else "revoked, but no revocation date (revoked_at) is recorded"
    if status == R.COMPLETED:
        return None if completed_at is not None else "completed, but no completion date (completed_at) is recorded"
    statuses = [s for s, n in approval_counts.items() for _ in range(n)]
    derived = derive_request_status(statuses)
    if derived == status:
        return None
    return f"status is {status}, but its approvals ({_counts_text(approval_counts)}) make it {derived}"


def request_status_violations() -> Iterator[Violation]:
    """Invariant 1: two queries per chunk of requests (the requests; their approvals counted per
    status by the database)."""
    fields = ("status", "completed_at", "revoked_at", "student__registration_number", "cycle__name")
    for rows in _keyset(ClearanceRequest.objects.all(), fields):
        counts: dict[int, Counter] = defaultdict(Counter)
        for request_id, status, n in (ClearanceApproval.objects
                                      .filter(request_id__gte=rows[0][0], request_id__lte=rows[-1][0])
                                      .order_by().values_list("request_id", "status").annotate(n=Count("pk"))):
            counts[request_id][status] = n
        for pk, status, completed_at, revoked_at, reg, cycle in rows:
            message = request_status_problem(status, counts.get(pk, {}), completed_at=completed_at,
                                             revoked_at=revoked_at)
            if message:
                yield Violation(RULE_STATUS, "ClearanceRequest", pk, f"{reg} ({cycle})", message)


# --- 2. rule 5: holds follow the stored balance ---------------------------------------------------

def hold_threshold() -> Decimal:
    return Decimal(str(settings.FINANCE_HOLD_THRESHOLD))


def balance_hold_problems(balance: Decimal | None, holds: list[tuple[int, Decimal | None]],
                          threshold: Decimal, *, paid_release: bool = False) -> list[tuple[str, int | None, str]]:
    """What is wrong between a student's stored balance (None: no finance record) and their active
    FIN holds from the balance import, given as (hold id, amount): a list of (model, pk, message);
    pk None means the student's own row. `paid_release`: the student's latest FIN import hold was
    released for a payment covering the balance (then no active hold is right)."""
    holds = sorted(holds, key=lambda h: h[0])
    listed = ", ".join(f"#{pk} of {_kes(amount)}" for pk, amount in holds)
    if balance is not None and balance > threshold:
        owed = f"balance {_kes(balance)} is above the threshold ({_kes(threshold)})"
        if not holds and paid_release:
            return []
        if not holds:
            return [("Student", None, f"{owed}, but no active FIN hold from the balance import")]
        if len(holds) > 1:
            return [("Student", None, f"{owed}, and there are {len(holds)} active FIN import holds ({listed}); "
                                      "exactly one expected")]
        pk, amount = holds[0]
        if amount is None or Decimal(amount) != balance:
            return [("Hold", pk, f"{owed}, but its active FIN import hold #{pk} is for {_kes(amount)}")]
        return []
    why = ("there is no finance record (no balance)" if balance is None
           else f"balance {_kes(balance)} is not above the threshold ({_kes(threshold)})")
    return [("Hold", pk, f"{why}, but FIN import hold #{pk} of {_kes(amount)} is active") for pk, amount in holds]


def balance_hold_violations() -> Iterator[Violation]:
    """Invariant 2: two queries per chunk of students (students with their balance; their active
    FIN import holds)."""
    fin = finance_department()
    if fin is None:
        return
    threshold = hold_threshold()
    for rows in _keyset(Student.objects.all(), ("registration_number", "finance_record__tuition_balance")):
        holds = defaultdict(list)
        for pk, student_id, amount in Hold.objects.filter(
                department_id=fin.pk, source=Hold.Source.BALANCE_IMPORT, status=Hold.Status.ACTIVE,
                student_id__gte=rows[0][0], student_id__lte=rows[-1][0]).order_by().values_list(
                "pk", "student_id", "amount"):
            holds[student_id].append((pk, amount))
        unheld = [sid for sid, _, balance in rows if balance is not None and balance > threshold and sid not in holds]
        paid = _released_for_payment(fin, unheld)
        for student_id, reg, balance in rows:
            if balance is None or balance <= threshold:
                if student_id not in holds:
                    continue            # the common case, decided without a call
            for model, pk, message in balance_hold_problems(balance, holds.get(student_id, []), threshold,
                                                            paid_release=student_id in paid):
                yield Violation(RULE_BALANCE_HOLD, model, pk or student_id, reg, message)


def _released_for_payment(fin, student_ids) -> set[int]:
    """Those of the students whose latest FIN import hold was released for a payment (two queries
    per chunk, none when there are no students to ask about)."""
    out = set()
    for ids in id_chunks(student_ids):
        latest = (Hold.objects.filter(department_id=fin.pk, source=Hold.Source.BALANCE_IMPORT, student_id__in=ids)
                  .order_by().values("student_id").annotate(last=Max("pk")).values_list("last", flat=True))
        out |= set(Hold.objects.filter(pk__in=list(latest), released_for_payment__isnull=False)
                   .values_list("student_id", flat=True))
    return out


# --- 3. rule 5: the finance decision follows the holds ------------------------------------------

def finance_decision_problem(status: str, *, held: bool, earlier_open: bool) -> str | None:
    """What is wrong with an open request's FIN approval given whether the student has an active
    FIN hold (any source) and whether an earlier stage of the request is still open; None when
    nothing is. A waiver is the office's explicit override and always stands."""
    if status == A.WAIVED:
        return None
    if held:
        return None if status == A.REJECTED else f"{status}, though a FIN hold is active: should be rejected"
    if earlier_open:
        return None     # not due yet; one approved before the stage re-opened stands (rule 2 orders decisions)
    return None if status == A.APPROVED else f"{status}, though no FIN hold is active: should be approved"


def finance_decision_violations() -> Iterator[Violation]:
    """Invariant 3: one query per chunk of open FIN approvals (holds and earlier stages decided by
    the database as EXISTS), and two more for the details of the chunk's violations, if any."""
    fin = finance_department()
    if fin is None or not settings.FINANCE_AUTO_CLEAR:
        return
    earlier = list(Department.objects.filter(stage__lt=fin.stage).values_list("pk", flat=True))
    active_fin = Hold.objects.filter(department_id=fin.pk, status=Hold.Status.ACTIVE)
    open_earlier = (ClearanceApproval.objects.filter(department_id__in=earlier)
                    .exclude(status__in=ClearanceApproval.CLEARED))
    approvals = (ClearanceApproval.objects.filter(department_id=fin.pk).exclude(request__status__in=CLOSED)
                 .annotate(held=Exists(active_fin.filter(student_id=OuterRef("request__student_id"))),
                           earlier_open=(Exists(open_earlier.filter(request_id=OuterRef("request_id"))) if earlier
                                         else Value(False))))
    fields = ("status", "held", "earlier_open", "request_id", "request__student_id",
              "request__student__registration_number", "request__cycle__name")
    for rows in _keyset(approvals, fields):
        bad = []
        for pk, status, held, earlier_open, request_id, student_id, reg, cycle in rows:
            message = finance_decision_problem(status, held=bool(held), earlier_open=bool(earlier_open))
            if message:
                label = f"FIN approval of {reg} ({cycle})"
                bad.append((pk, request_id, student_id, label, message, held, earlier_open))
        if not bad:
            continue
        held_by = _active_fin_holds(active_fin, [b[2] for b in bad if b[5]])
        for pk, request_id, student_id, label, message, held, earlier_open in bad:
            if held and held_by.get(student_id):
                message += f" (holds: {'; '.join(held_by[student_id])})"
            yield Violation(RULE_FINANCE_DECISION, "ClearanceApproval", pk, label, message)


def _active_fin_holds(active_fin, student_ids) -> dict[int, list[str]]:
    out = defaultdict(list)
    for ids in id_chunks(sorted(set(student_ids))):
        for pk, student_id, source, amount, reason in (active_fin.filter(student_id__in=ids).order_by("pk")
                                                       .values_list("pk", "student_id", "source", "amount", "reason")):
            what = _kes(amount) if amount is not None else f"“{reason}”"
            out[student_id].append(f"#{pk} {source} {what}")
    return out


# --- 4. the stored "stage open" -----------------------------------------------------------------

def stage_open_violations() -> Iterator[Violation]:
    """Invariant 4: the approvals whose stored flag disagrees with their request's earlier stages,
    found by the database (one query per chunk of them)."""
    blocking = (ClearanceApproval.objects
                .filter(request_id=OuterRef("request_id"), department__stage__lt=OuterRef("department__stage"))
                .exclude(status__in=ClearanceApproval.CLEARED))
    wrong = (ClearanceApproval.objects.annotate(blocked=Exists(blocking))
             .filter(Q(stage_open=True, blocked=True) | Q(stage_open=False, blocked=False)))
    fields = ("stage_open", "department__code", "request__student__registration_number", "request__cycle__name")
    for rows in _keyset(wrong, fields):
        for pk, stage_open, code, reg, cycle in rows:
            if stage_open:
                message = "stored as waiting (stage open), but an earlier stage still has an item to clear"
            else:
                message = "stored as not yet open, but every earlier stage is cleared"
            yield Violation(RULE_STAGE_OPEN, "ClearanceApproval", pk, f"{code} approval of {reg} ({cycle})", message)

