"""/finance/ — the finance officers' site (clearance_admin/sites.py): finance records (read-only:
balances come from imports), the FIN office's holds, payments (record, verify one or many, verify by
M-PESA code), balance imports (read-only here) and the financial summary on the dashboard.

Every list, detail page, action and hand-typed URL answers from `scope()`; every write is one call
to a core service, reported with `report_bulk_result` or turned into a form error."""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.html import format_html, format_html_join
from unfold.decorators import action, display
from unfold.enums import ActionVariant
from unfold.widgets import (UnfoldAdminDecimalFieldWidget, UnfoldAdminFileFieldWidget, UnfoldAdminSelectWidget,
                            UnfoldAdminSplitDateTimeWidget, UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget)

from core import permissions
from core.exports import XLSX_CONTENT_TYPE, xlsx_bytes
from core.files import validate_receipt
from core.imports.balances import MAX_FILE_BYTES, READABLE_EXTENSIONS, READABLE_KINDS
from core.models import (REASON_MAX_LENGTH, BalanceImport, FinanceRecord, Hold, Payment, Student,
                         normalize_registration_number)
from core.money import kes
from core.selectors.finance import balance_import_applying, balance_import_outcome, balance_import_progress
from core.services import balances as balances_service
from core.services.balances import (balances_import_apply, balances_import_apply_async, balances_import_cancel,
                                    balances_import_submit)
from core.services.finance import FINANCE_CODE, finance_department
from core.services.jobs import jobs_sweep_quietly
from core.selectors.finance import payments_hold_coverage
from core.services.holds import holds_place, holds_release, holds_release_paid, holds_waive, paid_release_reason
from core.services.payments import (finance_records_set_graduation_fee_status, payment_record,
                                    payment_verify_by_code, payments_verify)
from core.services.reconcile import payments_reconcile_statement

from .downloads import file_link, protect
from .filters import HoldsOfImportFilter, parse_id, student_filters
from .mixins import RoleModelAdmin, report_bulk_result
from .exports import register_my_exports
from .sites import finance_site as site

site.index_template = "finance/index.html"


def badge(variant: str, text: str) -> str:
    return render_to_string("unfold/helpers/label.html", {"variant": variant, "text": text})


def badge_of(method):
    """The detail-page twin of a list column shown as a label (unfold renders labels in lists only)."""
    def detail(self, obj):
        key, text = method(self, obj)
        return badge(method.label.get(key, "default"), text)
    detail.short_description = method.short_description
    return detail


def _student_header(student):
    """Registration number over the name, one cell (unfold's `header` display)."""
    return [student.registration_number, student.full_name]


# --- shared pieces ------------------------------------------------------------------------------

class FinanceModelAdmin(RoleModelAdmin):
    """Finance officers see every student's money matters; anyone else on this site sees nothing
    (the site lets in only finance officers and superusers, this is the second lock)."""

    def scope(self, request, queryset):
        if permissions.has_role(request.user, permissions.FINANCE):
            return queryset
        return queryset.none()

    @display(description="Student", header=True, ordering="student__registration_number")
    def student_display(self, obj):
        return _student_header(obj.student)

    @display(description="Student")
    def student_display_detail(self, obj):
        return f"{obj.student.registration_number} — {obj.student.full_name}"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # detail pages are read-only; changes go through the actions and their services

    def has_delete_permission(self, request, obj=None):
        return False

    # --- helpers for the small form pages (reason, confirmation, record, verify by code) --------

    def changelist_url(self):
        opts = self.model._meta
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")

    def form_page(self, request, *, title, form=None, submit_label, intro="", items=(), hidden=(),
                  variant="primary", cancel_url=None, multipart=False):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.model._meta,
            "form": form,
            "intro": intro,
            "items": items,
            "hidden": hidden,
            "submit_label": submit_label,
            "variant": variant,
            "cancel_url": cancel_url or self.changelist_url(),
            "changelist_url": self.changelist_url(),
            "multipart": multipart,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "finance/form_page.html", context)

    def bulk_form_page(self, request, queryset, *, action_name, form, **kwargs):
        """The intermediate page of a bulk action: it posts the action and the selected rows back to
        the changelist, with `confirm` set, so Django runs the action again with the form filled."""
        hidden = [("action", action_name), ("confirm", "1")]
        if request.POST.get("select_across") in ("1", "True", "true"):
            # "select all N": post the flag back (with the same filters, in the URL), not N ids
            total = queryset.count()
            hidden += [("select_across", "1"), *[("_selected_action", pk)
                                                 for pk in request.POST.getlist("_selected_action")[:1]]]
        else:
            ids = list(queryset.values_list("pk", flat=True))
            total = len(ids)
            hidden += [("_selected_action", pk) for pk in ids]
        items = [str(obj) for obj in queryset[:50]]
        if total > len(items):
            items.append(f"… and {total - len(items)} more")
        return self.form_page(request, form=form, hidden=hidden, items=items, **kwargs)

    def object_or_404(self, request, object_id):
        """The object if it is in the user's scope; 403 if it exists outside it; 404 otherwise."""
        obj = self.get_object(request, object_id)  # ScopedAdminMixin: PermissionDenied outside the scope
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id}.")
        return obj


