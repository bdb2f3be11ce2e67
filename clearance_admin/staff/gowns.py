"""/staff/ — the gown store (DESIGN.md rule 6), for the reviewers of the GOWN office only.

One scan box takes a registration number (→ the issue form for that student, or why not) or a gown
code (→ the return of that gown, or why not). Returns, one or in bulk, then the deposit's refund,
in full or (damaged) in part. Lists of gowns out, overdue returns and deposits held.

Every page, action and list asks core.permissions.may_run_gown_store through `_store`: anyone else
on /staff/ gets 403 and nothing is done. Writes are core.services.gowns; their refusals are form
errors or messages, row by row for the bulk actions.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.decorators import action, display
from unfold.widgets import (UnfoldAdminDecimalFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminSingleDateWidget,
                            UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget)

from core import permissions
from core.models import NOTES_MAX_LENGTH, REASON_MAX_LENGTH, GownIssuance, Student
from core.money import kes
from core.selectors import gowns as gown_selectors
from core.services import gowns as gown_services

from ..filters import parse_id
from ..mixins import RoleModelAdmin, report_bulk_result
from ..sites import staff_site as site

D = GownIssuance.DepositStatus
DEPOSIT_LABELS = {D.HELD: "warning", D.REFUNDED: "success", D.PART_REFUNDED: "info", D.RETAINED: "danger"}
VIEWS = {"out": "Gowns out", "overdue": "Overdue returns", "held": "Deposits held", "returned": "Returned"}


_kes = kes  # one format for money (core/money.py)


def _day(value) -> str:
    if value is None:
        return "—"
    return f"{timezone.localtime(value):%d %b %Y}" if hasattr(value, "tzinfo") else f"{value:%d %b %Y}"


# --- the sidebar (settings.UNFOLD_STAFF) --------------------------------------------------------

def gown_sidebar_permission(request) -> bool:
    """The gown store's sidebar links: for those who run it (unfold calls this per request)."""
    return permissions.may_run_gown_store(request.user)


def _view_active(view):
    def active(request) -> bool:
        match = request.resolver_match
        return (match is not None and match.url_name == "core_gownissuance_changelist"
                and request.GET.get("view", "") == view)
    return active


sidebar_active_out = _view_active("out")
sidebar_active_overdue = _view_active("overdue")
sidebar_active_held = _view_active("held")


def sidebar_active_scan(request) -> bool:
    match = request.resolver_match
    return match is not None and match.url_name in ("core_gownissuance_scan", "core_gownissuance_issue",
                                                    "core_gownissuance_return_one", "core_gownissuance_refund_one")


# --- forms --------------------------------------------------------------------------------------

class ScanForm(forms.Form):
    code = forms.CharField(
        label="Registration number or gown code", max_length=200, required=False,
        widget=UnfoldAdminTextInputWidget(attrs={"autofocus": True, "autocomplete": "off",
                                                 "placeholder": "SCE/CS/0001/2022 or G-0042"}),
        help_text="Type or scan: a registration number opens the issue form, a gown code that is out opens "
                  "its return.")


class IssueForm(forms.Form):
    gown_code = forms.CharField(label="Gown code", max_length=GownIssuance._meta.get_field("gown_code").max_length,
                                widget=UnfoldAdminTextInputWidget(attrs={"autofocus": True, "autocomplete": "off"}),
                                help_text="Scan the gown's tag or type its code.")
    size = forms.ChoiceField(label="Size", choices=[("", "— choose —"), *GownIssuance.Size.choices],
                             widget=UnfoldAdminSelectWidget)
    deposit = forms.DecimalField(label="Deposit (KES)", max_digits=12, decimal_places=2,
                                 widget=UnfoldAdminDecimalFieldWidget)
    expected_return_on = forms.DateField(label="Expected back on", widget=UnfoldAdminSingleDateWidget,
                                         help_text="Today or later.")


class ReturnForm(forms.Form):
    damage_notes = forms.CharField(
        label="Damage", required=False, max_length=NOTES_MAX_LENGTH,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, "placeholder": "Leave empty if it came back in good "
                                                                          "condition"}),
        help_text="What is wrong with it, if anything. A damaged gown's deposit may be refunded in part.")


class RefundForm(forms.Form):
    amount = forms.DecimalField(label="Refund (KES)", max_digits=12, decimal_places=2,
                                widget=UnfoldAdminDecimalFieldWidget)
    retained_reason = forms.CharField(
        label="Why the rest is kept", required=False, max_length=REASON_MAX_LENGTH,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        help_text="Required when less than the deposit is refunded (only for a gown that came back damaged).")


