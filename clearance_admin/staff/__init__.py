"""/staff/ — department staff review the clearance items of their own offices (DESIGN.md).

Everything here is scoped through core.permissions (approvals_for, holds_for, reviewable and granted
departments) in each admin's `scope()`, so the list, the detail page, every action and a hand-typed
URL answer the same question. Writes go through core.services; refusals become messages or form
errors, never a 500.

Forms that write call their one service at the end of validation (`ServiceForm`): a refusal then
shows as a form error next to what the clerk typed, and nothing is written by the admin itself
(`save_model` only takes the service's result).
"""
from __future__ import annotations

import datetime

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.forms.models import construct_instance
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from unfold.contrib.filters.admin import DropdownFilter
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from core import permissions
from core.models import (REASON_MAX_LENGTH, ClearanceApproval, Delegation, Department, Hold, Student, User,
                         normalize_registration_number)
from core.money import kes
from core.selectors import staff as staff_selectors
from core.services import approvals as approval_services
from core.services import delegations as delegation_services
from core.services import holds as hold_services
from core.services._common import BulkResult

from .. import compact
from ..downloads import file_link
from ..filters import ApprovalsOfImportFilter, parse_id, student_filters
from ..mixins import RoleModelAdmin, report_bulk_result, run_service
from ..exports import register_my_exports
from ..changelists import RememberingChangeList
from ..paginators import CappedCountPaginator
from ..sites import staff_site as site
from .decisions import (DECISIONS, DECISIONS_BY_STATUS, NEEDS_REASON, DecideForm, HoldEndForm, ItemForm,
                        decision_page)
from .queue import QueueFilter, filter_chips, next_after, preserved_filters, queue_cursor, queue_queryset, with_filters

site.index_template = "staff/index.html"

A = ClearanceApproval.Status
STATUS_LABELS = {A.PENDING: "warning", A.APPROVED: "success", A.REJECTED: "danger", A.WAIVED: "info"}
HOLD_LABELS = {Hold.Status.ACTIVE: "danger", Hold.Status.RELEASED: "success", Hold.Status.WAIVED: "info"}


_kes = kes  # one format for money (core/money.py); "" for no amount


def _selected_ids(request, queryset) -> list[int]:
    """The ids the user ticked, as posted — not narrowed to the scoped queryset, so rows that are
    not theirs reach the service and are reported as refused ("not yours"). With "select all",
    the scoped changelist query is the selection."""
    if request.POST.get("select_across") == "1":
        return list(queryset.values_list("pk", flat=True))
    ids = []
    for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    return ids


SEEN = "seen"          # one "<id>:<state_token>" per row the page showed
SEEN_AT = "seen_at"    # when the page was made: what a "select all" across pages is checked against


def _seen_input(obj) -> str:
    return format_html('<input type="hidden" name="{}" value="{}:{}"><input type="hidden" name="{}" value="{}">',
                       SEEN, obj.pk, obj.state_token, SEEN_AT, timezone.now().isoformat())


def _seen_state(request) -> dict:
    """What the clerk saw, as posted by the list (or carried through the reason page): keyword
    arguments for the decision services. Junk is ignored, never a 500."""
    seen = {}
    for value in request.POST.getlist(SEEN):
        pk, _, token = str(value).partition(":")
        if parse_id(pk) is not None and token:
            seen[parse_id(pk)] = token
    seen_at = None
    raw = request.POST.get(SEEN_AT)
    if raw:
        try:
            seen_at = datetime.datetime.fromisoformat(raw)
        except ValueError:
            seen_at = None
        if seen_at is not None and timezone.is_naive(seen_at):
            seen_at = None
    return {"seen": seen, "seen_at": seen_at}


class ReleaseReasonForm(forms.Form):
    """What settled the holds released together (optional, kept on each hold, as on the hold page)."""

    reason = forms.CharField(label="What settled it", required=False, max_length=REASON_MAX_LENGTH,
                             widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
                             help_text="Optional (e.g. “Books returned 3 Dec”). Kept on each hold.")

    def clean_reason(self):
        return (self.cleaned_data.get("reason") or "").strip()


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason", max_length=REASON_MAX_LENGTH, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=f"The student reads this reason. Up to {REASON_MAX_LENGTH:,} characters.",
        error_messages={"required": "Write the reason; the student reads it."})

    def clean_reason(self):
        reason = (self.cleaned_data.get("reason") or "").strip()
        if not reason:
            raise ValidationError("Write the reason; the student reads it.", code="required")
        return reason


CONFIRM_SHOWN = 50   # names listed on a confirmation page; the count says the rest