def _text(**attrs):
    return UnfoldAdminTextInputWidget(attrs=attrs)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}), max_length=REASON_MAX_LENGTH)

    def __init__(self, *args, required=True, help_text="", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required
        self.fields["reason"].help_text = " ".join(filter(None, [help_text, f"Up to {REASON_MAX_LENGTH:,} characters."]))


def _form_errors_from(form, exc: ValidationError, field_by_code: dict[str, str], default: str | None = None):
    """A service's ValidationError as form errors: on the field its code names, else on `default`
    (or the whole form)."""
    for error in exc.error_list:
        field = field_by_code.get(error.code, default)
        form.add_error(field if field in form.fields else None, error)


# --- finance records ----------------------------------------------------------------------------

class BalanceFilter(admin.SimpleListFilter):
    title = "tuition balance"
    parameter_name = "balance"

    def lookups(self, request, model_admin):
        return [("owing", "Owing (balance > 0)"), ("credit", "In credit (balance < 0)"), ("clear", "Zero")]

    def queryset(self, request, queryset):
        return {
            "owing": lambda: queryset.filter(tuition_balance__gt=0),
            "credit": lambda: queryset.filter(tuition_balance__lt=0),
            "clear": lambda: queryset.filter(tuition_balance=0),
        }.get(self.value(), lambda: queryset)()


_, _, CohortFilter = student_filters("student")


class LastImportFilter(admin.SimpleListFilter):
    """`?last_import=<id>`: the records a balance import last touched (linked from the import)."""
    title = "last import"
    parameter_name = "last_import"

    def lookups(self, request, model_admin):
        return [(str(pk), name or f"Import #{pk}") for pk, name in
                BalanceImport.objects.order_by("-created_at", "-pk").values_list("pk", "original_name")[:10]]

    def queryset(self, request, queryset):
        value = parse_id(self.value())
        return queryset if value is None else queryset.filter(last_import_id=value)


class GraduationFeeStatusForm(forms.Form):
    status = forms.ChoiceField(choices=FinanceRecord.GraduationFeeStatus.choices, widget=UnfoldAdminSelectWidget,
                               label="New graduation fee status")
    reason = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
                             max_length=REASON_MAX_LENGTH,
                             help_text=f"Required to waive; kept in the record's history. "
                                       f"Up to {REASON_MAX_LENGTH:,} characters.")


@admin.register(FinanceRecord, site=site)
class FinanceRecordAdmin(FinanceModelAdmin):
    list_display = ("student_display", "balance_display", "graduation_fee_display", "last_import_display",
                    "updated_at")
    list_select_related = ("student__school", "last_import")
    search_fields = ("student__registration_number", "student__first_name", "student__last_name")
    search_help_text = "Registration number or name"
    list_filter = (BalanceFilter, "graduation_fee_status", ("student__school", admin.RelatedFieldListFilter),
                   CohortFilter, LastImportFilter)
    ordering = ("student__registration_number",)
    actions = ["set_graduation_fee_status"]
    actions_detail = ["graduation_fee_status_one"]
    fieldsets = (
        ("Student", {"fields": ("student_display_detail", "school_display")}),
        ("Money", {"fields": ("balance_badge", "graduation_fee_badge", "notes")}),
        ("Origin", {"fields": ("last_import_display", "updated_at")}),
        ("Finance holds and payments", {"fields": ("fin_holds_display", "payments_display")}),
    )
    readonly_fields = ("student_display_detail", "school_display", "balance_badge", "graduation_fee_badge",
                       "notes", "last_import_display", "updated_at", "fin_holds_display", "payments_display")

    @display(description="School / cohort")
    def school_display(self, obj):
        return f"{obj.student.school.code} · cohort {obj.student.expected_graduation_year}"

    @display(description="Tuition balance", ordering="tuition_balance",
             label={"owing": "danger", "credit": "success", "clear": "default"})
    def balance_display(self, obj):
        balance = obj.tuition_balance
        if balance > 0:
            return "owing", f"Owes {kes(balance)}"
        if balance < 0:
            return "credit", f"Credit {kes(-balance)}"
        return "clear", kes(balance)

    @display(description="Graduation fee", ordering="graduation_fee_status",
             label={"unpaid": "warning", "paid": "success", "waived": "info"})
    def graduation_fee_display(self, obj):
        return obj.graduation_fee_status, f"{kes(obj.graduation_fee)} · {obj.get_graduation_fee_status_display()}"

    balance_badge = badge_of(balance_display)
    graduation_fee_badge = badge_of(graduation_fee_display)

    @display(description="Last import")
    def last_import_display(self, obj):
        if obj.last_import is None:
            return "—"
        url = reverse(f"{self.admin_site.name}:core_balanceimport_change", args=[obj.last_import_id])
        return format_html('<a class="text-primary-600" href="{}">{}</a> <span class="text-xs">{}</span>', url,
                           obj.last_import, timezone.localtime(obj.last_import.created_at).strftime("%d %b %Y"))

    @display(description="FIN holds")
    def fin_holds_display(self, obj):
        holds = list(Hold.objects.filter(student_id=obj.student_id, department__code=FINANCE_CODE)
                     .order_by("-placed_at")[:20])
        if not holds:
            return "No finance holds."
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{} — {}{} ({})</li>",
            ((timezone.localtime(h.placed_at).strftime("%d %b %Y"), h.reason,
              f", {kes(h.amount)}" if h.amount is not None else "", h.get_status_display()) for h in holds)))

    @display(description="Payments")
    def payments_display(self, obj):
        payments = list(Payment.objects.filter(student_id=obj.student_id).order_by("-paid_at")[:20])
        if not payments:
            return "No payments recorded."
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{} — {} {} {} ({})</li>",
            ((timezone.localtime(p.paid_at).strftime("%d %b %Y"), p.get_method_display(), p.transaction_code,
              kes(p.amount), "verified" if p.is_verified else "not verified") for p in payments)))

    def has_graduation_fee_permission(self, request, obj=None):
        return request.user.has_perm("core.change_financerecord")

    def _set_status(self, request, ids, form):
        status, reason = form.cleaned_data["status"], form.cleaned_data["reason"]
        try:
            result = finance_records_set_graduation_fee_status(record_ids=ids, status=status, reason=reason,
                                                               acting_user=request.user)
        except ValidationError as exc:
            _form_errors_from(form, exc, {"reason_required": "reason", "status": "status"})
            return None
        label = FinanceRecord.GraduationFeeStatus(status).label.lower()
        report_bulk_result(self, request, result, done_verb=f"Marked the graduation fee {label} on",
                           noun="record")
        return result

    @action(description="Set the graduation fee status", permissions=["graduation_fee"], icon="school")
    def set_graduation_fee_status(self, request, queryset):
        form = GraduationFeeStatusForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            if self._set_status(request, list(queryset.values_list("pk", flat=True)), form) is not None:
                return None
        return self.bulk_form_page(request, queryset, action_name="set_graduation_fee_status", form=form,
                                   title="Set the graduation fee status", submit_label="Set status",
                                   intro="Balances are not changed here: they come from balance imports.")

    @action(description="Graduation fee status", permissions=["graduation_fee"], icon="school",
            url_path="graduation-fee")
    def graduation_fee_status_one(self, request, object_id):
        record = self.object_or_404(request, object_id)
        form = GraduationFeeStatusForm(request.POST or None,
                                       initial={"status": record.graduation_fee_status})
        if request.method == "POST" and form.is_valid():
            if self._set_status(request, [record.pk], form) is not None:
                return HttpResponseRedirect(reverse(f"{self.admin_site.name}:core_financerecord_change",
                                                    args=[record.pk]))
        return self.form_page(request, form=form, title=f"Graduation fee of {record.student}",
                              submit_label="Set status", items=[f"Now: {kes(record.graduation_fee)} · "
                                                                f"{record.get_graduation_fee_status_display()}"])


