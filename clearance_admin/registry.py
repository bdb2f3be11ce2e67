"""/registry/ — the registry opens clearance for a cohort, follows progress office by office,
revokes clearances that are now held and issues certificates. Every write calls a service in
core/services; every page answers from `scope()`; lists run a constant number of queries."""
from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import (BooleanRadioFilter, ChoicesDropdownFilter, DropdownFilter,
                                          RelatedDropdownFilter)
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from core import models as m
from core import permissions
from core.selectors import registry as selectors
from core.selectors.clearance import completed_but_now_held
from core.services._common import BulkResult
from core.services.accounts import students_invite
from core.services.certificates import certificate_issue, certificates_issue
from core.services.cycles import CYCLE_FIELDS, cycle_create, cycle_update
from core.services.requests import check_cycle_open, request_revoke, requests_open_for_cohort

from . import compact
from .filters import student_filters
from .downloads import certificate_url, file_link
from .mixins import ReadOnlyAdminMixin, RoleModelAdmin, report_bulk_result, run_service
from .exports import register_my_exports
from .sites import registry_site as site

site.index_template = "registry/index.html"

R = m.ClearanceRequest.Status
A = m.ClearanceApproval.Status

# Colours of unfold's label variants (unfold/helpers/label.html), so the classes exist in its CSS.
REQUEST_STATUS_LABELS = {R.PENDING: "", R.IN_PROGRESS: "info", R.ON_HOLD: "warning",
                         R.COMPLETED: "success", R.REVOKED: "danger"}
_BADGE = "inline-block font-semibold rounded-default text-[11px] uppercase whitespace-nowrap h-5 leading-5 px-1.5 "
APPROVAL_BADGE_CLASSES = {
    A.PENDING: _BADGE + "bg-base-500/8 text-base-700 dark:bg-base-500/20 dark:text-base-200",
    A.APPROVED: _BADGE + "bg-green-100 text-green-700 dark:bg-green-500/20 dark:text-green-400",
    A.REJECTED: _BADGE + "bg-red-100 text-red-700 dark:bg-red-500/20 dark:text-red-400",
    A.WAIVED: _BADGE + "bg-blue-100 text-blue-700 dark:bg-blue-500/20 dark:text-blue-400",
}
SHOWN_SELECTED = 25  # names listed on a confirmation page; the rest are counted


def approval_badges(approvals) -> str:
    """One badge per approval: office code coloured by status (pending grey, approved green,
    rejected red, waived blue); the title says the status and, when pending too long, overdue."""
    def title(a):
        text = f"{a.department.name}: {a.get_status_display()}"
        return text + f", overdue ({a.days_waiting} days)" if a.is_overdue else text
    badges = format_html_join(
        "", '<span class="{}" data-office="{}" data-status="{}" title="{}">{}</span>',
        ((APPROVAL_BADGE_CLASSES[a.status], a.department.code, a.status, title(a), a.department.code)
         for a in approvals))
    return format_html('<div class="flex flex-row gap-1">{}</div>', badges) if badges else "-"


def certificate_link(site_name, certificate) -> str:
    """A link to the certificate's PDF through the site's download view ("-" where there is none)."""
    url = certificate_url(site_name, certificate)
    if url is None:
        return "-"
    text = "Download PDF (stamped REVOKED)" if certificate.revoked_at else "Download PDF"
    return format_html('<a class="text-primary-600 underline" href="{}" download>{}</a>', url, text)


def approval_status_badge(approval) -> str:
    """The status of one approval as a badge in its colour (the office code is the row's own
    column; overdue items say so beside the status)."""
    overdue = f" · overdue {approval.days_waiting} d" if approval.is_overdue else ""
    return format_html('<span class="{}" data-status="{}">{}{}</span>', APPROVAL_BADGE_CLASSES[approval.status],
                       approval.status, approval.get_status_display(), overdue)


def _page(modeladmin, request, *, title, template="registry/action_form.html", **context):
    """A full admin page (sidebar, messages) for a form an action asks for."""
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, template, {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta, "title": title, **context})


def _selected_context(queryset):
    shown = list(queryset[:SHOWN_SELECTED])
    return {"objects": shown, "more": max(queryset.count() - len(shown), 0)}