def _reason_action(modeladmin, request, queryset, *, title, verb, submit, noun, run, form_class=ReasonForm,
                   describe=str, variant="danger"):
    """A bulk action that asks first: an intermediate page naming the selected rows with their
    count (and the reason's form, unless `form_class` is None); on confirmation `run(ids, reason)`
    calls the service. An empty reason shows the form again with an error and changes nothing."""
    ids = _selected_ids(request, queryset)
    if request.POST.get("confirm") == "yes":
        form = form_class(request.POST) if form_class else None
        if form is None or form.is_valid():
            result = run(ids, form.cleaned_data["reason"] if form else None)
            if result is not None:
                report_bulk_result(modeladmin, request, result, done_verb=verb, noun=noun)
            return None
    else:
        form = form_class() if form_class else None
    opts = modeladmin.model._meta
    # whom it changes, from the user's own scope (foreign ids are refused and counted by the service)
    shown = [describe(obj) for obj in modeladmin.get_queryset(request).select_related(*modeladmin.list_select_related)
             .prefetch_related(None).filter(pk__in=ids[:CONFIRM_SHOWN]).order_by("pk")]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "form": form,
        "ids": ids,
        "count": len(ids),
        "shown": shown,
        "more": max(len(ids) - len(shown), 0),
        "action_name": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        # what the clerk saw on the list, carried to the confirmation
        "seen": request.POST.getlist(SEEN),
        "seen_at": request.POST.get(SEEN_AT, ""),
        # back to the list as it was (filters and search kept)
        "changelist_url": request.get_full_path(),
        "submit_label": submit,
        "submit_variant": variant,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "staff/action_reason.html", context)


class ServiceForm(forms.ModelForm):
    """A ModelForm whose last validation step calls the service the admin attached (`perform`).
    A refusal from the service becomes a form error and rolls back what it started."""

    perform = None  # set by the admin: callable(form) -> result
    service_result = None

    def _post_clean(self):
        # ModelForm._post_clean without the database constraints: the service is the authority on
        # the rules and says why in the clerk's words; the constraints stay as the backstop.
        try:
            self.instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        except ValidationError as exc:
            self._update_errors(exc)
        try:
            self.instance.full_clean(exclude=self._get_validation_exclusions(), validate_unique=False,
                                     validate_constraints=False)
        except ValidationError as exc:
            self._update_errors(exc)
        if not self.errors and self.perform is not None:
            try:
                self.service_result = type(self).perform(self)
            except ValidationError as exc:
                self.add_error(None, exc.messages)


