"""/finance/ — past M-PESA statement reconciliations (read-only) and the page of one: its lines with
what each came to, "Record and verify" on a line with no payment whose student is certain, the
statement file and the result as xlsx or csv.

The page carries only which reconciliation (in the URL) and which line (its number, and the code
shown, as a check): every value of the payment comes from the saved line
(core/services/reconcile.py: statement_line_record_and_verify). Every path asks the finance role
(FinanceModelAdmin.scope) and a model permission; a junk id, line or page is a message or a 404."""
from __future__ import annotations

import io
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from unfold.decorators import display

from core.exports import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, csv_chunks, xlsx_write
from core.imports.mpesa import ACCOUNT_RULE
from core.models import Payment, ReconciliationLine, StatementReconciliation, Student
from core.selectors.finance import payments_hold_coverage
from core.selectors.reports import DATETIME, INT, MONEY, Column
from core.services.reconcile import statement_line_record_and_verify

from .downloads import file_link, protect
from .filters import parse_id
from .finance import FinanceModelAdmin, kes
from .sites import finance_site as site

L = ReconciliationLine
LINES_PER_PAGE = 100
# ?show= on the page: which lines (the first is the default)
SHOW = {
    "all": ("All lines", Q()),
    "to_record": ("To record", Q(outcome=L.Outcome.UNRECORDED, match__in=[L.Match.EXACT, L.Match.TYPO])),
    "ambiguous": ("Ambiguous", Q(outcome=L.Outcome.UNRECORDED, match=L.Match.AMBIGUOUS)),
    "no_match": ("No match", Q(outcome=L.Outcome.UNRECORDED, match=L.Match.NONE)),
    "mismatch": ("Amount differs", Q(outcome=L.Outcome.MISMATCH)),
    "recorded": ("Recorded payments", Q(outcome__in=[L.Outcome.VERIFIED, L.Outcome.ALREADY_VERIFIED])),
}
# what a "Record and verify" form may post: the line and the code it showed, and where to come back to
RECORD_FIELDS = {"csrfmiddlewaretoken", "line", "receipt", "show", "page"}

RESULT_COLUMNS = [Column("Row", INT, 6), Column("M-PESA code", width=14), Column("Completed", DATETIME, 18),
                  Column("Paid in (KES)", MONEY, 14), Column("A/C No. typed", width=22), Column("Phone", width=16),
                  Column("Outcome", width=20), Column("Student match", width=24),
                  Column("Registration number", width=20), Column("Student", width=26),
                  Column("Candidates (ambiguous)", width=40), Column("Detail", width=40)]


def _show(value) -> str:
    return value if value in SHOW else "all"


def _candidates(lines) -> dict[int, Student]:
    ids = {pk for line in lines for pk in (line.candidates or []) if isinstance(pk, int)}
    return {s.pk: s for s in Student.objects.filter(pk__in=ids)} if ids else {}


def result_rows(rec: StatementReconciliation):
    """The reconciliation's lines as the result file's rows (two queries: the ambiguous lines'
    candidates, then the lines with their students, streamed)."""
    lines = rec.lines.select_related("student").order_by("row")
    candidates = _candidates(rec.lines.filter(match=L.Match.AMBIGUOUS).only("candidates"))
    for line in lines.iterator(chunk_size=2000):
        named = "; ".join(f"{s.registration_number} {s.full_name}" for s in
                          (candidates.get(pk) for pk in line.candidates or []) if s is not None)
        yield (line.row, line.receipt, line.completed_at, line.amount, line.account, line.phone,
               line.get_outcome_display(), line.get_match_display(),
               line.student.registration_number if line.student else "", line.student.full_name if line.student else "",
               named, line.match_detail)