def _action_hidden(request, action_name):
    """The fields that bring a confirmation page back to the same changelist action."""
    ids = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    hidden = [("action", action_name)] + [(helpers.ACTION_CHECKBOX_NAME, pk) for pk in ids]
    if request.POST.get("select_across"):
        hidden.append(("select_across", request.POST["select_across"]))
    return hidden


# --- forms --------------------------------------------------------------------------------------

def _cycle_label(cycle):
    state = "open" if cycle.is_open else ("closed" if cycle.is_closed else "not open today")
    return f"{cycle.name} ({state}, {cycle.opens_on:%d %b %Y} – {cycle.closes_on:%d %b %Y})"


class CycleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _cycle_label(obj)


class ChooseCycleForm(forms.Form):
    cycle = CycleChoiceField(queryset=m.ClearanceCycle.objects.none(), widget=UnfoldAdminSelectWidget,
                             empty_label=None, help_text="More than one cycle is open: choose one.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cycle"].queryset = selectors.open_cycles()


class RevokeForm(forms.Form):
    reason = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}), strip=True, max_length=m.REASON_MAX_LENGTH,
        error_messages={"required": "A reason is required to revoke a clearance."},
        help_text=f"Shown to the student and kept in the history; the certificate is revoked too. "
                  f"Up to {m.REASON_MAX_LENGTH:,} characters.")


class OpenCohortForm(forms.Form):
    """Which students get a clearance request: a cohort, optionally narrowed to a school or a
    programme. Refusals of the service (cycle not open, nobody chosen) come back as form errors."""

    cycle = CycleChoiceField(queryset=m.ClearanceCycle.objects.none(), widget=UnfoldAdminSelectWidget,
                             empty_label=None)
    graduation_year = forms.TypedChoiceField(
        label="Cohort (expected graduation year)", coerce=int, empty_value=None, required=False,
        widget=UnfoldAdminSelectWidget)
    school = forms.ModelChoiceField(queryset=m.School.objects.all(), required=False,
                                    widget=UnfoldAdminSelectWidget, empty_label="Every school")
    programme = forms.ModelChoiceField(queryset=m.Programme.objects.select_related("academic_department"),
                                       required=False, widget=UnfoldAdminSelectWidget,
                                       empty_label="Every programme")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cycle"].queryset = m.ClearanceCycle.objects.order_by("-opens_on", "-pk")
        first_open = selectors.open_cycles().order_by("-opens_on").first()
        if first_open:
            self.fields["cycle"].initial = first_open.pk
        years = (m.Student.objects.order_by("expected_graduation_year")
                 .values_list("expected_graduation_year", flat=True).distinct())
        self.fields["graduation_year"].choices = [("", "Choose a cohort")] + [(y, str(y)) for y in years]

    def clean(self):
        data = super().clean()
        school, programme = data.get("school"), data.get("programme")
        if school and programme and programme.academic_department.school_id != school.pk:
            self.add_error("programme", f"{programme} is not a programme of {school.code}.")
        return data


# --- base ---------------------------------------------------------------------------------------

class RegistryModelAdmin(RoleModelAdmin):
    """The registry follows every student and request; anyone else sees nothing here."""

    list_filter_submit = True

    def scope(self, request, queryset):
        if permissions.has_role(request.user, permissions.REGISTRY):
            return queryset
        return queryset.none()

    def has_delete_permission(self, request, obj=None):
        return False  # nothing the registry follows is deleted; requests are revoked

    def has_open_clearance_permission(self, request, obj=None):
        return request.user.has_perm("core.add_clearancerequest")

    def has_invite_permission(self, request, obj=None):
        return permissions.has_role(request.user, permissions.REGISTRY)


def _selection_label(data) -> str:
    parts = [f"cohort {data['graduation_year']}"]
    if data.get("school"):
        parts.append(f"school {data['school'].code}")
    if data.get("programme"):
        parts.append(str(data["programme"]))
    return ", ".join(parts)