def _form_error(form, exc: ValidationError) -> None:
    form.add_error(None, exc.messages)


# --- the list ------------------------------------------------------------------------------------

class GownViewFilter(admin.SimpleListFilter):
    title = "show"
    parameter_name = "view"

    def lookups(self, request, model_admin):
        return list(VIEWS.items())

    def queryset(self, request, queryset):
        value = self.value()
        if value == "out":
            return gown_selectors.gowns_out(queryset)
        if value == "overdue":
            return gown_selectors.gowns_overdue(queryset)
        if value == "held":
            return gown_selectors.deposits_held(queryset)
        if value == "returned":
            return queryset.filter(returned_at__isnull=False)
        return queryset


@admin.register(GownIssuance, site=site)
class GownIssuanceAdmin(RoleModelAdmin):
    list_display = ("gown_column", "student_column", "issued_column", "return_column", "deposit_column")
    list_display_links = ("gown_column",)
    list_select_related = ("student", "issued_by")
    list_filter = (GownViewFilter, "deposit_status", "size")
    list_filter_submit = True
    search_fields = ("gown_code", "student__registration_number", "student__first_name", "student__last_name")
    search_help_text = "Gown code, registration number or student name"
    ordering = ("-issued_at", "-pk")
    actions = ["return_selected", "refund_selected"]
    actions_list = ["scan"]
    actions_row = ["return_one", "refund_one"]
    actions_detail = ["return_one", "refund_one"]
    counts_unseen_itself = True      # the services refuse ids of no gown, row by row
    scope_refusal = "The gown store is run by the gown office's staff."
    readonly_fields = ("student_info", "gown_code", "size", "issued_info", "due_info", "returned_info",
                       "deposit_info", "damage_notes", "retained_reason", "history_table")
    fields = readonly_fields

    # who: the gown office's reviewers, on every page and action

    def _store(self, request) -> bool:
        return permissions.may_run_gown_store(request.user)

    def scope(self, request, queryset):
        return queryset if self._store(request) else queryset.none()

    def has_module_permission(self, request):
        return self._store(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._store(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False        # issued from the scan box, by a student's registration number

    def has_change_permission(self, request, obj=None):
        return False        # changed only by the actions below, through the services

    def has_delete_permission(self, request, obj=None):
        return False

    def has_store_permission(self, request, object_id=None):
        return self._store(request) and request.user.has_perm("core.change_gownissuance")

    def has_issue_permission(self, request, object_id=None):
        return self._store(request) and request.user.has_perm("core.add_gownissuance")

    def changelist_view(self, request, extra_context=None):
        title = VIEWS.get(request.GET.get("view", ""), "Gowns")
        return super().changelist_view(request, {**(extra_context or {}), "title": title})

    def get_urls(self):
        issue = path("issue/<int:student_id>/", self.admin_site.admin_view(self.issue_view),
                     name="core_gownissuance_issue")
        return [issue, *super().get_urls()]

    # columns (everything from the row and its select_related: no query per row)

    @display(description="Gown", ordering="gown_code", header=True)
    def gown_column(self, obj):
        return obj.gown_code, obj.get_size_display()

    @display(description="Student", ordering="student__registration_number", header=True)
    def student_column(self, obj):
        return obj.student.registration_number, obj.student.full_name

    @display(description="Issued", ordering="issued_at")
    def issued_column(self, obj):
        return format_html('{}<br><span class="text-base-500">{}</span>', _day(obj.issued_at), obj.issued_by or "")

    @display(description="Return", ordering="expected_return_on")
    def return_column(self, obj):
        if obj.returned_at is not None:
            if obj.damage_notes:
                return format_html('back {}<br><span class="text-red-600 dark:text-red-400">damaged: {}</span>',
                                   _day(obj.returned_at), obj.damage_notes[:60])
            return format_html('back {}', _day(obj.returned_at))
        if obj.is_overdue():
            days = (timezone.localdate() - obj.expected_return_on).days
            return format_html('<span class="font-semibold text-red-600 dark:text-red-400">due {}<br>{} day{} '
                               'overdue</span>', _day(obj.expected_return_on), days, "" if days == 1 else "s")
        return format_html('<span class="text-base-500">out</span> · due {}', _day(obj.expected_return_on))

    @display(description="Deposit", ordering="deposit_status", label=DEPOSIT_LABELS)
    def deposit_column(self, obj):
        if obj.deposit_status == D.HELD:
            return obj.deposit_status, f"{_kes(obj.deposit)} held"
        if obj.deposit_status == D.REFUNDED:
            return obj.deposit_status, f"{_kes(obj.refunded_amount)} refunded"
        if obj.deposit_status == D.RETAINED:
            return obj.deposit_status, f"{_kes(obj.deposit)} retained"
        return obj.deposit_status, f"{_kes(obj.refunded_amount)} of {_kes(obj.deposit)} refunded"

    # the detail page

    @display(description="Student")
    def student_info(self, obj):
        s = obj.student
        return format_html('{} — {}<br><span class="text-base-500">{} · cohort {}</span>', s.registration_number,
                           s.full_name, s.programme, s.expected_graduation_year)

    @display(description="Issued")
    def issued_info(self, obj):
        return f"{timezone.localtime(obj.issued_at):%d %b %Y %H:%M} by {obj.issued_by or '—'}"

    @display(description="Expected back")
    def due_info(self, obj):
        late = obj.is_overdue()
        return f"{_day(obj.expected_return_on)}" + (
            f" — {(timezone.localdate() - obj.expected_return_on).days} days overdue" if late else "")

    @display(description="Returned")
    def returned_info(self, obj):
        return f"{timezone.localtime(obj.returned_at):%d %b %Y %H:%M}" if obj.returned_at else "Not yet (out)"

    @display(description="Deposit")
    def deposit_info(self, obj):
        text = f"{_kes(obj.deposit)} — {obj.get_deposit_status_display().lower()}"
        if obj.deposit_status != D.HELD:
            text += f", {_kes(obj.refunded_amount)} refunded"
            if obj.deposit_settled_at:
                text += f" on {_day(obj.deposit_settled_at)} by {obj.deposit_settled_by or '—'}"
        return text

    @display(description="History")
    def history_table(self, obj):
        records = obj.history.select_related("history_user").order_by("-history_date", "-history_id")[:30]
        rows = [(timezone.localtime(r.history_date).strftime("%d %b %Y %H:%M"), r.history_user or "system",
                 r.history_change_reason or "—") for r in records]
        if not rows:
            return "No history."
        body = format_html_join("", '<tr class="border-t border-base-200 dark:border-base-800"><td class="px-3 py-2">'
                                    '{}</td><td class="px-3 py-2">{}</td><td class="px-3 py-2">{}</td></tr>', rows)
        return format_html('<table class="text-sm w-full"><thead><tr><th class="font-semibold px-3 py-2 text-left">'
                           'When</th><th class="font-semibold px-3 py-2 text-left">Who</th><th class="font-semibold '
                           'px-3 py-2 text-left">What</th></tr></thead><tbody>{}</tbody></table>', body)

    # pages

    def _url(self, name, *args):
        return reverse(f"{self.admin_site.name}:core_gownissuance_{name}", args=args)

    def _page(self, request, *, title, form=None, submit_label="", intro="", facts=(), refusal=None, links=(),
              action_url="", method="post", hidden=(), variant="primary", template="staff/gown_page.html", **extra):
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "title": title, "subtitle": None, "opts": self.model._meta,
            "form": form, "submit_label": submit_label, "intro": intro, "facts": facts, "refusal": refusal,
            "links": links, "action_url": action_url, "method": method, "hidden": hidden, "variant": variant,
            "changelist_url": self._url("changelist"), "scan_url": self._url("scan"), **extra})

    def _gown(self, request, object_id) -> GownIssuance:
        pk = parse_id(object_id)
        gown = self.get_queryset(request).select_related("student__programme", "issued_by").filter(pk=pk).first() \
            if pk is not None else None
        if gown is None:
            raise Http404("No such gown.")
        return gown

    def _gown_facts(self, gown):
        facts = [("Gown", f"{gown.gown_code} — {gown.get_size_display()}"),
                 ("Student", f"{gown.student.registration_number} — {gown.student.full_name}"),
                 ("Issued", f"{_day(gown.issued_at)} by {gown.issued_by or '—'}"),
                 ("Expected back", _day(gown.expected_return_on)
                  + (f" — {(timezone.localdate() - gown.expected_return_on).days} days overdue"
                     if gown.is_overdue() else "")),
                 ("Deposit", f"{_kes(gown.deposit)} ({gown.get_deposit_status_display().lower()})")]
        if gown.returned_at:
            facts.append(("Returned", _day(gown.returned_at)))
        if gown.damage_notes:
            facts.append(("Damage", gown.damage_notes))
        return facts

    @action(description="Issue or take back", permissions=["store"], icon="qr_code_scanner", url_path="scan",
            variant="primary")
    def scan(self, request):
        """The scan box: GET ?code=… so the scanner's Enter submits it and Back returns to it."""
        form = ScanForm(request.GET or None)
        refusal, links = None, []
        if form.is_bound and form.is_valid() and form.cleaned_data["code"].strip():
            found = gown_selectors.gown_scan(form.cleaned_data["code"])
            if found.kind == "issue":
                return HttpResponseRedirect(self._url("issue", found.student.pk))
            if found.kind == "return":
                return HttpResponseRedirect(self._url("return_one", found.gown.pk))
            refusal = found.message
            links = self._refusal_links(found)
        elif form.is_bound and not form.errors:
            refusal = "Type or scan a registration number or a gown code."
        form = ScanForm()       # empty again: the next scan must not be appended to this one
        return self._page(request, title="Gown store: issue or take back", form=form, submit_label="Find",
                          method="get", refusal=refusal, links=links, figures=gown_selectors.gown_store_figures(),
                          view_urls={v: f"{self._url('changelist')}?view={v}" for v in VIEWS},
                          template="staff/gown_scan.html")

    def _refusal_links(self, found):
        gown = found.gown
        if gown is None:
            return []
        if gown.returned_at is None:
            return [(f"Take gown {gown.gown_code} back", self._url("return_one", gown.pk))]
        if gown.deposit_status == D.HELD:
            return [(f"Refund the deposit of gown {gown.gown_code}", self._url("refund_one", gown.pk))]
        return [(f"Gown {gown.gown_code}", self._url("change", gown.pk))]

    def issue_view(self, request, student_id):
        if not self.has_issue_permission(request):
            raise PermissionDenied
        student = get_object_or_404(Student.objects.select_related("programme"), pk=student_id)
        facts = [("Student", f"{student.registration_number} — {student.full_name}"),
                 ("Programme", f"{student.programme} · cohort {student.expected_graduation_year}")]
        out = gown_selectors.gown_out_of(student)
        refusal = (f"{student.registration_number} already has gown {out.gown_code} out; take it back first."
                   if out else gown_selectors.not_cleared_reason(student))
        if refusal and request.method != "POST":
            links = [(f"Take gown {out.gown_code} back", self._url("return_one", out.pk))] if out else []
            return self._page(request, title=f"Issue a gown to {student.registration_number}", facts=facts,
                              refusal=refusal, links=links)
        form = IssueForm(request.POST if request.method == "POST" else None, initial={
            "deposit": GownIssuance._meta.get_field("deposit").default,
            "expected_return_on": gown_selectors.default_return_date()})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                gown = gown_services.gown_issue(student=student, gown_code=data["gown_code"], size=data["size"],
                                                deposit=data["deposit"], expected_return_on=data["expected_return_on"],
                                                acting_user=request.user)
            except ValidationError as exc:
                _form_error(form, exc)
            else:
                self.message_user(request, f"Gown {gown.gown_code} ({gown.get_size_display()}) issued to "
                                           f"{student.registration_number} — {student.full_name}; deposit "
                                           f"{_kes(gown.deposit)} held; expected back {_day(gown.expected_return_on)}.",
                                  messages.SUCCESS)
                return HttpResponseRedirect(self._url("scan"))
        return self._page(request, title=f"Issue a gown to {student.registration_number}", form=form, facts=facts,
                          submit_label="Issue gown")

    @action(description="Take back", permissions=["store"], icon="assignment_return", url_path="return")
    def return_one(self, request, object_id):
        gown = self._gown(request, object_id)
        form = ReturnForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                gown = gown_services.gown_return(gown=gown, acting_user=request.user,
                                                 damage_notes=form.cleaned_data["damage_notes"])
            except ValidationError as exc:
                _form_error(form, exc)
            else:
                self.message_user(request, f"Gown {gown.gown_code} returned by {gown.student.registration_number}"
                                           + (" (damaged)" if gown.damage_notes else "") + ". Now settle the deposit.",
                                  messages.SUCCESS)
                return HttpResponseRedirect(self._url("refund_one", gown.pk))
        title = f"Take back gown {gown.gown_code}"
        if gown.returned_at and request.method != "POST":
            return self._page(request, title=title, facts=self._gown_facts(gown),
                              refusal=f"Gown {gown.gown_code} is not out: it was returned on {_day(gown.returned_at)}.",
                              links=self._refusal_links(gown_selectors.ScanResult("refused", gown=gown)))
        return self._page(request, title=title, form=form, facts=self._gown_facts(gown), submit_label="Record return")

    @action(description="Refund deposit", permissions=["store"], icon="payments", url_path="refund")
    def refund_one(self, request, object_id):
        gown = self._gown(request, object_id)
        form = RefundForm(request.POST if request.method == "POST" else None, initial={"amount": gown.deposit})
        if not gown.damage_notes:
            del form.fields["retained_reason"]      # an undamaged gown's deposit is refunded in full
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                gown = gown_services.gown_deposit_refund(gown=gown, acting_user=request.user, amount=data["amount"],
                                                         retained_reason=data.get("retained_reason", ""))
            except ValidationError as exc:
                _form_error(form, exc)
            else:
                kept = gown.deposit - gown.refunded_amount
                self.message_user(request, f"Deposit of gown {gown.gown_code}: {_kes(gown.refunded_amount)} refunded to "
                                           f"{gown.student.registration_number}"
                                           + (f", {_kes(kept)} kept ({gown.retained_reason})." if kept else "."),
                                  messages.SUCCESS)
                return HttpResponseRedirect(self._url("scan"))
        title = f"Refund the deposit of gown {gown.gown_code}"
        refusal = None
        if request.method != "POST":
            if gown.returned_at is None:
                refusal = "The gown is still out: the deposit is refunded only after it is returned."
            elif gown.deposit_status != D.HELD:
                refusal = f"This deposit was already settled ({gown.get_deposit_status_display().lower()})."
        if refusal:
            links = [(f"Take gown {gown.gown_code} back", self._url("return_one", gown.pk))] if gown.is_out else []
            return self._page(request, title=title, facts=self._gown_facts(gown), refusal=refusal, links=links)
        intro = ("It came back damaged: refund the whole deposit, part of it, or nothing, and say why the rest is kept."
                 if gown.damage_notes else "It came back in good condition: the deposit is refunded in full.")
        return self._page(request, title=title, form=form, facts=self._gown_facts(gown), intro=intro,
                          submit_label="Refund")

    # bulk, from the list

    def _posted_ids(self, request, queryset) -> list[int]:
        """The ids as posted (an id of no gown reaches the service and is refused as such); with
        "select all", the filtered list."""
        if request.POST.get("select_across") == "1":
            return list(queryset.values_list("pk", flat=True))
        return [pk for pk in (parse_id(v) for v in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
                if pk is not None]

    def _confirm_page(self, request, queryset, *, action_name, title, intro, submit_label, form=None):
        ids = self._posted_ids(request, queryset)
        shown = list(self.get_queryset(request).select_related("student").filter(pk__in=ids[:50]))
        items = [f"{g.gown_code} — {g.student.registration_number} {g.student.full_name}" for g in shown]
        if len(ids) > len(shown):
            items.append(f"… and {len(ids) - len(shown)} more")
        hidden = [("action", action_name), ("confirm", "yes"), *((helpers.ACTION_CHECKBOX_NAME, pk) for pk in ids)]
        return self._page(request, title=title, intro=intro, form=form, submit_label=submit_label, hidden=hidden,
                          facts=[("Selected", f"{len(ids)} gown{'s' if len(ids) != 1 else ''}")], items=items,
                          action_url=request.get_full_path())

    @action(description="Take back selected…", permissions=["store"])
    def return_selected(self, request, queryset):
        form = ReturnForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            result = gown_services.gowns_return(gown_ids=self._posted_ids(request, queryset), acting_user=request.user,
                                                damage_notes=form.cleaned_data["damage_notes"])
            report_bulk_result(self, request, result, done_verb="Took back", noun="gown")
            return None
        return self._confirm_page(request, queryset, action_name="return_selected", title="Take back the selected gowns",
                                  intro="Each selected gown is recorded as returned now. A damage note here goes on "
                                        "every one of them; take a damaged gown back on its own page instead.",
                                  submit_label="Record returns", form=form)

    @action(description="Refund selected deposits in full…", permissions=["store"])
    def refund_selected(self, request, queryset):
        if request.POST.get("confirm") == "yes":
            result = gown_services.gowns_deposit_refund(gown_ids=self._posted_ids(request, queryset),
                                                        acting_user=request.user)
            report_bulk_result(self, request, result, done_verb="Refunded the deposit of", noun="gown")
            return None
        return self._confirm_page(request, queryset, action_name="refund_selected",
                                  title="Refund the selected deposits in full",
                                  intro="Each selected gown that is back undamaged has its whole deposit refunded. "
                                        "Gowns still out, damaged or already settled are refused and listed.",
                                  submit_label="Refund in full")
