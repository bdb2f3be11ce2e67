"""Reads for the finance site: the financial summary on its dashboard, each figure aggregated in the
database (one query per table, whatever the number of students)."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from .. import progress
from ..models import BalanceImport, ClearanceApproval, ClearanceRequest, FinanceRecord, Hold, Payment
from ..money import kes
from ..services.finance import FINANCE_CODE

ZERO = Decimal("0")


@dataclass(frozen=True)
class FinanceSummary:
    outstanding_total: Decimal      # sum of positive tuition balances
    students_owing: int
    credit_total: Decimal           # sum of credits, as a positive amount
    students_in_credit: int
    graduation_fees_unpaid: int
    graduation_fees_unpaid_total: Decimal
    fin_holds_active: int
    fin_holds_amount: Decimal
    approvals_pending: int
    approvals_approved: int
    approvals_rejected: int
    approvals_waived: int
    payments_week_count: int
    payments_week_total: Decimal
    payments_unverified_count: int
    payments_unverified_total: Decimal
    week_starts: datetime.datetime
    last_import: BalanceImport | None


def start_of_week(now: datetime.datetime | None = None) -> datetime.datetime:
    """Monday 00:00 of the current week, in the site's time zone."""
    today = timezone.localdate(now or timezone.now())
    monday = today - datetime.timedelta(days=today.weekday())
    return timezone.make_aware(datetime.datetime.combine(monday, datetime.time.min))


def balances_summary() -> dict:
    owing, credit = Q(tuition_balance__gt=0), Q(tuition_balance__lt=0)
    unpaid = Q(graduation_fee_status=FinanceRecord.GraduationFeeStatus.UNPAID)
    return FinanceRecord.objects.aggregate(
        outstanding_total=Sum("tuition_balance", filter=owing, default=ZERO),
        students_owing=Count("pk", filter=owing),
        credit_total=Sum("tuition_balance", filter=credit, default=ZERO),
        students_in_credit=Count("pk", filter=credit),
        graduation_fees_unpaid=Count("pk", filter=unpaid),
        graduation_fees_unpaid_total=Sum("graduation_fee", filter=unpaid, default=ZERO),
    )


def fin_holds_summary() -> dict:
    return Hold.objects.filter(department__code=FINANCE_CODE, status=Hold.Status.ACTIVE).aggregate(
        fin_holds_active=Count("pk"), fin_holds_amount=Sum("amount", default=ZERO))


def fin_approvals_summary() -> dict:
    """FIN approvals of requests that are not revoked, by status."""
    S = ClearanceApproval.Status
    return (ClearanceApproval.objects.filter(department__code=FINANCE_CODE)
            .exclude(request__status=ClearanceRequest.Status.REVOKED)
            .aggregate(**{f"approvals_{s}": Count("pk", filter=Q(status=s))
                          for s in (S.PENDING, S.APPROVED, S.REJECTED, S.WAIVED)}))


def payments_summary(week_starts: datetime.datetime) -> dict:
    this_week, unverified = Q(paid_at__gte=week_starts), Q(verified_at__isnull=True)
    return Payment.objects.aggregate(
        payments_week_count=Count("pk", filter=this_week),
        payments_week_total=Sum("amount", filter=this_week, default=ZERO),
        payments_unverified_count=Count("pk", filter=unverified),
        payments_unverified_total=Sum("amount", filter=unverified, default=ZERO),
    )


def balance_import_progress(bi: BalanceImport) -> int | None:
    """Percent done of an import being previewed or applied. While it is applying, the row itself
    still says 0 (the apply is one transaction), so the figure comes from what the apply reports
    to the shared cache (core.progress): None while the cache has none to give (it is down)."""
    if bi.status == BalanceImport.Status.APPLYING:
        reported = progress.read(progress.BALANCE_IMPORT_APPLY, bi.pk)
        return None if reported is None else max(reported, bi.progress)
    return bi.progress


def balance_import_applying(*, exclude=None) -> BalanceImport | None:
    """The import being applied now (at most one is: core/locks.py), if any."""
    return (BalanceImport.objects.filter(status=BalanceImport.Status.APPLYING).exclude(pk=exclude).defer("plan")
            .order_by("pk").first())


def last_balance_import() -> BalanceImport | None:
    return BalanceImport.objects.select_related("uploaded_by").order_by("-created_at", "-pk").first()


def finance_summary(*, now: datetime.datetime | None = None) -> FinanceSummary:
    """The finance dashboard's figures in five queries."""
    week_starts = start_of_week(now)
    figures = {**balances_summary(), **fin_holds_summary(), **fin_approvals_summary(),
               **payments_summary(week_starts)}
    figures["credit_total"] = -figures["credit_total"]
    return FinanceSummary(**figures, week_starts=week_starts, last_import=last_balance_import())


def unverified_payments() -> QuerySet[Payment]:
    return Payment.objects.filter(verified_at__isnull=True)


@dataclass(frozen=True)
class ImportOutcome:
    """What an applied balance import did beyond the records: FIN holds placed, changed (amount)
    and released, and finance items it approved or rejected. Read from history (each row the
    import wrote names it), so later imports do not change the figures of an earlier one."""
    holds_placed: int
    holds_updated: int
    holds_released: int
    approvals_approved: int
    approvals_rejected: int