def _report_opened(modeladmin, request, result, cycle):
    if result.created_count:
        modeladmin.message_user(
            request, f"Opened clearance in {cycle} for {result.created_count} "
                     f"student{'s' if result.created_count != 1 else ''} "
                     f"({result.approvals_created} office approvals).", messages.SUCCESS)
    if result.after_revoked:
        modeladmin.message_user(
            request, f"{result.after_revoked} of them had a revoked request in {cycle}: they got a new "
                     f"request; the revoked one is kept as it was.", messages.INFO)
    if result.already_open:
        modeladmin.message_user(
            request, f"{result.already_open} student{'s' if result.already_open != 1 else ''} already "
                     f"had a request in {cycle}; nothing changed for them.", messages.INFO)
    if not result.created_count and not result.already_open:
        modeladmin.message_user(request, "No student matched; nothing was opened.", messages.WARNING)


# --- students -----------------------------------------------------------------------------------

_, _, CohortFilter = student_filters()
_, _, RequestCohortFilter = student_filters("student")


class HasOpenRequestFilter(DropdownFilter):
    title = "request in an open cycle"
    parameter_name = "has_open_request"

    def lookups(self, request, model_admin):
        return [("yes", "Has a request in an open cycle"), ("no", "No request in an open cycle")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(selectors.has_open_request())
        if self.value() == "no":
            return queryset.filter(~selectors.has_open_request())
        return queryset


class StudentRequestInline(ReadOnlyAdminMixin, TabularInline):
    model = m.ClearanceRequest
    fk_name = "student"
    hide_title = True
    extra = 0
    can_delete = False
    fields = ["cycle", "reason", "request_link", "submitted_at", "completed_at", "revoked_reason"]
    readonly_fields = fields
    verbose_name_plural = "Clearance requests"

    @display(description="status")
    def request_link(self, obj):
        return format_html('<a href="{}" class="text-primary-600 dark:text-primary-500">{}</a>',
                           reverse("registry:core_clearancerequest_change", args=[obj.pk]),
                           obj.get_status_display())

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("cycle", "student")


@admin.register(m.Student, site=site)
class StudentAdmin(RegistryModelAdmin):
    list_display = ["registration_number", "full_name", "school_code", "programme", "cohort",
                    "is_resident", "current_request_status", "login_state"]
    list_filter = [("school", RelatedDropdownFilter), ("programme", RelatedDropdownFilter), CohortFilter,
                   ("is_resident", BooleanRadioFilter), HasOpenRequestFilter]
    search_fields = ["registration_number", "first_name", "last_name", "email"]
    list_select_related = ["school", "programme", "user"]
    ordering = ["registration_number"]
    actions = ["open_clearance_for_selected", "invite_selected"]
    inlines = [StudentRequestInline]
    fieldsets = [
        (None, {"fields": ["registration_number", "first_name", "last_name", "email", "phone"]}),
        ("Studies", {"fields": ["school", "academic_department", "programme", "admission_year",
                                "expected_graduation_year", "is_resident"]}),
    ]
    readonly_fields = ["admission_year"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(current_status=selectors.latest_request_status())

    # read-only: students come from the student records system (and /admin/)
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @display(description="name", ordering="last_name")
    def full_name(self, obj):
        return obj.full_name

    @display(description="school", ordering="school__code")
    def school_code(self, obj):
        return obj.school.code

    @display(description="cohort", ordering="expected_graduation_year")
    def cohort(self, obj):
        return obj.expected_graduation_year

    @display(description="current request", label=REQUEST_STATUS_LABELS)
    def current_request_status(self, obj):
        if not obj.current_status:
            return None
        return obj.current_status, R(obj.current_status).label

    @display(description="login", label={"active": "success", "invited": "info", "none": "warning"})
    def login_state(self, obj):
        if obj.user_id is None:
            return ("none", "none") if not obj.email else None
        if obj.user.has_usable_password():
            return "active", "active"
        return "invited", "invited"

    @action(description="Invite the selected students to sign in", permissions=["invite"])
    def invite_selected(self, request, queryset):
        result = run_service(self, request, students_invite, acting_user=request.user,
                             student_ids=list(queryset.values_list("pk", flat=True)))
        if result is not None:
            report_bulk_result(self, request, result, done_verb="Sent an invitation to", noun="student")

    @action(description="Open clearance for selected students", permissions=["open_clearance"])
    def open_clearance_for_selected(self, request, queryset):
        cycles = list(selectors.open_cycles())
        if not cycles:
            self.message_user(request, "No clearance cycle is open today; open one under Cycles first.",
                              messages.ERROR)
            return None
        if len(cycles) == 1 and "apply" not in request.POST:
            cycle = cycles[0]
        else:
            form = ChooseCycleForm(request.POST if "apply" in request.POST else None)
            if not form.is_valid():
                return _page(self, request, title="Open clearance for the selected students", form=form,
                             intro=f"Open a clearance request for these {queryset.count()} students. "
                                   "Students who already have one in the cycle are counted, not touched.",
                             hidden=_action_hidden(request, "open_clearance_for_selected"),
                             submit_label="Open clearance", cancel_url=request.get_full_path(),
                             **_selected_context(queryset))
            cycle = form.cleaned_data["cycle"]
        result = run_service(self, request, requests_open_for_cohort, cycle=cycle, acting_user=request.user,
                             student_ids=list(queryset.values_list("pk", flat=True)))
        if result is not None:
            _report_opened(self, request, result, cycle)
        return None


# --- cycles -------------------------------------------------------------------------------------

@admin.register(m.ClearanceCycle, site=site)
class ClearanceCycleAdmin(RegistryModelAdmin):
    list_display = ["name", "graduation_year", "opens_on", "closes_on", "is_closed", "open_now",
                    "max_resubmissions"]
    list_filter = ["is_closed", "graduation_year"]
    search_fields = ["name"]
    ordering = ["-opens_on"]
    fields = list(CYCLE_FIELDS)

    @display(description="open today", boolean=True)
    def open_now(self, obj):
        return obj.is_open

    def save_model(self, request, obj, form, change):
        # Through core.services.cycles rather than the plain ModelAdmin save: the service is the
        # one place that writes cycles (commands and tests use it too) and names in the history
        # what changed ("Cycle closed", "Cycle changed: closes_on"). The form has already run the
        # same model validation, so the service's own check refuses nothing here.
        data = {f: form.cleaned_data[f] for f in CYCLE_FIELDS if f in form.cleaned_data}
        if change:
            saved = cycle_update(cycle=obj, acting_user=request.user, **data)
        else:
            saved = cycle_create(acting_user=request.user, **data)
        obj.pk, obj._state.adding = saved.pk, False


# --- clearance requests -------------------------------------------------------------------------

class CompletedButNowHeldFilter(DropdownFilter):
    title = "completed but now held"
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("yes", "Completed, but the student is now held")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=completed_but_now_held().values("pk"))
        return queryset


class OverdueFilter(DropdownFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "An office is past its SLA")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(selectors.has_overdue_approval())
        return queryset


class ApprovalInline(ReadOnlyAdminMixin, TabularInline):
    model = m.ClearanceApproval
    hide_title = True
    extra = 0
    can_delete = False
    fields = ["department", "status_badge", "waiting_since", "decided_by", "decided_at", "reason",
              "student_response", "evidence_link"]
    readonly_fields = fields
    verbose_name_plural = "Offices"

    @display(description="evidence")
    def evidence_link(self, obj):
        return file_link(self.admin_site.name, obj) if obj.pk else "-"

    def get_queryset(self, request):
        return (super().get_queryset(request).select_related("department", "decided_by", "request__student")
                .order_by("department__stage", "department__code"))

    @display(description="status")
    def status_badge(self, obj):
        return approval_status_badge(obj) if obj.pk else "-"


@admin.register(m.ClearanceRequest, site=site)
class ClearanceRequestAdmin(RegistryModelAdmin):
    # fits 1440 px with the sidebar: programme under the name, both dates in one column, no row
    # actions (issuing is on the request's page, offered only when it applies)
    list_display = ["student_column", "cycle", "status_label", "progress", "dates", "certificate_state"]
    list_filter = [("status", ChoicesDropdownFilter), ("cycle", RelatedDropdownFilter),
                   ("student__school", RelatedDropdownFilter), ("student__programme", RelatedDropdownFilter),
                   RequestCohortFilter, CompletedButNowHeldFilter, OverdueFilter]
    search_fields = ["student__registration_number", "student__first_name", "student__last_name"]
    list_select_related = ["student__programme", "cycle", "certificate"]
    actions = ["revoke_selected", "issue_certificates_selected"]
    actions_list = ["open_for_cohort"]
    actions_detail = ["revoke", "issue_certificate"]
    inlines = [ApprovalInline]
    fieldsets = [
        (None, {"fields": ["student", "cycle", "reason", "status_badge", "submitted_at", "completed_at",
                           "resubmission_count", "opened_by"]}),
        ("Progress", {"fields": ["progress"]}),
        ("Certificate", {"fields": ["certificate_issued", "certificate_code", "certificate_pdf"]}),
        ("Revocation", {"fields": ["revoked_at", "revoked_by", "revoked_reason"]}),
    ]
    readonly_fields = ["student", "cycle", "reason", "status_badge", "submitted_at", "completed_at",
                       "resubmission_count", "opened_by", "progress", "certificate_issued", "certificate_code",
                       "certificate_pdf", "revoked_at", "revoked_by", "revoked_reason"]

    def get_queryset(self, request):
        # the approvals of the page's rows with their offices: one query for the whole page
        approvals = m.ClearanceApproval.objects.select_related("department").order_by(
            "department__stage", "department__code")
        return super().get_queryset(request).prefetch_related(Prefetch("approvals", queryset=approvals))

    # requests are opened by the services (cohort form, selected students), never typed in
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request, obj=None):
        return request.user.has_perm("core.change_clearancerequest")

    def has_issue_certificate_permission(self, request, obj=None):
        return request.user.has_perm("core.add_certificate")

    def get_actions_detail(self, request, object_id):
        """Buttons only where they apply: no Revoke on a revoked request, Issue certificate only on a
        completed one without a certificate. The views stay reachable so that a hand-posted one
        gets the service's refusal as a message (unfold's permission check would answer 403)."""
        actions = super().get_actions_detail(request, object_id)
        try:
            row = (self.get_queryset(request).filter(pk=unquote(str(object_id)))
                   .values_list("status", "certificate").first())
        except (ValueError, ValidationError):
            row = None
        status, certificate = row or (None, None)
        hidden = set()
        if status in (R.REVOKED, None):
            hidden.add("revoke")
        if status != R.COMPLETED or certificate is not None:
            hidden.add("issue_certificate")
        return [a for a in actions if a.method.__name__ not in hidden]

    # columns
    @display(description="student", ordering="student__registration_number")
    def student_column(self, obj):
        return format_html('<span class="font-medium text-important whitespace-nowrap">{}</span><br>'
                           '<span class="text-xs">{}</span><br><span class="text-xs" data-programme>{}</span>',
                           obj.student.registration_number, obj.student.full_name, obj.student.programme.name)

    @display(description="dates", ordering="submitted_at")
    def dates(self, obj):
        day = "%d %b %Y"
        completed = (f"completed {timezone.localtime(obj.completed_at):{day}}" if obj.completed_at
                     else "not completed")
        return format_html('<span class="whitespace-nowrap">submitted {}</span><br>'
                           '<span class="text-xs whitespace-nowrap">{}</span>',
                           f"{timezone.localtime(obj.submitted_at):{day}}", completed)

    @display(description="status", label=REQUEST_STATUS_LABELS, ordering="status")
    def status_label(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="status")
    def status_badge(self, obj):
        # the detail page shows readonly values as text: render the same label as the list
        return compact.label(obj.get_status_display(), REQUEST_STATUS_LABELS[obj.status])

    @display(description="offices")
    def progress(self, obj):
        return approval_badges(obj.approvals.all())

    @display(description="certificate", label={"issued": "success", "revoked": "danger", "due": "warning"})
    def certificate_state(self, obj):
        certificate = getattr(obj, "certificate", None)  # select_related: no query per row
        if certificate is None:
            return ("due", "To issue") if obj.status == R.COMPLETED else None
        return ("revoked", "Revoked") if certificate.revoked_at else ("issued", "Issued")

    @display(description="certificate")
    def certificate_issued(self, obj):
        certificate = getattr(obj, "certificate", None)
        if certificate is None:
            return "-"
        when = "%d %b %Y %H:%M"
        text = f"Issued {timezone.localtime(certificate.issued_at):{when}} by {certificate.issued_by or '-'}"
        if certificate.revoked_at:
            text += f"; revoked {timezone.localtime(certificate.revoked_at):{when}}: {certificate.revoked_reason}"
        return text

    @display(description="verification code")
    def certificate_code(self, obj):
        certificate = getattr(obj, "certificate", None)
        return certificate.code if certificate else "-"

    @display(description="PDF")
    def certificate_pdf(self, obj):
        certificate = getattr(obj, "certificate", None)
        return certificate_link(self.admin_site.name, certificate) if certificate else "-"

    # the object behind a row/detail action, through the same scope as every other page
    def _scoped_object(self, request, object_id):
        obj = self.get_object(request, object_id)  # out of scope: PermissionDenied
        if obj is None:
            raise Http404("No such clearance request.")
        return obj

    def _change_url(self, obj):
        return reverse(f"{self.admin_site.name}:core_clearancerequest_change", args=[obj.pk])

    # actions
    @action(description="Revoke the selected clearances", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        form = RevokeForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _page(self, request, title="Revoke clearances", form=form,
                         intro="Revoke these clearances (their certificates are revoked too). "
                               "The reason is shown to each student.",
                         hidden=_action_hidden(request, "revoke_selected"), submit_label="Revoke",
                         danger=True, cancel_url=request.get_full_path(), **_selected_context(queryset))
        result = BulkResult()
        for obj in queryset.select_related("student"):
            try:
                request_revoke(request=obj, acting_user=request.user, reason=form.cleaned_data["reason"])
                result.done.append(obj.pk)
            except ValidationError as exc:
                result.refuse(obj.pk, obj.student.registration_number, " ".join(exc.messages))
        report_bulk_result(self, request, result, done_verb="Revoked", noun="clearance")
        return None

    @action(description="Issue certificates for the selected clearances", permissions=["issue_certificate"])
    def issue_certificates_selected(self, request, queryset):
        result = certificates_issue(request_ids=list(queryset.values_list("pk", flat=True)), acting_user=request.user)
        report_bulk_result(self, request, result, done_verb="Issued", noun="certificate")
        return None

    @action(description="Revoke", permissions=["revoke"], icon="block", url_path="revoke")
    def revoke(self, request, object_id):
        obj = self._scoped_object(request, object_id)
        if obj.status == R.REVOKED and request.method != "POST":
            # nothing to ask for; a hand-posted form still reaches the service, which refuses it
            self.message_user(request, "This clearance request is already revoked.", messages.ERROR)
            return HttpResponseRedirect(self._change_url(obj))
        form = RevokeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            # partial: the service's `request` argument (a ClearanceRequest) is not the HTTP request
            done = run_service(self, request, partial(request_revoke, request=obj, acting_user=request.user,
                                                      reason=form.cleaned_data["reason"]))
            if done is not None:
                self.message_user(request, f"Revoked the clearance of {obj.student.registration_number}.",
                                  messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(obj))
        return _page(self, request, title=f"Revoke the clearance of {obj.student}", form=form,
                     intro=f"{obj.cycle}: {obj.get_status_display()}. The certificate, if any, is revoked too.",
                     submit_label="Revoke", danger=True, cancel_url=self._change_url(obj))

    @action(description="Issue certificate", permissions=["issue_certificate"], icon="workspace_premium",
            url_path="issue-certificate")
    def issue_certificate(self, request, object_id):
        obj = self._scoped_object(request, object_id)
        if request.method == "POST":
            certificate = run_service(self, request, partial(certificate_issue, request=obj,
                                                             acting_user=request.user))
            if certificate is not None:
                self.message_user(request, f"Issued the certificate of {obj.student.registration_number} "
                                           f"(verification code {certificate.code}).", messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(obj))
        return _page(self, request, title=f"Issue the clearance certificate of {obj.student}",
                     form=forms.Form(), submit_label="Issue certificate", cancel_url=self._change_url(obj),
                     intro=f"{obj.cycle}: {obj.get_status_display()}. Only a completed clearance gets a "
                           "certificate; it can be verified at /verify/<code>/.")

    @action(description="Open clearance for a cohort", permissions=["open_clearance"], icon="group_add",
            url_path="open-for-cohort")
    def open_for_cohort(self, request):
        """Choose the cohort, see what opening would do (core.selectors.registry.cohort_open_preview),
        confirm. What confirm reports is what the service did, even if requests changed meanwhile."""
        form = OpenCohortForm(request.POST or None)
        changelist = reverse(f"{self.admin_site.name}:core_clearancerequest_changelist")
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            selection = dict(graduation_year=data["graduation_year"], school=data["school"],
                             programme=data["programme"])
            try:
                if "confirm" in request.POST:
                    result = requests_open_for_cohort(cycle=data["cycle"], acting_user=request.user, **selection)
                else:
                    check_cycle_open(data["cycle"])
                    preview = selectors.cohort_open_preview(cycle=data["cycle"], **selection)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                if "confirm" in request.POST:
                    _report_opened(self, request, result, data["cycle"])
                    return HttpResponseRedirect(f"{changelist}?cycle__id__exact={data['cycle'].pk}")
                hidden = [(name, getattr(value, "pk", value) if value is not None else "")
                          for name, value in data.items()]
                return _page(self, request, template="registry/open_cohort_preview.html",
                             title="Open clearance for a cohort: check before opening", preview=preview,
                             cycle=data["cycle"], selection=_selection_label(data), hidden=hidden,
                             back_url=request.get_full_path(), cancel_url=changelist)
        return _page(self, request, title="Open clearance for a cohort", form=form,
                     intro="Choose the students (a cohort, optionally one school or programme). The next "
                           "page shows how many get a new request and how many already have one before "
                           "anything is created.",
                     submit_label="Preview", cancel_url=changelist)


# --- certificates -------------------------------------------------------------------------------

class CertificateStatusFilter(DropdownFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("valid", "Valid"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "valid":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(m.Certificate, site=site)
class CertificateAdmin(ReadOnlyAdminMixin, RegistryModelAdmin):
    """Every certificate issued: whose, its code, when issued and revoked, and its PDF. Issued from
    the clearance requests (one or in bulk), revoked with them; nothing is edited here."""

    list_display = ["student_column", "code", "issued", "revoked", "pdf"]
    list_filter = [("request__cycle", RelatedDropdownFilter), CertificateStatusFilter]
    search_fields = ["code", "request__student__registration_number", "request__student__first_name",
                     "request__student__last_name"]
    list_select_related = ["request__student", "request__cycle", "issued_by"]
    ordering = ["-issued_at", "-pk"]
    fields = ["request_link", "code", "issued_at", "issued_by", "revoked_at", "revoked_by", "revoked_reason", "pdf"]
    readonly_fields = fields

    @display(description="student", ordering="request__student__registration_number")
    def student_column(self, obj):
        student = obj.request.student
        return format_html('<span class="font-medium text-important whitespace-nowrap">{}</span><br>'
                           '<span class="text-xs">{}</span>', student.registration_number, student.full_name)

    @display(description="issued", ordering="issued_at")
    def issued(self, obj):
        return format_html('<span class="whitespace-nowrap">{}</span>', f"{timezone.localtime(obj.issued_at):%d %b %Y}")

    @display(description="revoked", ordering="revoked_at", label={"revoked": "danger"})
    def revoked(self, obj):
        if obj.revoked_at is None:
            return None
        return "revoked", f"Revoked {timezone.localtime(obj.revoked_at):%d %b %Y}"

    @display(description="PDF")
    def pdf(self, obj):
        return certificate_link(self.admin_site.name, obj)

    @display(description="clearance request")
    def request_link(self, obj):
        return format_html('<a href="{}" class="text-primary-600 dark:text-primary-500">{}</a>',
                           reverse(f"{self.admin_site.name}:core_clearancerequest_change", args=[obj.request_id]),
                           obj.request)


# long exports wait here (clearance_admin/exports.py)
register_my_exports(site)
