"""/finance/ — the M-PESA confirmations Daraja posted (core/services/mpesa.py), read-only.

Most were recorded and verified by themselves; the ones to look at are those whose account names
no student for certain ("No student": a typo, ambiguous, nothing) and those whose amount differs
from a payment recorded with the same code. Such a one is recorded by hand (Payments → Record a
payment, with its M-PESA code); the list then shows the payment recorded since. Only finance
officers see it (FinanceModelAdmin.scope, the model permission core.view_mpesaconfirmation)."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.utils import timezone
from unfold.decorators import display

from core.models import MpesaConfirmation, Payment

from .finance import FinanceModelAdmin, kes
from .sites import finance_site as site

C = MpesaConfirmation
TO_LOOK_AT = (C.Outcome.UNMATCHED, C.Outcome.MISMATCH)


class ToLookAtFilter(admin.SimpleListFilter):
    title = "to look at"
    parameter_name = "look"

    def lookups(self, request, model_admin):
        return [("yes", "Not recorded yet or amount differs"), ("no", "Recorded")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(outcome__in=TO_LOOK_AT, recorded_since__isnull=True)
        if self.value() == "no":
            return queryset.exclude(outcome__in=TO_LOOK_AT, recorded_since__isnull=True)
        return queryset


@admin.register(MpesaConfirmation, site=site)
class MpesaConfirmationAdmin(FinanceModelAdmin):
    list_display = ("code_display", "paid_at_display", "amount_display", "bill_ref", "payer_display",
                    "outcome_display", "student_or_candidates", "recorded_since_display")
    list_display_links = ("code_display",)
    list_select_related = ("student", "payment")
    list_filter = (ToLookAtFilter, "outcome", ("received_at", admin.DateFieldListFilter))
    search_fields = ("trans_id", "bill_ref", "payer_name", "msisdn")
    search_help_text = "M-PESA code, account typed, payer's name or phone"
    ordering = ("-received_at", "-pk")
    actions = None
    fields = ("trans_id", "trans_time", "amount", "bill_ref", "payer_name", "msisdn", "short_code",
              "transaction_type", "received_at", "source_ip", "outcome", "match", "detail", "student", "payment",
              "payload")
    readonly_fields = fields

    def get_queryset(self, request):
        # a payment recorded with the code since (by hand, from a statement): one subquery, not one per row
        since = Payment.objects.filter(method=Payment.Method.MPESA, transaction_code=OuterRef("trans_id"))
        return super().get_queryset(request).annotate(recorded_since=Subquery(since.values("pk")[:1]))

    def history_view(self, request, object_id, extra_context=None):
        raise Http404("An M-PESA confirmation is written once: it has no history.")

    @display(description="M-PESA code", ordering="received_at", header=True)
    def code_display(self, obj):
        return [obj.trans_id, f"received {timezone.localtime(obj.received_at):%d %b %Y %H:%M}"]

    @display(description="Paid at", ordering="trans_time")
    def paid_at_display(self, obj):
        return f"{timezone.localtime(obj.trans_time):%d %b %Y %H:%M}"

    @display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return kes(obj.amount)

    @display(description="Payer", header=True)
    def payer_display(self, obj):
        return [obj.payer_name or "—", obj.msisdn]

    @display(description="Outcome", ordering="outcome",
             label={C.Outcome.RECORDED: "success", C.Outcome.VERIFIED: "success", C.Outcome.ALREADY_VERIFIED: "info",
                    C.Outcome.MISMATCH: "danger", C.Outcome.UNMATCHED: "warning"})
    def outcome_display(self, obj):
        return obj.outcome, obj.get_outcome_display()

    @display(description="Student")
    def student_or_candidates(self, obj):
        if obj.outcome == C.Outcome.UNMATCHED:
            return f"{obj.get_match_display()}: {obj.detail}" if obj.detail else obj.get_match_display()
        return obj.student.registration_number if obj.student else "—"

    @display(description="Recorded since")
    def recorded_since_display(self, obj):
        if obj.outcome != C.Outcome.UNMATCHED:
            return ""
        return f"yes (payment #{obj.recorded_since})" if obj.recorded_since else "not yet"