def balance_import_outcome(bi: BalanceImport) -> ImportOutcome:
    # a hold released for a payment keeps the import that placed it: that release is not the import's
    holds = Hold.history.model.objects.filter(balance_import_id=bi.pk, released_for_payment_id__isnull=True)
    placed = holds.filter(history_type="+").count()
    changed = dict(holds.filter(history_type="~").values_list("status").annotate(n=Count("history_id"))
                   .values_list("status", "n"))
    decided = dict(ClearanceApproval.history.model.objects.filter(decided_by_import_id=bi.pk, history_type="~")
                   .values_list("status").annotate(n=Count("history_id")).values_list("status", "n"))
    return ImportOutcome(holds_placed=placed, holds_updated=changed.get(Hold.Status.ACTIVE, 0),
                         holds_released=changed.get(Hold.Status.RELEASED, 0),
                         approvals_approved=decided.get(ClearanceApproval.Status.APPROVED, 0),
                         approvals_rejected=decided.get(ClearanceApproval.Status.REJECTED, 0))


# --- does a verified payment cover the balance of the student's last import? ---------------------

@dataclass(frozen=True)
class HoldCoverage:
    """Whether `payment` lets its student's FIN import hold go (core/services/holds.py:
    holds_release_paid): the balance of the student's last import (`FinanceRecord.tuition_balance`;
    the import is the later of the record's `last_import` and the one that wrote the hold) minus
    the verified payments made after that import was applied is at most FINANCE_HOLD_THRESHOLD.
    `refusal` says why not; empty when it does."""
    payment: Payment
    hold: Hold | None
    balance: Decimal | None
    balance_import: BalanceImport | None
    paid_since: Decimal
    threshold: Decimal
    refusal: str

    @property
    def covers(self) -> bool:
        return not self.refusal

    @property
    def remaining(self) -> Decimal | None:
        return None if self.balance is None else self.balance - self.paid_since


_kes = kes  # one format for money (core/money.py)


def _import_in_force(record, hold):
    """The import whose balance stands: the later of the one that last changed the record and the
    one that last wrote the hold (an import that finds a balance unchanged rewrites neither, but a
    first import over a balance stored otherwise places the hold and leaves the record's alone)."""
    imports = [bi for bi in (getattr(record, "last_import", None), getattr(hold, "balance_import", None))
               if bi is not None and bi.applied_at is not None]
    return max(imports, key=lambda bi: bi.applied_at) if imports else None


def payments_hold_coverage(payments, *, holds=None) -> dict[int, HoldCoverage]:
    """HoldCoverage of each payment, by payment id, in three queries whatever their number (finance
    records with their last import; active FIN import holds; verified payments since those
    imports), unless `holds` (student id → hold, read by the caller under a lock) is given."""
    payments = list(payments)
    threshold = Decimal(str(settings.FINANCE_HOLD_THRESHOLD))
    student_ids = sorted({p.student_id for p in payments})
    records = {r.student_id: r for r in FinanceRecord.objects.filter(student_id__in=student_ids)
               .select_related("last_import")} if student_ids else {}
    if holds is None:
        holds = {h.student_id: h for h in Hold.objects.filter(
            student_id__in=student_ids, department__code=FINANCE_CODE, source=Hold.Source.BALANCE_IMPORT,
            status=Hold.Status.ACTIVE).select_related("department", "balance_import")} if student_ids else {}
    since = {}
    for sid, r in records.items():
        bi = _import_in_force(r, holds.get(sid))
        if bi is not None and bi.applied_at is not None:
            since[sid] = bi.applied_at
    paid: dict[int, Decimal] = {}
    if since:
        for sid, paid_at, amount in (Payment.objects.filter(student_id__in=list(since), verified_at__isnull=False,
                                                            paid_at__gt=min(since.values()))
                                     .values_list("student_id", "paid_at", "amount")):
            if paid_at > since[sid]:
                paid[sid] = paid.get(sid, ZERO) + amount
    out = {}
    for p in payments:
        record, hold = records.get(p.student_id), holds.get(p.student_id)
        bi = _import_in_force(record, hold)
        balance = record.tuition_balance if record is not None else None
        paid_since = paid.get(p.student_id, ZERO)
        refusal = ""
        if not p.is_verified:
            refusal = "it is not verified yet: verify it first"
        elif hold is None:
            refusal = f"{p.student.registration_number} has no active FIN hold from a balance import"
        elif bi is None or bi.applied_at is None:
            refusal = f"no balance import is recorded for {p.student.registration_number}'s balance"
        elif p.paid_at <= bi.applied_at:
            refusal = (f"it was paid before import #{bi.pk} was applied "
                       f"({timezone.localtime(bi.applied_at):%d %b %Y %H:%M}), so that import's balance already "
                       "counts it")
        elif balance - paid_since > threshold:
            refusal = (f"it does not cover the balance: import #{bi.pk} shows {_kes(balance)}, verified payments "
                       f"since then come to {_kes(paid_since)}, {_kes(balance - paid_since)} is still owed")
        out[p.pk] = HoldCoverage(payment=p, hold=hold, balance=balance, balance_import=bi, paid_since=paid_since,
                                 threshold=threshold, refusal=refusal)
    return out