class ServiceAdminMixin:
    """The admin half of ServiceForm: the form has done the write; the admin does not save."""

    def perform(self, request, form):
        raise NotImplementedError

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        admin_self = self
        return type(form.__name__, (form,), {"perform": lambda f: admin_self.perform(request, f)})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # one button: the service reports and the list shows the result
        extra_context = {**(extra_context or {}), "show_save_and_add_another": False,
                         "show_save_and_continue": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        pass  # the service wrote it in ServiceForm._post_clean

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        if obj.pk:  # the history table keeps the full record; the admin log only what has a row
            return super().log_addition(request, obj, message)
        return None


# --- filters ------------------------------------------------------------------------------------

def _my_departments(request) -> list[Department]:
    """The offices the user reviews today, read once per request (two filters use them)."""
    if not hasattr(request, "_staff_departments"):
        request._staff_departments = list(permissions.reviewable_departments(request.user).order_by("code"))
    return request._staff_departments


class DepartmentFilter(DropdownFilter):
    title = "department"
    parameter_name = "department"

    def lookups(self, request, model_admin):
        return [(str(d.pk), f"{d.code} — {d.name}") for d in _my_departments(request)]

    def queryset(self, request, queryset):
        value = parse_id(self.value())
        return queryset if value is None else queryset.filter(department_id=value)


class StageFilter(admin.SimpleListFilter):
    title = "stage"
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        stages = sorted({d.stage for d in _my_departments(request)})
        return [(str(s), f"Stage {s}") for s in stages]

    def queryset(self, request, queryset):
        value = parse_id(self.value())
        return queryset if value is None else queryset.filter(department__stage=value)


SchoolFilter, ProgrammeFilter, CohortFilter = student_filters("request__student")


class OverdueFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Within SLA or decided")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return staff_selectors.approvals_overdue(queryset)
        if self.value() == "no":
            return staff_selectors.approvals_not_overdue(queryset)
        return queryset


# --- clearance approvals (the queue) ------------------------------------------------------------

QUEUE_SEEN = "clearance_queue_seen"


def queue_badge(request) -> str:
    """Sidebar badge on "Clearance queue": items that came into the reviewer's offices since they
    last opened the queue (all waiting items, the first time); nothing when there are none."""
    from django.utils.dateparse import parse_datetime
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name == "core_clearanceapproval_changelist":
        return ""                       # on the queue itself: what it shows is what is new
    seen = parse_datetime(request.get_signed_cookie(QUEUE_SEEN, default="", salt=QUEUE_SEEN) or "")
    waiting = permissions.approvals_for(request.user).filter(status=ClearanceApproval.Status.PENDING)
    if seen is not None:
        waiting = waiting.filter(waiting_since__gt=seen)
    count = waiting.count()
    return f"{count} new" if count else ""


def _resubmitted(obj) -> bool:
    """Back from the student: pending again with the student's response to the office."""
    return obj.status == A.PENDING and bool(obj.student_response)


def _approval_label(obj) -> str:
    student = obj.request.student
    return f"{student.registration_number} — {student.full_name} ({obj.department.code})"


@admin.register(ClearanceApproval, site=site)
class ClearanceApprovalAdmin(RoleModelAdmin):
    form = ItemForm
    change_form_template = "staff/approval_change_form.html"
    list_before_template = "staff/queue_chips.html"
    counts_unseen_itself = True     # the decision services count what is not in the clerk's queue
    list_display = ("student_column", "programme_column", "department_column", "status_badge", "waiting_column",
                    "holds_column")
    list_display_links = ("student_column",)
    list_select_related = ("request__student__programme", "department")
    list_filter = (QueueFilter, DepartmentFilter, "status", StageFilter, SchoolFilter, ProgrammeFilter, CohortFilter,
                   OverdueFilter, ApprovalsOfImportFilter)
    list_filter_submit = True
    search_fields = ("request__student__registration_number", "request__student__first_name",
                     "request__student__last_name")
    search_help_text = "Registration number or student name"
    ordering = ("waiting_since", "pk")
    actions = ["approve_selected", "reject_selected", "reopen_selected"]
    # the decisions as unfold detail actions (their own URLs, permission-checked by unfold and again
    # in `decide`); the item page shows them as buttons beside the form that carries note and evidence
    actions_detail = ["approve_item", "reject_item", "waive_item", "reopen_item"]
    readonly_fields = ("student_info", "department", "status_text", "waiting_column", "decided_info",
                       "reason_text", "response_text", "response_file_link", "evidence_link", "student_holds",
                       "history_table")
    fieldsets = (
        ("Clearance item", {"fields": ("student_info", "department", "status_text", "waiting_column",
                                       "decided_info", "reason_text", "response_text", "response_file_link",
                                       "evidence_link")}),
        ("With the decision", {"fields": ("notes", "evidence_file", "seen")}),
        ("The student's holds (every office)", {"fields": ("student_holds",)}),
        ("History", {"fields": ("history_table",)}),
    )
    scope_refusal = "This clearance item belongs to an office you do not review."

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and getattr(response, "status_code", 200) == 200:
            cl = getattr(response, "context_data", {}).get("cl")
            if cl is not None:
                response.context_data["filter_chips"] = filter_chips(cl)
            # the badge counts from here (a signed cookie: no write to the session on every look)
            response.set_signed_cookie(QUEUE_SEEN, timezone.now().isoformat(), salt=QUEUE_SEEN, httponly=True,
                                       samesite="Lax", secure=settings.SESSION_COOKIE_SECURE, max_age=90 * 86400)
        return response

    def scope(self, request, queryset):
        return queryset & permissions.approvals_for(request.user)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(staff_selectors.active_holds_prefetch())

    # speed at a million items (DESIGN.md "Budgets"): the search through an index, no COUNT(*) of the queue

    def get_search_results(self, request, queryset, search_term):
        return staff_selectors.approvals_matching(queryset, search_term), False

    def get_changelist(self, request, **kwargs):
        return RememberingChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return CappedCountPaginator(queryset, per_page, orphans=orphans, allow_empty_first_page=allow_empty_first_page,
                                    page=parse_id(request.GET.get("p")) or 1)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request, obj=None):
        # unfold passes the URL's id: another office's item is refused with the reason (get_object)
        if isinstance(obj, str):
            obj = self.get_object(request, unquote(obj))
        return self.has_change_permission(request, obj)

    def get_actions_detail(self, request, object_id):
        return []   # drawn as the buttons of the item page (staff/approval_change_form.html), not as tabs

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not DECISIONS_BY_STATUS.get(obj.status):
            return tuple(fs for fs in self.fieldsets if fs[0] != "With the decision")
        return self.fieldsets

    def get_urls(self):
        from django.urls import path
        skip = path("<path:object_id>/next/", self.admin_site.admin_view(self.next_view),
                    name="core_clearanceapproval_next")
        return [skip, *super().get_urls()]

    # columns

    @display(description="Student", ordering="request__student__registration_number")
    def student_column(self, obj):
        student = obj.request.student
        return compact.header(student.registration_number, student.full_name)

    @display(description="Programme", ordering="request__student__programme__code")
    def programme_column(self, obj):
        return obj.request.student.programme.name

    @display(description="Department", ordering="department__code")
    def department_column(self, obj):
        return obj.department.code

    @display(description="Status", ordering="status")
    def status_badge(self, obj):
        badge = compact.label(obj.get_status_display(), STATUS_LABELS.get(obj.status))
        if not _resubmitted(obj):
            return badge
        return format_html('{} <span class="bg-blue-100 font-semibold px-2 py-1 rounded-default text-blue-700 '
                           'text-xs" title="{}" data-resubmitted="{}">re-submitted</span>'
                           '<div class="italic text-base-500 text-xs truncate" title="{}">“{}”</div>',
                           badge, obj.student_response, obj.pk, obj.student_response,
                           Truncator(obj.student_response).chars(60))

    @display(description="Status")
    def status_text(self, obj):
        return self.status_badge(obj)

    @display(description="Days waiting", ordering="waiting_since")
    def waiting_column(self, obj):
        days = obj.days_waiting
        if obj.status != A.PENDING:
            return format_html('<span class="text-base-500">decided after {} d</span>', days)
        if obj.is_overdue:
            return format_html('<span class="font-semibold text-red-600 dark:text-red-400" title="SLA {} days">'
                               '{} d — overdue</span>', obj.department.sla_days, days)
        return f"{days} d"

    @display(description="Holds of this office")
    def holds_column(self, obj):
        holds = [h for h in getattr(obj.request.student, "active_holds", ()) if h.department_id == obj.department_id]
        if not holds:
            return "—"
        return format_html_join(mark_safe("<br>"), '<span class="text-red-600 dark:text-red-400">{}{}</span>',
                                ((h.reason, f" ({_kes(h.amount)})" if h.amount is not None else "") for h in holds))

    # detail

    @display(description="Student")
    def student_info(self, obj):
        s = obj.request.student
        return format_html("{} — {}<br><span class=\"text-base-500\">{} · cohort {} · {}</span>",
                           s.registration_number, s.full_name, s.programme, s.expected_graduation_year,
                           obj.request.cycle)

    @display(description="Decided")
    def decided_info(self, obj):
        if obj.status == A.PENDING:
            return "—"
        who = obj.decided_by or (f"balance import #{obj.decided_by_import_id}" if obj.decided_by_import_id else "")
        when = timezone.localtime(obj.decided_at).strftime("%d %b %Y %H:%M") if obj.decided_at else ""
        return f"{who} {when}".strip() or "—"

    @display(description="Reason")
    def reason_text(self, obj):
        return obj.reason or "—"

    @display(description="Student's response")
    def response_text(self, obj):
        return obj.student_response or "—"     # whole; the status row marks a re-submission

    @display(description="Evidence")
    def evidence_link(self, obj):
        return file_link(self.admin_site.name, obj)

    @display(description="Student's file")
    def response_file_link(self, obj):
        # sent with the student's latest response; downloaded through this site's access check
        return file_link(self.admin_site.name, obj, kind="response")

    @display(description="Holds")
    def student_holds(self, obj):
        holds = (Hold.objects.filter(student_id=obj.request.student_id).select_related("department")
                 .order_by("status", "-placed_at"))
        rows = [(h.department.code, h.reason, _kes(h.amount) or "—", h.get_status_display(),
                 timezone.localtime(h.placed_at).strftime("%d %b %Y")) for h in holds]
        if not rows:
            return "No holds."
        return _table(("Office", "Reason", "Amount", "Status", "Placed"), rows)

    @display(description="Decisions so far")
    def history_table(self, obj):
        records = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[:31])
        rows = []
        for record, older in zip(records[:30], [*records[1:], None]):
            # a note shows where it was written, not again on every later change
            note = record.notes if record.notes and (older is None or older.notes != record.notes) else ""
            rows.append((timezone.localtime(record.history_date).strftime("%d %b %Y %H:%M"),
                         record.history_user or "system", record.get_status_display(), record.reason or "—",
                         note or "—", record.history_change_reason or "—"))
        return (_table(("When", "Who", "Status", "Reason", "Internal note", "Change"), rows) if rows
                else "No history.")

    # the item page: the decisions beside the form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id:
            # the item's own form posted without a decision button's address: the decision it names
            return self.decide(request, object_id, request.POST.get("decision", ""))
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_add_another": False,
                         "show_save_and_continue": False, "show_delete": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            filters = preserved_filters(request)
            opts = self.opts
            def url(name):
                return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_{name}", args=[obj.pk])
            allowed = DECISIONS_BY_STATUS.get(obj.status, ()) if self.has_change_permission(request, obj) else ()
            buttons = []
            for decision in allowed:
                label = DECISIONS[decision][0]
                attrs = {"formaction": with_filters(url(f"{decision}_item"), filters)}
                if decision in NEEDS_REASON:   # asks the reason on its own page, the note carried there
                    buttons.append({"label": f"{label}…", "attrs": attrs, "name": "_ask",
                                    "variant": "danger" if decision == "reject" else "default"})
                else:
                    buttons.append({"label": f"{label} and next", "attrs": attrs, "name": "_next",
                                    "variant": "primary"})
                    buttons.append({"label": label, "attrs": attrs, "name": "_stay", "variant": "default"})
            context.update({"decision_buttons": buttons, "skip_url": with_filters(url("next"), filters),
                            "queue_url": self._list_url(filters)})
        return super().render_change_form(request, context, add, change, form_url, obj)

    @action(description="Approve", url_path="approve", permissions=["decide"])
    def approve_item(self, request, object_id):
        return self.decide(request, object_id, "approve")

    @action(description="Reject…", url_path="reject", permissions=["decide"])
    def reject_item(self, request, object_id):
        return self.decide(request, object_id, "reject")

    @action(description="Waive…", url_path="waive", permissions=["decide"])
    def waive_item(self, request, object_id):
        return self.decide(request, object_id, "waive")

    @action(description="Re-open", url_path="reopen", permissions=["decide"])
    def reopen_item(self, request, object_id):
        return self.decide(request, object_id, "reopen")

    def decide(self, request, object_id, decision):
        """One decision on one item: GET (or the item page's "Reject…") shows its page; POST calls
        the one service with what the clerk saw, then lands on the item again or, with "… and
        next", on the next item of the list the clerk came from. A refusal (a rule, a stale view
        naming who changed it and when) shows on the page and changes nothing."""
        filters = preserved_filters(request)
        obj = self.get_object(request, unquote(object_id))   # another office's: 403 with the reason
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied(self.scope_refusal)
        item_url = with_filters(reverse(f"{self.admin_site.name}:core_clearanceapproval_change", args=[obj.pk]),
                                filters)
        if decision not in DECISIONS:
            self.message_user(request, "Choose Approve, Reject, Waive or Re-open with the buttons.", messages.ERROR)
            return HttpResponseRedirect(item_url)
        asked = request.method == "POST" and "_ask" in request.POST
        if request.method == "POST" and not asked:
            form = DecideForm(request.POST, request.FILES, decision=decision)
            if form.is_valid():
                walking = "_next" in request.POST
                listing = queue_queryset(self, request, filters) if walking else None
                cursor = queue_cursor(listing, obj) if walking else None   # where it stood before it moves
                try:
                    decided = self._decide_one(request, obj, decision, form.cleaned_data)
                except ValidationError as exc:
                    form.add_error(None, exc.messages)
                else:
                    self.message_user(request, f"{decided.department.code} for "
                                               f"{decided.request.student.registration_number}: "
                                               f"{DECISIONS[decision][1]}.", messages.SUCCESS)
                    if walking:
                        return self._to_next(request, listing, cursor, obj, filters)
                    return HttpResponseRedirect(item_url)
        else:
            source = request.POST if asked else request.GET
            form = DecideForm(decision=decision, initial={"seen": source.get("seen") or obj.state_token,
                                                          "notes": source.get("notes", "")})
        verb = DECISIONS[decision][0]
        reasons = (staff_selectors.recent_reasons(obj.department_id, A.REJECTED if decision == "reject" else A.WAIVED)
                   if decision in NEEDS_REASON else ())
        summary = [("Student", f"{obj.request.student.registration_number} — {obj.request.student.full_name}"),
                   ("Office", f"{obj.department.code} — {obj.department.name}"),
                   ("Status", self.status_badge(obj)), ("Waiting", self.waiting_column(obj))]
        if obj.student_response:
            summary.append(("Student's response", obj.student_response))
        return decision_page(
            self, request, title=f"{verb}: {obj.department.code} for {obj.request.student.registration_number}",
            summary=summary, form=form, reasons=reasons,
            buttons=[(f"{verb} and next", "_next", "1", "danger" if decision == "reject" else "primary"),
                     (verb, "_stay", "1", "default")],
            cancel_url=item_url, error_link=item_url if form.non_field_errors() else None)

    def _decide_one(self, request, obj, decision, data):
        seen = data.get("seen") or None
        notes = data.get("notes", "")
        if decision == "approve":
            return approval_services.approval_approve(approval=obj, acting_user=request.user, notes=notes,
                                                      evidence=data.get("evidence_file"), seen=seen)
        if decision == "reject":
            return approval_services.approval_reject(approval=obj, acting_user=request.user, reason=data["reason"],
                                                     notes=notes, evidence=data.get("evidence_file"), seen=seen)
        if decision == "waive":
            return approval_services.approval_waive(approval=obj, acting_user=request.user, reason=data["reason"],
                                                    notes=notes, seen=seen)
        return approval_services.approval_reopen(approval=obj, acting_user=request.user, note=notes, seen=seen)

    def _list_url(self, filters: str) -> str:
        url = reverse(f"{self.admin_site.name}:core_clearanceapproval_changelist")
        return f"{url}?{filters}" if filters else url

    def _to_next(self, request, listing, cursor, obj, filters):
        next_pk = next_after(listing, cursor, exclude=obj.pk)
        if next_pk is None:
            self.message_user(request, "That was the last item of this list.", messages.INFO)
            return HttpResponseRedirect(self._list_url(filters if listing is not None else ""))
        return HttpResponseRedirect(with_filters(
            reverse(f"{self.admin_site.name}:core_clearanceapproval_change", args=[next_pk]), filters))

    def next_view(self, request, object_id):
        """"Next" without deciding: the item after this one in the clerk's list."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        filters = preserved_filters(request)
        listing = queue_queryset(self, request, filters)
        return self._to_next(request, listing, queue_cursor(listing, obj), obj, filters)

    # bulk

    def action_checkbox(self, obj):
        # each row carries the state the clerk sees, so a bulk decision refuses rows changed since
        return format_html("{}{}", compact.checkbox_html(obj.pk), _seen_input(obj))

    @action(description="Approve selected…", permissions=["change"])
    def approve_selected(self, request, queryset):
        return _reason_action(
            self, request, queryset, title="Approve the selected clearance items", verb="Approved", submit="Approve",
            noun="clearance item", form_class=None, describe=_approval_label, variant="primary",
            run=lambda ids, reason: run_service(self, request, approval_services.approvals_approve, approval_ids=ids,
                                                acting_user=request.user, **_seen_state(request)))

    @action(description="Reject selected…", permissions=["change"])
    def reject_selected(self, request, queryset):
        return _reason_action(
            self, request, queryset, title="Reject the selected clearance items", verb="Rejected", submit="Reject",
            noun="clearance item", describe=_approval_label,
            run=lambda ids, reason: run_service(self, request, approval_services.approvals_reject, approval_ids=ids,
                                                acting_user=request.user, reason=reason, **_seen_state(request)))

    @action(description="Re-open selected", permissions=["change"])
    def reopen_selected(self, request, queryset):
        result = run_service(self, request, approval_services.approvals_reopen,
                             approval_ids=_selected_ids(request, queryset), acting_user=request.user,
                             **_seen_state(request))
        if result is not None:
            report_bulk_result(self, request, result, done_verb="Re-opened", noun="clearance item")


def _table(headers, rows):
    head = format_html_join("", '<th class="font-semibold px-3 py-2 text-left">{}</th>', ((h,) for h in headers))
    body = format_html_join(
        "", "<tr class=\"border-t border-base-200 dark:border-base-800\">{}</tr>",
        ((format_html_join("", '<td class="px-3 py-2">{}</td>', ((c,) for c in row)),) for row in rows))
    return format_html('<div class="overflow-x-auto"><table class="text-sm w-full"><thead><tr>{}</tr></thead>'
                       "<tbody>{}</tbody></table></div>", head, body)


# --- students (read-only; for picking one when placing a hold) ------------------------------------

@admin.register(Student, site=site)
class StudentAdmin(RoleModelAdmin):
    list_display = ("registration_number", "full_name", "programme", "expected_graduation_year")
    list_select_related = ("programme",)
    search_fields = ("registration_number", "first_name", "last_name")
    readonly_fields = ("registration_number", "first_name", "last_name", "email", "phone", "school",
                       "academic_department", "programme", "expected_graduation_year", "is_resident")
    fields = readonly_fields

    def scope(self, request, queryset):
        return queryset & staff_selectors.students_for(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return False  # reached through the hold form's search, not the sidebar


# --- holds ---------------------------------------------------------------------------------------

class HoldPlaceForm(ServiceForm):
    registration_numbers = forms.CharField(
        label="Or several students", required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 5, "placeholder": "SCE/CS/0001/2022\nSCE/CS/0002/2022"}),
        help_text="Registration numbers, one per line (commas and spaces also separate them).")
    students = Student.objects.none()   # set by the admin: whom this clerk may name (students_for_holds)

    class Meta:
        model = Hold
        fields = ["department", "student", "registration_numbers", "reason", "amount"]
        widgets = {"reason": UnfoldAdminTextInputWidget}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "student" in self.fields:  # the add form; a hold's own page is read-only
            self.fields["student"].required = False
            self.fields["student"].help_text = "Search by registration number or name."

    def clean(self):
        cleaned = super().clean()
        raw = cleaned.get("registration_numbers") or ""
        numbers = [normalize_registration_number(n) for n in raw.replace(",", "\n").replace(";", "\n").split("\n")]
        numbers = list(dict.fromkeys(n for n in numbers if n))
        ids = []
        if numbers:
            # out of the clerk's reach is "not found", as a number nobody has: no hint of who exists elsewhere
            found = dict(self.students.filter(registration_number__in=numbers)
                         .values_list("registration_number", "pk"))
            unknown = [n for n in numbers if n not in found]
            if unknown:
                self.add_error("registration_numbers", "Not found: " + ", ".join(unknown[:20])
                               + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "") + ".")
            ids = [found[n] for n in numbers if n in found]
        if cleaned.get("student"):
            ids.insert(0, cleaned["student"].pk)
        if not ids and "registration_numbers" not in self.errors:
            self.add_error("student", "Choose a student or paste registration numbers.")
        cleaned["student_ids"] = list(dict.fromkeys(ids))
        return cleaned


class HoldImportFilter(admin.SimpleListFilter):
    """Holds an import placed, updated or released last (the links of a hold import's page)."""
    title = "hold import"
    parameter_name = "hold_import"

    def lookups(self, request, model_admin):
        recent = list(permissions.hold_imports_for(request.user).order_by("-created_at", "-pk")
                      .values_list("pk", "original_name")[:10])
        value = parse_id(self.value())
        if value is not None and value not in {pk for pk, _ in recent}:
            recent.append((value, ""))
        return [(str(pk), f"#{pk} {name}".strip()) for pk, name in recent]

    def queryset(self, request, queryset):
        value = parse_id(self.value())
        return queryset if value is None else queryset.filter(hold_import_id=value)


@admin.register(Hold, site=site)
class HoldAdmin(ServiceAdminMixin, RoleModelAdmin):
    form = HoldPlaceForm
    counts_unseen_itself = True
    list_display = ("student_column", "department", "reason", "amount_column", "status_badge", "placed_at",
                    "placed_by")
    list_select_related = ("student", "department", "placed_by")
    list_filter = ("status", DepartmentFilter, "source", HoldImportFilter)
    list_filter_submit = True
    search_fields = ("student__registration_number", "student__first_name", "student__last_name", "reason")
    search_help_text = "Registration number, student name or reason"
    autocomplete_fields = ("student",)
    actions = ["release_selected", "waive_selected"]
    ordering = ("-placed_at", "-pk")
    readonly_fields = ("student", "department", "reason", "amount_text", "source", "status", "placed_by", "placed_at",
                       "released_by", "released_at", "release_reason", "balance_import", "hold_import")
    # release and waive on the hold's own page, each asking the reason (the same services as the list)
    actions_detail = ["release_hold", "waive_hold"]
    scope_refusal = "This hold belongs to an office you do not review."

    def scope(self, request, queryset):
        return queryset & permissions.holds_for(request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"students": staff_selectors.students_for_holds(request.user)})

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["department", "student", "registration_numbers", "reason", "amount"]
        return list(self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def has_change_permission(self, request, obj=None):
        # a hold is released or waived by an action, never edited
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "department":
            kwargs["queryset"] = permissions.reviewable_departments(request.user).order_by("code")
        elif db_field.name == "student":
            # a forged id of a student out of reach is "not a valid choice", as one that does not exist
            kwargs["queryset"] = staff_selectors.students_for_holds(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        mine = permissions.reviewable_departments(request.user)
        if "department" not in initial and len(mine[:2]) == 1:
            initial["department"] = mine[0].pk
        return initial

    @display(description="Student", ordering="student__registration_number", header=True)
    def student_column(self, obj):
        return obj.student.registration_number, obj.student.full_name

    @display(description="Amount", ordering="amount")
    def amount_column(self, obj):
        return _kes(obj.amount) or "—"

    @display(description="Status", ordering="status", label=HOLD_LABELS)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Amount")
    def amount_text(self, obj):
        return _kes(obj.amount) or "—"

    def has_end_permission(self, request, obj=None):
        # unfold passes the URL's id: another office's hold is refused with the reason (get_object)
        if isinstance(obj, str):
            obj = self.get_object(request, unquote(obj))
        return super().has_change_permission(request) and (obj is None or self.in_scope(request, obj))

    def get_actions_detail(self, request, object_id):
        # offered on an active hold only; a request for another is answered by the service's refusal
        if not Hold.objects.filter(pk=parse_id(unquote(object_id)), status=Hold.Status.ACTIVE).exists():
            return []
        return super().get_actions_detail(request, object_id)

    @action(description="Release…", url_path="release", permissions=["end"], icon="lock_open")
    def release_hold(self, request, object_id):
        return self._end_hold(request, object_id, "release")

    @action(description="Waive…", url_path="waive", permissions=["end"], icon="do_not_disturb_on")
    def waive_hold(self, request, object_id):
        return self._end_hold(request, object_id, "waive")

    def _end_hold(self, request, object_id, verb):
        """Release or waive one hold with its reason (optional to release, required to waive);
        a refusal from the service shows on the page and changes nothing."""
        hold = self.get_object(request, unquote(object_id))   # another office's: 403 with the reason
        if hold is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        hold_url = reverse(f"{self.admin_site.name}:core_hold_change", args=[hold.pk])
        form = HoldEndForm(request.POST or None, verb=verb)
        if request.method == "POST" and form.is_valid():
            service = hold_services.hold_release if verb == "release" else hold_services.hold_waive
            try:
                service(hold=hold, acting_user=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                self.message_user(request, f"{hold.department.code} hold on {hold.student.registration_number}: "
                                           f"{'released' if verb == 'release' else 'waived'}.", messages.SUCCESS)
                return HttpResponseRedirect(hold_url)
        label = "Release" if verb == "release" else "Waive"
        summary = [("Student", f"{hold.student.registration_number} — {hold.student.full_name}"),
                   ("Office", f"{hold.department.code} — {hold.department.name}"), ("Reason", hold.reason),
                   ("Amount", _kes(hold.amount) or "—"), ("Status", hold.get_status_display())]
        return decision_page(self, request, title=f"{label} the hold", summary=summary, form=form,
                             buttons=[(label, "_end", "1", "primary" if verb == "release" else "danger")],
                             cancel_url=hold_url)

    def perform(self, request, form):
        data = form.cleaned_data
        return hold_services.holds_place(department=data["department"], student_ids=data["student_ids"],
                                         reason=data["reason"], amount=data.get("amount"), acting_user=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:core_hold_changelist"))

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        report_bulk_result(self, request, form.service_result or BulkResult(), done_verb="Placed", noun="hold")
        return obj

    @action(description="Release selected…", permissions=["change"])
    def release_selected(self, request, queryset):
        # as the hold page's Release button: the holds named and counted first, what settled them optional
        return _reason_action(
            self, request, queryset, title="Release the selected holds", verb="Released", submit="Release",
            noun="hold", form_class=ReleaseReasonForm, variant="primary", describe=_hold_label,
            run=lambda ids, reason: run_service(self, request, hold_services.holds_release, hold_ids=ids,
                                                acting_user=request.user, reason=reason or ""))

    @action(description="Waive selected…", permissions=["change"])
    def waive_selected(self, request, queryset):
        return _reason_action(
            self, request, queryset, title="Waive the selected holds", verb="Waived", submit="Waive", noun="hold",
            describe=_hold_label,
            run=lambda ids, reason: run_service(self, request, hold_services.holds_waive, hold_ids=ids,
                                                acting_user=request.user, reason=reason))


def _hold_label(hold) -> str:
    return f"{hold.student.registration_number} — {hold.student.full_name}: {hold.department.code}, {hold.reason}"


# --- delegations -------------------------------------------------------------------------------

class DelegationForm(ServiceForm):
    class Meta:
        model = Delegation
        fields = ["department", "to_user", "starts_on", "ends_on", "reason"]
        widgets = {"reason": UnfoldAdminTextInputWidget}
        help_texts = {"starts_on": "Today or later.",
                      "ends_on": f"At most {settings.DELEGATION_MAX_DAYS} days after it starts."}


class DirectionFilter(admin.SimpleListFilter):
    title = "direction"
    parameter_name = "direction"

    def lookups(self, request, model_admin):
        return [("given", "Given by me"), ("received", "Received by me")]

    def queryset(self, request, queryset):
        if self.value() == "given":
            return queryset.filter(from_user=request.user)
        if self.value() == "received":
            return queryset.filter(to_user=request.user)
        return queryset


@admin.register(Delegation, site=site)
class DelegationAdmin(ServiceAdminMixin, RoleModelAdmin):
    form = DelegationForm
    counts_unseen_itself = True
    list_display = ("department", "from_user", "to_user", "starts_on", "ends_on", "state_badge", "reason")
    list_select_related = ("department", "from_user", "to_user")
    list_filter = (DirectionFilter,)
    actions = ["end_selected"]
    ordering = ("-starts_on", "-pk")
    readonly_fields = ("department", "from_user", "to_user", "starts_on", "ends_on", "reason", "revoked_at")
    scope_refusal = "This delegation is neither yours nor given to you."

    def scope(self, request, queryset):
        user = request.user
        if user.is_superuser:
            return queryset
        return queryset.filter(Q(from_user=user) | Q(to_user=user))

    def get_fields(self, request, obj=None):
        return list(DelegationForm.Meta.fields) if obj is None else list(self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def has_change_permission(self, request, obj=None):
        return False

    def has_end_permission(self, request, obj=None):
        return self.has_view_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "department":
            # only rights held in one's own right can be lent
            kwargs["queryset"] = permissions.granted_departments(request.user).order_by("code")
        elif db_field.name == "to_user":
            kwargs["queryset"] = (User.objects.filter(is_active=True, is_staff=True, groups__name=permissions.STAFF)
                                  .exclude(pk=request.user.pk).order_by("full_name"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        """The office is chosen already when the delegator reviews one in their own right; today is the start."""
        initial = super().get_changeform_initial_data(request)
        own = list(permissions.granted_departments(request.user).values_list("pk", flat=True)[:2])
        if len(own) == 1:
            initial.setdefault("department", own[0])
        initial.setdefault("starts_on", timezone.localdate())
        return initial

    @display(description="State", label={"active": "success", "upcoming": "info", "ended": "warning"})
    def state_badge(self, obj):
        today = timezone.localdate()
        if obj.revoked_at or obj.ends_on < today:
            return "ended", "Ended"
        if obj.starts_on > today:
            return "upcoming", "Upcoming"
        return "active", "Active"

    def perform(self, request, form):
        data = form.cleaned_data
        delegation = delegation_services.delegation_create(
            department=data["department"], from_user=request.user, to_user=data["to_user"],
            starts_on=data["starts_on"], ends_on=data["ends_on"], reason=data.get("reason") or "",
            acting_user=request.user)
        form.instance = delegation
        return delegation

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Delegated {obj.department.code} to {obj.to_user} from {obj.starts_on:%d %b %Y} "
                                   f"to {obj.ends_on:%d %b %Y}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:core_delegation_changelist"))

    @action(description="End selected", permissions=["end"])
    def end_selected(self, request, queryset):
        # a handful of rows; one service call each, refusals collected per row
        result = BulkResult(unseen_where="not among your delegations")
        ids = _selected_ids(request, queryset)
        # someone else's delegation is counted like one that does not exist, never named
        delegations = {d.pk: d for d in self.get_queryset(request).select_related("department", "to_user")
                       .filter(pk__in=ids)}
        for pk in ids:
            d = delegations.get(pk)
            if d is None:
                result.refuse_unseen(pk)
                continue
            try:
                delegation_services.delegation_revoke(delegation=d, acting_user=request.user)
                result.done.append(pk)
            except ValidationError as exc:
                result.refuse(pk, f"{d.department.code} → {d.to_user}", " ".join(exc.messages))
        report_bulk_result(self, request, result, done_verb="Ended", noun="delegation")


# long exports wait here (clearance_admin/exports.py)
register_my_exports(site)

# the gown store, for the GOWN office's reviewers (registers its admin; the sidebar asks its permission)
from . import gowns  # noqa: E402
gown_sidebar_permission = gowns.gown_sidebar_permission