# --- FIN holds ----------------------------------------------------------------------------------

class PlaceHoldForm(forms.Form):
    registration_numbers = forms.CharField(
        label="Registration numbers", widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}),
        help_text="One or more, separated by new lines, commas or spaces, e.g. SCE/CS/0001/2022.")
    reason = forms.CharField(max_length=255, widget=_text(), help_text="Shown to the student.")
    amount = forms.DecimalField(label="Amount (KES)", required=False, max_digits=12, decimal_places=2,
                                widget=UnfoldAdminDecimalFieldWidget)

    def clean_registration_numbers(self):
        raw = [normalize_registration_number(x) for x in
               self.cleaned_data["registration_numbers"].replace(",", " ").replace(";", " ").split()]
        numbers = list(dict.fromkeys(x for x in raw if x))
        if not numbers:
            raise ValidationError("Give at least one registration number.")
        found = dict(Student.objects.filter(registration_number__in=numbers)
                     .values_list("registration_number", "pk"))
        unknown = [n for n in numbers if n not in found]
        if unknown:
            raise ValidationError("No student has the registration number %(numbers)s.",
                                  params={"numbers": ", ".join(unknown)}, code="not_found")
        self.student_ids = [found[n] for n in numbers]
        return numbers


class HoldStatusFilter(admin.SimpleListFilter):
    """Active holds first: that is what a finance officer works on."""
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Hold.Status.choices, ("all", "All")]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {"selected": (self.value() or Hold.Status.ACTIVE) == lookup,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                   "display": title}

    def queryset(self, request, queryset):
        value = self.value() or Hold.Status.ACTIVE
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(Hold, site=site)
class FinanceHoldAdmin(FinanceModelAdmin):
    list_display = ("student_display", "reason", "amount_display", "source", "status_display", "placed_at",
                    "placed_by", "ended_display")
    list_select_related = ("student", "department", "placed_by", "released_by")
    search_fields = ("student__registration_number", "student__first_name", "student__last_name", "reason")
    search_help_text = "Registration number, name or reason"
    list_filter = (HoldStatusFilter, "source", ("student__school", admin.RelatedFieldListFilter), HoldsOfImportFilter)
    ordering = ("-placed_at", "-pk")
    actions = ["release_selected", "waive_selected"]
    actions_row = ["release_one", "waive_one"]
    actions_detail = ["release_one", "waive_one"]
    fields = ("student_display_detail", "department", "reason", "amount_display", "source", "status_badge",
              "placed_by", "placed_at", "released_by", "released_at", "release_reason", "balance_import")
    readonly_fields = fields
    scope_refusal = "This hold belongs to an office you do not review from the finance site."

    def scope(self, request, queryset):
        # the FIN office's holds the user reviews (core.permissions.holds_for applies the rights)
        return queryset & permissions.holds_for(request.user).filter(department__code=FINANCE_CODE)

    def has_add_permission(self, request):
        return request.user.has_perm("core.add_hold")

    def has_release_permission(self, request, obj=None):
        return request.user.has_perm("core.change_hold")

    @display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return kes(obj.amount) if obj.amount is not None else "—"

    @display(description="Status", ordering="status",
             label={"active": "danger", "released": "success", "waived": "info"})
    def status_display(self, obj):
        return obj.status, obj.get_status_display()

    status_badge = badge_of(status_display)

    @display(description="Released / waived")
    def ended_display(self, obj):
        if obj.released_at is None:
            return "—"
        return f"{timezone.localtime(obj.released_at):%d %b %Y} by {obj.released_by or 'the system'}"

    # --- place --------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        """Placing a FIN hold is a form for holds_place, not a model form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        department = finance_department()
        form = PlaceHoldForm(request.POST or None)
        if department is None:
            form.add_error(None, f"There is no active {FINANCE_CODE} office to place holds for.")
        elif request.method == "POST" and form.is_valid():
            try:
                result = holds_place(department=department, student_ids=form.student_ids,
                                     reason=form.cleaned_data["reason"], amount=form.cleaned_data["amount"],
                                     acting_user=request.user)
            except ValidationError as exc:
                _form_errors_from(form, exc, {"reason_required": "reason", "negative": "amount",
                                              "absurd": "amount"})
            else:
                report_bulk_result(self, request, result, done_verb="Placed", noun="finance hold")
                return HttpResponseRedirect(self.changelist_url())
        return self.form_page(request, form=form, title="Place a finance hold", submit_label="Place hold",
                              intro="A FIN hold keeps the student's finance clearance from being approved "
                                    "until it is released or waived.")

    # --- release / waive ----------------------------------------------------------------------

    def _end(self, request, service, ids, form):
        try:
            result = service(hold_ids=ids, acting_user=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            _form_errors_from(form, exc, {"reason_required": "reason"})
            return None
        report_bulk_result(self, request, result, done_verb="Released" if service is holds_release else "Waived",
                           noun="hold")
        return result

    def _bulk_end(self, request, queryset, *, service, action_name, title, required):
        form = ReasonForm(request.POST if "confirm" in request.POST else None, required=required,
                          help_text="" if required else "Optional; kept in the hold's history.")
        if form.is_bound and form.is_valid():
            if self._end(request, service, list(queryset.values_list("pk", flat=True)), form) is not None:
                return None
        return self.bulk_form_page(request, queryset, action_name=action_name, form=form, title=title,
                                   submit_label=title.split(" ")[0])

    @action(description="Release selected holds", permissions=["release"], icon="lock_open")
    def release_selected(self, request, queryset):
        return self._bulk_end(request, queryset, service=holds_release, action_name="release_selected",
                              title="Release the selected holds", required=False)

    @action(description="Waive selected holds (reason)", permissions=["release"], icon="do_not_disturb_on")
    def waive_selected(self, request, queryset):
        return self._bulk_end(request, queryset, service=holds_waive, action_name="waive_selected",
                              title="Waive the selected holds", required=True)

    def _one_end(self, request, object_id, *, service, title, required):
        hold = self.object_or_404(request, object_id)
        form = ReasonForm(request.POST or None, required=required,
                          help_text="" if required else "Optional; kept in the hold's history.")
        if request.method == "POST" and form.is_valid():
            if self._end(request, service, [hold.pk], form) is not None:
                return HttpResponseRedirect(self.changelist_url())
        return self.form_page(request, form=form, title=f"{title}: {hold}", items=[hold.reason],
                              submit_label=title)

    @action(description="Release", permissions=["release"], icon="lock_open", url_path="release")
    def release_one(self, request, object_id):
        return self._one_end(request, object_id, service=holds_release, title="Release", required=False)

    @action(description="Waive", permissions=["release"], icon="do_not_disturb_on", url_path="waive")
    def waive_one(self, request, object_id):
        return self._one_end(request, object_id, service=holds_waive, title="Waive", required=True)


# --- payments -----------------------------------------------------------------------------------

class VerifiedFilter(admin.SimpleListFilter):
    title = "verified"
    parameter_name = "verified"

    def lookups(self, request, model_admin):
        return [("no", "Not verified"), ("yes", "Verified")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(verified_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(verified_at__isnull=False)
        return queryset


class RecordPaymentForm(forms.Form):
    registration_number = forms.CharField(max_length=30, widget=_text(placeholder="SCE/CS/0001/2022"))
    amount = forms.DecimalField(label="Amount (KES)", max_digits=12, decimal_places=2,
                                widget=UnfoldAdminDecimalFieldWidget)
    method = forms.ChoiceField(choices=Payment.Method.choices, initial=Payment.Method.MPESA,
                               widget=UnfoldAdminSelectWidget)
    transaction_code = forms.CharField(max_length=40, widget=_text(),
                                       help_text="An M-PESA code is 10 letters or digits, e.g. TL44LDQBWZ.")
    phone = forms.CharField(max_length=20, required=False, widget=_text())
    paid_at = forms.SplitDateTimeField(label="Paid at", required=False, widget=UnfoldAdminSplitDateTimeWidget,
                                       help_text="Empty: now.")
    receipt = forms.FileField(required=False, widget=UnfoldAdminFileFieldWidget,
                              help_text="PDF, PNG or JPEG, at most 5 MB (checked by content).")

    def clean_receipt(self):
        receipt = self.cleaned_data.get("receipt")
        if receipt:
            validate_receipt(receipt)      # payment_record checks again: this is for the message's place
        return receipt

    def clean_registration_number(self):
        number = normalize_registration_number(self.cleaned_data["registration_number"])
        self.student = Student.objects.filter(registration_number=number).first()
        if self.student is None:
            raise ValidationError(f"No student has the registration number {number}.", code="not_found")
        return number


class VerifyByCodeForm(forms.Form):
    transaction_code = forms.CharField(label="M-PESA code", max_length=40,
                                       widget=_text(placeholder="TL44LDQBWZ", autofocus=True),
                                       help_text="10 letters or digits, as on the M-PESA message.")


PAYMENT_ERROR_FIELDS = {"invalid": "transaction_code", "duplicate": "transaction_code", "code": "transaction_code",
                        "not_found": "transaction_code", "amount": "amount", "absurd": "amount",
                        # core/files.py's refusals of the receipt
                        "empty": "receipt", "too_large": "receipt", "bad_content": "receipt",
                        "name_mismatch": "receipt"}


@admin.register(Payment, site=site)
class PaymentAdmin(FinanceModelAdmin):
    list_display = ("transaction_code", "student_display", "amount_display", "method", "paid_at",
                    "verified_display")
    list_select_related = ("student", "verified_by", "recorded_by")
    search_fields = ("transaction_code", "student__registration_number", "student__first_name", "student__last_name")
    search_help_text = "Transaction code or registration number"
    list_filter = ("method", VerifiedFilter, ("paid_at", admin.DateFieldListFilter))
    ordering = ("-paid_at", "-pk")
    actions = ["verify_selected", "release_fin_holds"]
    actions_row = ["verify_one"]
    actions_detail = ["verify_one", "release_fin_hold_one"]
    actions_list = ["verify_by_code", "reconcile_statement"]
    fields = ("transaction_code", "student_display_detail", "amount_display", "method", "phone", "paid_at",
              "recorded_by", "verified_badge", "verified_by", "verified_at", "receipt_link", "fin_hold_display")
    readonly_fields = fields

    @display(description="Receipt")
    def receipt_link(self, obj):
        return file_link(self.admin_site.name, obj)

    def has_add_permission(self, request):
        return request.user.has_perm("core.add_payment")

    def has_verify_permission(self, request, obj=None):
        return request.user.has_perm("core.change_payment")

    @display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return kes(obj.amount)

    @display(description="Verified", ordering="verified_at", label={True: "success", False: "warning"})
    def verified_display(self, obj):
        if obj.verified_at is None:
            return False, "Not verified"
        return True, f"Verified {timezone.localtime(obj.verified_at):%d %b %Y}"

    verified_badge = badge_of(verified_display)

    # --- record -------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        """Recording a payment is a form for payment_record: the code is checked for form and
        duplicates there, and its refusal is shown on the form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RecordPaymentForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                payment = payment_record(student=form.student, amount=data["amount"], method=data["method"],
                                         transaction_code=data["transaction_code"], phone=data["phone"],
                                         paid_at=data["paid_at"], receipt=data["receipt"], acting_user=request.user)
            except ValidationError as exc:
                _form_errors_from(form, exc, PAYMENT_ERROR_FIELDS)
            else:
                self.message_user(request, f"Recorded {payment} for {form.student}.", messages.SUCCESS)
                return HttpResponseRedirect(self.changelist_url())
        return self.form_page(request, form=form, title="Record a payment", submit_label="Record payment",
                              multipart=True)

    # --- verify -------------------------------------------------------------------------------

    @action(description="Verify selected payments", permissions=["verify"], icon="verified")
    def verify_selected(self, request, queryset):
        result = payments_verify(payment_ids=list(queryset.values_list("pk", flat=True)), acting_user=request.user)
        report_bulk_result(self, request, result, done_verb="Verified", noun="payment")

    @action(description="Verify", permissions=["verify"], icon="verified", url_path="verify")
    def verify_one(self, request, object_id):
        payment = self.object_or_404(request, object_id)
        if request.method == "POST":
            result = payments_verify(payment_ids=[payment.pk], acting_user=request.user)
            report_bulk_result(self, request, result, done_verb="Verified", noun="payment")
            return HttpResponseRedirect(self.changelist_url())
        state = (f"Already verified by {payment.verified_by} on {timezone.localtime(payment.verified_at):%d %b %Y}."
                 if payment.is_verified else "Not verified yet.")
        return self.form_page(request, title=f"Verify {payment}", submit_label="Verify payment",
                              items=[f"Student: {payment.student}",
                                     f"Paid at: {timezone.localtime(payment.paid_at):%d %b %Y %H:%M}", state])

    @action(description="Verify by M-PESA code", permissions=["verify"], icon="qr_code_scanner",
            url_path="verify-by-code")
    def verify_by_code(self, request):
        form = VerifyByCodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payment = payment_verify_by_code(transaction_code=form.cleaned_data["transaction_code"],
                                                 acting_user=request.user)
            except ValidationError as exc:
                # every refusal here is about the code: malformed, unknown, or already verified
                _form_errors_from(form, exc, {}, default="transaction_code")
            else:
                self.message_user(request, f"Verified {payment} paid by {payment.student}.", messages.SUCCESS)
                # a fresh form: officers verify codes one after another
                return HttpResponseRedirect(request.path)
        return self.form_page(request, form=form, title="Verify a payment by M-PESA code", submit_label="Verify",
                              intro="Type the code from the M-PESA statement; the payment recorded with it is "
                                    "marked verified.")


    @action(description="Reconcile M-PESA statement", permissions=["verify"], icon="receipt_long",
            url_path="reconcile")
    def reconcile_statement(self, request):
        form = StatementUploadForm(request.POST, request.FILES) if request.method == "POST" else StatementUploadForm()
        if form.is_bound and form.is_valid():
            try:
                result = payments_reconcile_statement(file=form.cleaned_data["file"], acting_user=request.user)
            except ValidationError as exc:        # ImportFileError too: nothing was changed
                _form_errors_from(form, exc, {}, default="file")
            else:
                if result.verify_result.done or result.verify_result.refused:
                    report_bulk_result(self, request, result.verify_result, done_verb="Verified", noun="payment")
                # the saved result's own page: reloading it re-runs nothing
                return HttpResponseRedirect(reverse(f"{self.admin_site.name}:core_statementreconciliation_change",
                                                    args=[result.reconciliation.pk]))
        return self.form_page(request, form=form, title="Reconcile an M-PESA statement", submit_label="Reconcile",
                              multipart=True,
                              intro="Upload the Pay Bill statement exported from the M-PESA portal (CSV). Recorded "
                                    "payments whose code and amount match a line are marked verified; the rest is "
                                    "listed for you to look at, and the result is kept under M-PESA "
                                    "reconciliations.")

    # --- release the FIN hold a covering payment settles ----------------------------------------

    def has_release_hold_permission(self, request, obj=None):
        return request.user.has_perm("core.change_hold") and request.user.has_perm("core.change_payment")

    @display(description="FIN hold")
    def fin_hold_display(self, obj):
        c = payments_hold_coverage([obj])[obj.pk]
        if c.refusal:
            return format_html("<span>Cannot be released with this payment: {}.</span>", c.refusal)
        return format_html(
            "<span>Import #{} shows {}; verified payments since it was applied: {}; left: {} (threshold {}). "
            "“Release FIN hold” releases the hold placed by that import.</span>"
            '<span class="block text-xs mt-1">{}</span>',
            c.balance_import.pk, kes(c.balance), kes(c.paid_since), kes(c.remaining), kes(c.threshold),
            NEXT_IMPORT_AUTHORITATIVE)

    def _release_holds(self, request, ids):
        try:
            result = holds_release_paid(payment_ids=ids, acting_user=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return None
        report_bulk_result(self, request, result, done_verb="Released the FIN hold for", noun="payment")
        if result.done:
            self.message_user(request, NEXT_IMPORT_AUTHORITATIVE, messages.INFO)
        return result

    @action(description="Release FIN hold (payment covers the balance)", permissions=["release_hold"],
            icon="lock_open")
    def release_fin_holds(self, request, queryset):
        self._release_holds(request, list(queryset.values_list("pk", flat=True)))

    @action(description="Release FIN hold", permissions=["release_hold"], icon="lock_open",
            url_path="release-fin-hold")
    def release_fin_hold_one(self, request, object_id):
        payment = self.object_or_404(request, object_id)
        detail_url = reverse(f"{self.admin_site.name}:core_payment_change", args=[payment.pk])
        if request.method == "POST":
            self._release_holds(request, [payment.pk])
            return HttpResponseRedirect(detail_url)
        c = payments_hold_coverage([payment])[payment.pk]
        if c.refusal:
            self.message_user(request, f"The FIN hold cannot be released with {payment.transaction_code}: "
                                       f"{c.refusal}.", messages.WARNING)
            return HttpResponseRedirect(detail_url)
        return self.form_page(
            request, title=f"Release the FIN hold of {payment.student.registration_number}",
            submit_label="Release FIN hold", cancel_url=detail_url, intro=NEXT_IMPORT_AUTHORITATIVE,
            items=[f"Hold #{c.hold.pk} ({c.hold.get_source_display().lower()}): {c.hold.reason}",
                   f"Balance of import #{c.balance_import.pk}: {kes(c.balance)}",
                   f"Verified payments since it was applied "
                   f"({timezone.localtime(c.balance_import.applied_at):%d %b %Y %H:%M}): {kes(c.paid_since)}",
                   f"History reason: {paid_release_reason(payment, c.balance_import)}"])


NEXT_IMPORT_AUTHORITATIVE = ("The next balance import is authoritative: if the finance system still shows a balance "
                             "for the student, that import places the FIN hold again.")


class StatementUploadForm(forms.Form):
    file = forms.FileField(label="M-PESA statement (CSV)", widget=UnfoldAdminFileFieldWidget,
                           help_text="The organisation statement as exported from the M-PESA portal: Receipt No., "
                                     "Completion Time, Paid In and A/C No. columns.")

    def clean_file(self):
        f = self.cleaned_data["file"]
        if not (f.name or "").lower().endswith((".csv", ".txt")):
            raise ValidationError(f"{f.name} is not a CSV file: export the statement from the M-PESA portal as CSV.",
                                  code="extension")
        return f


# --- balance imports ----------------------------------------------------------------------------

@admin.register(BalanceImport, site=site)
class BalanceImportAdmin(FinanceModelAdmin):
    list_display = ("import_display", "uploaded_by", "created_at", "status_display", "rows_total",
                    "updated_count", "unchanged_count", "not_found_count", "error_count")
    list_display_links = ("import_display",)
    list_select_related = ("uploaded_by",)
    search_fields = ("original_name", "sha256")
    list_filter = ("status", ("created_at", admin.DateFieldListFilter))
    ordering = ("-created_at", "-pk")
    actions_list = ["import_balances"]
    actions_detail = ["preview", "download_error_report", "download_not_found"]
    RUNNING = (BalanceImport.Status.UPLOADED, BalanceImport.Status.QUEUED, BalanceImport.Status.APPLYING)
    fieldsets = (
        (None, {"fields": ("original_name", "stored_file", "sha256", "uploaded_by", "created_at", "status_badge",
                           "progress", "applied_at", "failure_reason", "claimed_by", "claimed_at")}),
        ("Counts", {"fields": ("rows_total", "updated_count", "unchanged_count", "not_found_count",
                               "error_count", "records_link")}),
        ("What it did", {"fields": ("outcome_display",)}),
        ("Row errors", {"fields": ("errors_display",)}),
    )
    readonly_fields = ("original_name", "stored_file", "sha256", "uploaded_by", "created_at", "status_badge", "progress",
                       "applied_at", "failure_reason", "claimed_by", "claimed_at", "rows_total", "updated_count", "unchanged_count",
                       "not_found_count", "error_count", "records_link", "errors_display", "outcome_display")

    @display(description="Stored file")
    def stored_file(self, obj):
        return file_link(self.admin_site.name, obj)

    @display(description="File", ordering="original_name")
    def import_display(self, obj):
        return obj.original_name or f"Import #{obj.pk}"

    @display(description="Status", ordering="status",
             label={"applied": "success", "failed": "danger", "cancelled": "info", "applying": "warning", "queued": "warning",
                    "previewed": "primary", "uploaded": "primary"})
    def status_display(self, obj):
        return obj.status, obj.get_status_display()

    status_badge = badge_of(status_display)

    @display(description="Finance records last touched by it")
    def records_link(self, obj):
        url = reverse(f"{self.admin_site.name}:core_financerecord_changelist")
        return format_html('<a class="text-primary-600" href="{}?last_import={}">Show the records</a>', url, obj.pk)

    @display(description="Holds and finance items")
    def outcome_display(self, obj):
        if obj.status != BalanceImport.Status.APPLIED:
            return "Nothing yet: it has not been applied."
        return format_html_join(mark_safe("<br>"), '<a class="text-primary-600" href="{}" id="outcome-{}">{} {}</a>',
                                ((url, key, n, label) for key, n, label, url in self.outcome_links(obj)))

    def outcome_links(self, obj):
        """(key, count, what, the list of those rows) for what an applied import did."""
        outcome = balance_import_outcome(obj)
        holds = reverse(f"{self.admin_site.name}:core_hold_changelist")
        queue = reverse("staff:core_clearanceapproval_changelist")
        return [
            ("holds-placed", outcome.holds_placed, "FIN holds placed", f"{holds}?status=all&import={obj.pk}-placed"),
            ("holds-updated", outcome.holds_updated, "FIN holds changed (amount)",
             f"{holds}?status=all&import={obj.pk}-updated"),
            ("holds-released", outcome.holds_released, "FIN holds released",
             f"{holds}?status=all&import={obj.pk}-released"),
            ("approved", outcome.approvals_approved, "finance items approved", f"{queue}?import={obj.pk}-approved"),
            ("rejected", outcome.approvals_rejected, "finance items rejected", f"{queue}?import={obj.pk}-rejected"),
        ]

    @display(description="Errors")
    def errors_display(self, obj):
        rows = obj.errors or []
        if not rows:
            return "No row errors."
        shown = rows[:500]
        body = format_html_join("", "<tr><td class=\"pr-4\">{}</td><td class=\"pr-4\">{}</td><td>{}</td></tr>",
                                ((r.get("row", ""), r.get("column", ""), r.get("reason", ""))
                                 if isinstance(r, dict) else ("", "", r) for r in shown))
        more = f"… and {len(rows) - len(shown)} more" if len(rows) > len(shown) else ""
        return format_html('<table><thead><tr><th class="pr-4 text-left">Row</th><th class="pr-4 text-left">'
                           'Column</th><th class="text-left">Reason</th></tr></thead><tbody>{}</tbody></table>{}',
                           body, more)

    # --- import: upload → preview → confirm ------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        jobs_sweep_quietly()                # an import whose worker died shows as failed, not running
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        jobs_sweep_quietly()
        return super().change_view(request, object_id, form_url, extra_context)

    def has_finance_permission(self, request, obj=None):
        # obj is the object id from a detail action; the object itself is checked by object_or_404
        return permissions.has_role(request.user, permissions.FINANCE)

    def has_import_permission(self, request, obj=None):
        return (permissions.has_role(request.user, permissions.FINANCE)
                and request.user.has_perm("core.add_balanceimport"))

    def has_confirm_permission(self, request, obj=None):
        return (permissions.has_role(request.user, permissions.FINANCE)
                and request.user.has_perm("core.change_balanceimport"))

    def object_url(self, obj, name="change"):
        return reverse(f"{self.admin_site.name}:core_balanceimport_{name}", args=[obj.pk])

    @action(description="Import balances", permissions=["import"], icon="upload_file", url_path="import",
            variant=ActionVariant.PRIMARY)
    def import_balances(self, request):
        form = BalanceUploadForm(request.POST, request.FILES) if request.method == "POST" else BalanceUploadForm()
        if form.is_bound and form.is_valid():
            try:
                bi = balances_import_submit(file=form.cleaned_data["file"], acting_user=request.user)
            except ValidationError as exc:        # ImportFileError too: nothing was stored
                _form_errors_from(form, exc, {}, default="file")
            else:
                return HttpResponseRedirect(self.object_url(bi, "preview"))
        return self.form_page(request, form=form, title="Import balances", submit_label="Upload and preview",
                              multipart=True,
                              intro=f"Upload the finance system's balances export ({READABLE_KINDS}). Nothing "
                                    "changes until you confirm the preview.")

    @action(description="Preview", permissions=["finance"], icon="fact_check", url_path="preview")
    def preview(self, request, object_id):
        bi = self.object_or_404(request, object_id)
        if request.method != "POST" and bi.status in self.RUNNING:
            jobs_sweep_quietly(only=[bi.pk])
            bi.refresh_from_db()
        if request.method == "POST" and "_preview_again" in request.POST:
            if not self.has_import_permission(request, bi):
                raise PermissionDenied
            try:
                again = balances_service.balances_import_preview_again(balance_import=bi, acting_user=request.user)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return HttpResponseRedirect(self.object_url(bi, "preview"))
            self.message_user(request, f"{again} compares the file of {bi} with the records as they are now.",
                              messages.INFO)
            return HttpResponseRedirect(self.object_url(again, "preview"))
        if request.method == "POST":
            if not self.has_confirm_permission(request, bi):
                raise PermissionDenied
            if "_cancel" in request.POST:
                try:
                    balances_import_cancel(balance_import=bi, acting_user=request.user)
                except ValidationError as exc:
                    self.message_user(request, " ".join(exc.messages), messages.ERROR)
                else:
                    self.message_user(request, f"Cancelled {bi}: nothing was applied.", messages.SUCCESS)
                return HttpResponseRedirect(self.object_url(bi))
            skip = request.POST.get("skip_errors") in ("1", "on", "true")
            background = bi.rows_total > balances_service.ASYNC_ROWS
            apply = balances_import_apply_async if background else balances_import_apply
            try:
                bi = apply(balance_import=bi, acting_user=request.user, skip_errors=skip)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                bi.refresh_from_db()
                code = exc.error_list[0].code if getattr(exc, "error_list", None) else exc.code
                if code in ("has_errors", "another_applying"):     # still confirmable from its preview
                    return HttpResponseRedirect(self.object_url(bi, "preview"))
                return HttpResponseRedirect(self.object_url(bi))
            if background:
                self.message_user(request, f"{bi} is being applied in the background; this page follows it.",
                                  messages.INFO)
                return HttpResponseRedirect(self.object_url(bi, "preview"))
            skipped = (f", {bi.error_count} row{'s' if bi.error_count != 1 else ''} with errors skipped"
                       if bi.error_count else "")
            outcome = balance_import_outcome(bi)
            self.message_user(request, f"Applied {bi}: {bi.updated_count} record{'s' if bi.updated_count != 1 else ''} "
                                       f"updated, {bi.unchanged_count} unchanged, {bi.not_found_count} not "
                                       f"found{skipped}; FIN holds: {outcome.holds_placed} placed, "
                                       f"{outcome.holds_updated} changed, {outcome.holds_released} released; finance "
                                       f"items: {outcome.approvals_approved} approved, {outcome.approvals_rejected} "
                                       "rejected.", messages.SUCCESS)
            return HttpResponseRedirect(self.object_url(bi))
        return self.preview_page(request, bi)

    def preview_page(self, request, bi):
        changed = bi.changed_rows
        shown = changed[:PREVIEW_ROWS]
        not_found = (bi.plan or {}).get("not_found", [])
        running = bi.status in self.RUNNING
        # the reader's warnings: sentences about the file, and a {row, column, reason} per row read with a doubt
        row_warnings = [w for w in bi.warnings or [] if isinstance(w, dict)]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview of {bi}",
            "subtitle": None,
            "opts": self.model._meta,
            "bi": bi,
            "running": running,
            "progress": balance_import_progress(bi),
            "waiting_for": balance_import_applying(exclude=bi.pk) if bi.status == BalanceImport.Status.QUEUED else None,
            "confirm_again": balances_service.can_confirm_again(bi),
            "can_preview_again": (bi.status == BalanceImport.Status.FAILED and bool(bi.file)
                                  and self.has_import_permission(request, bi)),
            "can_confirm": ((bi.status == BalanceImport.Status.PREVIEWED or balances_service.can_confirm_again(bi))
                            and self.has_confirm_permission(request, bi)),
            "changed": [dict(r, old_display="—" if r["old_balance"] is None else kes(Decimal(r["old_balance"])),
                             new_display=kes(Decimal(r["new_balance"])),
                             grad_change=(r["new_graduation_fee_status"]
                                          if r["new_graduation_fee_status"] != r["old_graduation_fee_status"]
                                          else "")) for r in shown],
            "changed_more": len(changed) - len(shown),
            "errors": [e if isinstance(e, dict) else {"row": "", "column": "", "reason": str(e)}
                       for e in (bi.errors or [])[:PREVIEW_ROWS]],
            "errors_more": max(len(bi.errors or []) - PREVIEW_ROWS, 0),
            "notices": [w for w in bi.warnings or [] if not isinstance(w, dict)],
            "row_warnings": row_warnings[:PREVIEW_ROWS],
            "row_warnings_count": len(row_warnings),
            "row_warnings_more": max(len(row_warnings) - PREVIEW_ROWS, 0),
            "not_found": not_found[:PREVIEW_ROWS],
            "not_found_more": max(len(not_found) - PREVIEW_ROWS, 0),
            "detail_url": self.object_url(bi),
            "changelist_url": self.changelist_url(),
            "error_report_url": self.object_url(bi, "download_error_report") if bi.error_count else None,
            "not_found_url": self.object_url(bi, "download_not_found") if bi.not_found_count else None,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "finance/import_preview.html", context)

    # --- error report ---------------------------------------------------------------------------

    def _has_rows(self, request, object_id, field) -> bool:
        """The download is offered (and served) only for an import that has such rows; an id of
        nothing is left to object_or_404 (a 404, as for any import that does not exist)."""
        if not self.has_finance_permission(request):
            return False
        pk = parse_id(object_id) if object_id is not None else None
        return pk is None or not BalanceImport.objects.filter(pk=pk, **{field: 0}).exists()

    def has_error_report_permission(self, request, object_id=None):
        return self._has_rows(request, object_id, "error_count")

    def has_not_found_permission(self, request, object_id=None):
        return self._has_rows(request, object_id, "not_found_count")

    @action(description="Download error report (xlsx)", permissions=["error_report"], icon="download",
            url_path="error-report")
    def download_error_report(self, request, object_id):
        bi = self.object_or_404(request, object_id)
        return xlsx_response(balance_import_error_rows(bi), filename=f"import-{bi.pk}-errors.xlsx",
                             title="Errors", header=("Row", "Column", "Reason", "Value"))

    @action(description="Download the rows not found (xlsx)", permissions=["not_found"], icon="person_search",
            url_path="not-found")
    def download_not_found(self, request, object_id):
        bi = self.object_or_404(request, object_id)
        rows = ((row, reg) for row, reg in (bi.plan or {}).get("not_found", []))
        return xlsx_response(rows, filename=f"import-{bi.pk}-not-found.xlsx", title="Not found",
                             header=("Row", "Registration number in the file"))


PREVIEW_ROWS = 200


def balance_import_error_rows(bi):
    for e in bi.errors or []:
        if isinstance(e, dict):
            yield (e.get("row", ""), e.get("column", ""), e.get("reason", ""), e.get("value", ""))
        else:
            yield ("", "", str(e), "")


def xlsx_response(rows, *, filename, title, header) -> HttpResponse:
    """Rows as a one-sheet xlsx attachment, written by the one neutralising writer."""
    response = HttpResponse(xlsx_bytes(rows, header=header, title=title), content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return protect(response)


class BalanceUploadForm(forms.Form):
    """The file types the balances reader reads (core.imports.balances.READABLE_EXTENSIONS), no more
    and no fewer: the browser's file picker offers them (accept=) and the name is checked against
    them; the content is checked by the reader itself, which goes by the bytes, not the name."""
    EXTENSIONS = READABLE_EXTENSIONS
    file = forms.FileField(label="Balances file",
                           widget=UnfoldAdminFileFieldWidget(attrs={"accept": ",".join(READABLE_EXTENSIONS)}),
                           help_text=f"{READABLE_KINDS}, up to {MAX_FILE_BYTES // 1024 // 1024} MB: a registration "
                                     "number column and a balance column; the header row need not be the first.")

    def clean_file(self):
        f = self.cleaned_data["file"]
        name = (f.name or "").lower()
        if not name.endswith(self.EXTENSIONS):
            raise ValidationError(f"{f.name} is not a spreadsheet: upload an {READABLE_KINDS} file.",
                                  code="extension")
        return f


# long exports wait here (clearance_admin/exports.py)
register_my_exports(site)