@admin.register(StatementReconciliation, site=site)
class StatementReconciliationAdmin(FinanceModelAdmin):
    list_display = ("reconciliation_display", "period_display", "lines_display", "matched_display",
                    "ambiguous_display", "unmatched_display", "verified_display", "mismatched_display",
                    "statement_link")
    list_display_links = ("reconciliation_display",)
    list_select_related = ("created_by",)
    search_fields = ("original_name",)
    search_help_text = "File name"
    list_filter = (("created_at", admin.DateFieldListFilter),)
    ordering = ("-created_at", "-pk")
    actions = None

    @display(description="Statement", ordering="created_at", header=True)
    def reconciliation_display(self, obj):
        return [f"#{obj.pk} {obj.original_name}",
                f"{timezone.localtime(obj.created_at):%d %b %Y %H:%M} by {obj.created_by or 'someone since removed'}"]

    @display(description="Lines", ordering="lines_total")
    def lines_display(self, obj):
        return obj.lines_total

    @display(description="Matched", ordering="matched_count")
    def matched_display(self, obj):
        return obj.matched_count

    @display(description="Ambiguous", ordering="ambiguous_count")
    def ambiguous_display(self, obj):
        return obj.ambiguous_count

    @display(description="No match", ordering="unmatched_count")
    def unmatched_display(self, obj):
        return obj.unmatched_count

    @display(description="Verified now", ordering="verified_count")
    def verified_display(self, obj):
        return obj.verified_count

    @display(description="Amount differs", ordering="mismatched_count")
    def mismatched_display(self, obj):
        return obj.mismatched_count

    @display(description="Period")
    def period_display(self, obj):
        if obj.period_start is None:
            return "—"
        start, end = timezone.localtime(obj.period_start), timezone.localtime(obj.period_end)
        if start.date() == end.date():
            return f"{end:%d %b %Y}"
        return f"{start:%d %b} – {end:%d %b %Y}" if start.year == end.year else f"{start:%d %b %Y} – {end:%d %b %Y}"

    @display(description="File")
    def statement_link(self, obj):
        return file_link(self.admin_site.name, obj)

    def has_record_permission(self, request):
        return request.user.has_perm("core.add_payment") and request.user.has_perm("core.change_payment")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<str:object_id>/record/", wrap(self.record_view), name="core_statementreconciliation_record"),
            path("<str:object_id>/result.<str:fmt>", wrap(self.result_download_view),
                 name="core_statementreconciliation_result"),
            *super().get_urls(),
        ]

    def page_url(self, rec, **query) -> str:
        url = reverse(f"{self.admin_site.name}:core_statementreconciliation_change", args=[rec.pk])
        query = {k: v for k, v in query.items() if v not in (None, "", "all", 1, "1")}
        return f"{url}?{urlencode(query)}" if query else url

    # --- the page of one reconciliation ---------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rec = self.object_or_404(request, object_id)
        if not self.has_view_permission(request, rec):
            raise PermissionDenied
        show = _show(request.GET.get("show"))
        counts = rec.lines.aggregate(**{key: Count("pk", filter=q) for key, (_, q) in SHOW.items()})
        lines_qs = rec.lines.filter(SHOW[show][1]).select_related("student", "payment__student").order_by("row")
        paginator = Paginator(lines_qs, LINES_PER_PAGE)
        page = paginator.get_page(parse_id(request.GET.get("page")) or 1)
        lines = list(page.object_list)
        # what happened since: payments recorded meanwhile with these lines' codes (one query)
        now_paid = {p.transaction_code: p for p in Payment.objects.filter(
            method=Payment.Method.MPESA, transaction_code__in=[x.receipt for x in lines if x.payment_id is None])}
        candidates = _candidates(lines)
        can_record = self.has_record_permission(request)
        rows = []
        for line in lines:
            recorded_now = now_paid.get(line.receipt)
            rows.append({
                "line": line,
                "candidates": [candidates[pk] for pk in line.candidates or [] if pk in candidates],
                "recorded_now": recorded_now,
                "recordable": (can_record and line.outcome == L.Outcome.UNRECORDED and recorded_now is None
                               and line.match in (L.Match.EXACT, L.Match.TYPO) and line.student_id is not None),
            })
        name = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reconciliation #{rec.pk}: {rec.original_name}",
            "subtitle": None,
            "opts": self.model._meta,
            "rec": rec,
            "rows": rows,
            "page": page,
            "paginator": paginator,
            "show": show,
            "tabs": [{"key": key, "label": label, "count": counts[key], "url": self.page_url(rec, show=key)}
                     for key, (label, _) in SHOW.items()],
            "prev_url": self.page_url(rec, show=show, page=page.previous_page_number()) if page.has_previous() else "",
            "next_url": self.page_url(rec, show=show, page=page.next_page_number()) if page.has_next() else "",
            "account_rule": ACCOUNT_RULE,
            "missing": [dict(m, paid_at=parse_datetime(m.get("paid_at") or ""), amount=Decimal(m.get("amount") or 0))
                        for m in rec.missing if isinstance(m, dict)],
            "record_url": reverse(f"{name}:core_statementreconciliation_record", args=[rec.pk]),
            "xlsx_url": reverse(f"{name}:core_statementreconciliation_result", args=[rec.pk, "xlsx"]),
            "csv_url": reverse(f"{name}:core_statementreconciliation_result", args=[rec.pk, "csv"]),
            "statement_link": file_link(name, rec),
            "changelist_url": self.changelist_url(),
            "again_url": reverse(f"{name}:core_payment_reconcile_statement"),
            "payments_url": reverse(f"{name}:core_payment_changelist"),
        }
        request.current_app = name
        return TemplateResponse(request, "finance/reconcile_result.html", context)

    # --- record and verify one line -------------------------------------------------------------

    def record_view(self, request, object_id):
        rec = self.object_or_404(request, object_id)
        if not self.has_record_permission(request):
            raise PermissionDenied
        show, page = _show(request.POST.get("show")), parse_id(request.POST.get("page")) or 1
        back = HttpResponseRedirect(self.page_url(rec, show=show, page=page))
        if request.method != "POST":
            return back
        extra = sorted(set(request.POST) - RECORD_FIELDS)
        row = parse_id(request.POST.get("line"))
        if extra:
            self.message_user(request, "The form was changed: it carried " + ", ".join(e[:40] for e in extra[:5]) +
                              ", which are read from the saved statement, never from the page. Nothing was "
                              "recorded.", messages.ERROR)
            return back
        if row is None:
            self.message_user(request, "No line of the statement was given; nothing was recorded.", messages.ERROR)
            return back
        try:
            payment = statement_line_record_and_verify(reconciliation_id=rec.pk, row=row, acting_user=request.user,
                                                       seen_receipt=request.POST["receipt"][:40]
                                                       if "receipt" in request.POST else None)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return back
        self.message_user(request, f"Recorded and verified {payment.transaction_code}: {kes(payment.amount)} from "
                                   f"{payment.student} (line {row}).", messages.SUCCESS)
        coverage = payments_hold_coverage([payment])[payment.pk]
        if coverage.covers:
            url = reverse(f"{self.admin_site.name}:core_payment_change", args=[payment.pk])
            self.message_user(request, f"It covers the balance of import #{coverage.balance_import.pk}: the FIN hold can "
                                       f"be released from the payment's page ({url}).", messages.INFO)
        return back

    # --- downloads ------------------------------------------------------------------------------

    def result_download_view(self, request, object_id, fmt):
        rec = self.object_or_404(request, object_id)
        if not self.has_view_permission(request, rec):
            raise PermissionDenied
        if fmt not in ("xlsx", "csv"):
            self.message_user(request, "The result downloads as xlsx or csv.", messages.ERROR)
            return HttpResponseRedirect(self.page_url(rec))
        title = (f"M-PESA reconciliation #{rec.pk}: {rec.original_name}, "
                 f"{timezone.localtime(rec.created_at):%d %b %Y %H:%M} by {rec.created_by or 'someone since removed'}")
        out = io.BytesIO()
        if fmt == "xlsx":
            xlsx_write(result_rows(rec), columns=RESULT_COLUMNS, title=title, out=out, sheet="Reconciliation")
            content_type = XLSX_CONTENT_TYPE
        else:
            for chunk in csv_chunks(result_rows(rec), columns=RESULT_COLUMNS):
                out.write(chunk.encode("utf-8"))
            content_type = CSV_CONTENT_TYPE
        response = HttpResponse(out.getvalue(), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{rec.pk}.{fmt}"'
        return protect(response)
