"""/admin/ — superusers: everything. Reference data is edited here; clearance decisions are made
through the services (from the role sites), so those models are read-only here."""
from __future__ import annotations

from axes import admin as axes_admin
from axes import models as axes_models
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.models import Group
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_q import admin as q_admin
from django_q import models as q_models
from django_q.conf import Conf
from guardian.shortcuts import get_objects_for_user
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from core import models as m
from core import permissions
from core.services import api_keys as api_key_services
from core.services import signin as signin_services
from core.services import status as status_services

from .downloads import file_link
from .mixins import HistoryModelAdmin, ReadOnlyAdminMixin
from .exports import register_my_exports
from .sites import superuser_site as site

site.index_template = "admin_site/index.html"


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = m.User
        fields = ("email", "full_name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = m.User
        fields = "__all__"


def current_scope(user) -> dict:
    """What the user reviews now: roles, offices granted by object permission, school limits."""
    return {
        "roles": sorted(g.name for g in user.groups.all()),
        "departments": list(get_objects_for_user(user, permissions.REVIEW_DEPARTMENT, klass=m.Department,
                                                 accept_global_perms=False, with_superuser=False)),
        "schools": list(get_objects_for_user(user, permissions.REVIEW_SCHOOL, klass=m.School,
                                             accept_global_perms=False, with_superuser=False)),
    }


class RolesAndScopeForm(forms.Form):
    """Roles (groups) and the offices (and, for the school office, schools) a user reviews."""

    roles = forms.ModelMultipleChoiceField(
        queryset=Group.objects.filter(name__in=permissions.ROLES).order_by("name"), required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="Every role but Student can log in to its admin site.")
    departments = forms.ModelMultipleChoiceField(
        label="Reviews these offices", queryset=m.Department.objects.order_by("stage", "code"), required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="The user decides these offices' clearance items and manages their holds (makes them "
                  "Department staff).")
    schools = forms.ModelMultipleChoiceField(
        label="School office limited to these schools", queryset=m.School.objects.order_by("code"),
        required=False, widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="Only for a school office (type School / faculty): none ticked means every school.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["departments"].label_from_instance = (
            lambda d: f"{d.code} — {d.name} ({d.get_type_display()}{'' if d.is_active else ', inactive'})")

    def clean(self):
        data = super().clean()
        departments = data.get("departments") or []
        if data.get("schools") and not any(d.type == m.Department.Type.FACULTY for d in departments):
            self.add_error("schools", "Schools limit only a school office; tick a school office "
                                      "(type School / faculty) among the offices, or untick the schools.")
        return data


class UserAdmin(BaseUserAdmin, HistoryModelAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    ordering = ["email"]
    list_display = ["email", "full_name", "roles_display", "second_factor", "is_active", "is_staff", "is_superuser"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        # roles (groups) are assigned with the reviewer scope, on the "Roles and reviewer scope" page
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),)
    show_full_result_count = False
    change_form_outer_before_template = "admin_site/user_scope_summary.html"
    actions = ["unlock_signin", "reset_second_factor"]
    actions_detail = ["edit_roles_and_scope"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(
            Prefetch("groups", queryset=Group.objects.only("pk", "name"))).annotate(
            has_second_factor=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))

    @display(description="Second factor", boolean=True)
    def second_factor(self, obj):
        return obj.has_second_factor

    @display(description="Roles")
    def roles_display(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "—"

    @action(description="Roles and reviewer scope", url_path="roles-and-scope-link", icon="manage_accounts",
            permissions=["change"])
    def edit_roles_and_scope(self, request, object_id):
        return redirect(reverse("admin:core_user_scope", args=[object_id], current_app=self.admin_site.name))

    @action(description="Unlock sign-in", permissions=["change"])
    def unlock_signin(self, request, queryset):
        for user in queryset:
            removed = signin_services.signin_unlock(user=user, acting_user=request.user)
            self.message_user(request, f"{user.email}: sign-in unlocked." if removed else
                              f"{user.email}: sign-in was not locked; nothing to unlock.",
                              messages.SUCCESS if removed else messages.INFO)

    @action(description="Reset second factor", permissions=["change"])
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            had = signin_services.second_factor_reset(user=user, acting_user=request.user)
            self.message_user(request, f"{user.email}: second factor reset; they set up a new one at their next "
                              "sign-in." if had else f"{user.email}: had no second factor set up; they set one "
                              "up at their next sign-in.", messages.SUCCESS if had else messages.INFO)

    def get_urls(self):
        return [
            path("<path:object_id>/scope/", self.admin_site.admin_view(self.scope_view), name="core_user_scope"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        user = self.get_object(request, object_id)
        if user is not None:
            extra_context = {**(extra_context or {}), "reviewer_scope": current_scope(user),
                             "scope_url": reverse("admin:core_user_scope", args=[user.pk],
                                                  current_app=self.admin_site.name)}
        return super().change_view(request, object_id, form_url, extra_context)

    def scope_view(self, request, object_id):
        """Assign roles and make the user a reviewer of offices (and schools) through
        core.permissions.reviewer_set_scope — never by editing guardian rows."""
        user = self.get_object(request, object_id)
        if user is None:
            raise Http404("No such user.")
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        scope = current_scope(user)
        if request.method == "POST":
            form = RolesAndScopeForm(request.POST)
            if form.is_valid():
                self._save_roles_and_scope(request, user, form.cleaned_data)
                return redirect(reverse("admin:core_user_change", args=[user.pk], current_app=self.admin_site.name))
        else:
            form = RolesAndScopeForm(initial={
                "roles": [g for g in user.groups.all() if g.name in permissions.ROLES],
                "departments": scope["departments"], "schools": scope["schools"]})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Roles and reviewer scope: {user}",
            "subtitle": None,
            "opts": self.opts,
            "original": user,
            "form": form,
            "reviewer_scope": scope,
            "change_url": reverse("admin:core_user_change", args=[user.pk], current_app=self.admin_site.name),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin_site/user_scope.html", context)

    @transaction.atomic
    def _save_roles_and_scope(self, request, user, data):
        permissions.user_set_roles_and_scope(user=user, roles=data["roles"], departments=data["departments"],
                                             schools=data["schools"], acting_user=request.user)
        scope = current_scope(user)
        self.message_user(request, "Saved. Roles: {}. Reviews: {}{}.".format(
            ", ".join(scope["roles"]) or "none",
            ", ".join(d.code for d in scope["departments"]) or "no office",
            (" (school office limited to " + ", ".join(s.code for s in scope["schools"]) + ")")
            if scope["schools"] else ""), messages.SUCCESS)
        if data["departments"] and not any(r.name == permissions.STAFF for r in data["roles"]):
            self.message_user(request, "Reviewing an office makes the user Department staff; that role was added.",
                              messages.INFO)


class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


class ReadOnlyHistoryAdmin(ReadOnlyAdminMixin, HistoryModelAdmin):
    """Workflow records change only through the services; here they are shown with their history."""

    def revert_disabled(self, request, obj=None):
        # Reverting would write around the services (and their rules); history is for reading here.
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("These records change only through the clearance workflow; history is "
                                   "shown, not reverted.")
        return super().history_form_view(request, object_id, version_id, extra_context)


site.register(m.User, UserAdmin)
site.register(Group, GroupAdmin)


@admin.register(m.School, site=site)
class SchoolAdmin(HistoryModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(m.AcademicDepartment, site=site)
class AcademicDepartmentAdmin(HistoryModelAdmin):
    list_display = ["code", "name", "school"]
    list_filter = ["school"]
    search_fields = ["code", "name"]
    list_select_related = ["school"]


@admin.register(m.Programme, site=site)
class ProgrammeAdmin(HistoryModelAdmin):
    list_display = ["code", "name", "academic_department"]
    list_filter = ["academic_department__school"]
    search_fields = ["code", "name"]
    list_select_related = ["academic_department"]


@admin.register(m.Student, site=site)
class StudentAdmin(HistoryModelAdmin):
    list_display = ["registration_number", "first_name", "last_name", "school", "programme",
                    "expected_graduation_year", "is_resident"]
    list_filter = ["school", "expected_graduation_year", "is_resident"]
    search_fields = ["registration_number", "first_name", "last_name", "email"]
    list_select_related = ["school", "programme"]
    autocomplete_fields = ["user"]
    show_full_result_count = False


@admin.register(m.Department, site=site)
class DepartmentAdmin(HistoryModelAdmin):
    list_display = ["code", "name", "type", "stage", "sla_days", "applies_to", "is_active"]
    list_filter = ["type", "stage", "is_active"]
    search_fields = ["code", "name"]
    filter_horizontal = ["schools"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "stage" in form.changed_data:
            # which items wait follows the stages: stored again for every request, in this save's transaction
            status_services.approvals_refresh_stage_open(None)


@admin.register(m.ClearanceCycle, site=site)
class ClearanceCycleAdmin(HistoryModelAdmin):
    list_display = ["name", "graduation_year", "opens_on", "closes_on", "is_closed"]


@admin.register(m.ClearanceRequest, site=site)
class ClearanceRequestAdmin(ReadOnlyHistoryAdmin):
    list_display = ["student", "cycle", "status", "submitted_at", "completed_at"]
    list_filter = ["status", "cycle"]
    search_fields = ["student__registration_number", "student__first_name", "student__last_name"]
    list_select_related = ["student", "cycle"]
    show_full_result_count = False


@admin.register(m.ClearanceApproval, site=site)
class ClearanceApprovalAdmin(ReadOnlyHistoryAdmin):
    list_display = ["request", "department", "status", "decided_by", "decided_at"]
    list_filter = ["status", "department"]
    # "Jane Wanjiru" finds her: each word must match the registration number or a name
    search_fields = ["request__student__registration_number", "request__student__first_name",
                     "request__student__last_name"]
    list_select_related = ["request__student", "request__cycle", "department", "decided_by"]
    show_full_result_count = False
    exclude = ["evidence"]          # shown as a link to this site's download view, never its storage URL
    readonly_fields = ["evidence_link", "response_file_link"]

    @display(description="evidence")
    def evidence_link(self, obj):
        return file_link(site.name, obj)

    @display(description="student's file")
    def response_file_link(self, obj):
        return file_link(site.name, obj, kind="response")


@admin.register(m.Hold, site=site)
class HoldAdmin(ReadOnlyHistoryAdmin):
    list_display = ["student", "department", "reason", "amount", "status", "source", "placed_at"]
    list_filter = ["status", "department", "source"]
    search_fields = ["student__registration_number", "student__first_name", "student__last_name", "reason"]
    list_select_related = ["student", "department"]
    show_full_result_count = False


@admin.register(m.FinanceRecord, site=site)
class FinanceRecordAdmin(ReadOnlyHistoryAdmin):
    list_display = ["student", "tuition_balance", "graduation_fee", "graduation_fee_status", "updated_at"]
    search_fields = ["student__registration_number"]
    list_select_related = ["student"]
    show_full_result_count = False


@admin.register(m.BalanceImport, site=site)
class BalanceImportAdmin(ReadOnlyHistoryAdmin):
    list_display = ["pk", "original_name", "status", "uploaded_by", "created_at", "updated_count", "error_count"]
    list_filter = ["status"]
    exclude = ["file"]
    readonly_fields = ["stored_file"]

    @display(description="stored file")
    def stored_file(self, obj):
        return file_link(site.name, obj)


@admin.register(m.StudentImport, site=site)
class StudentImportAdmin(ReadOnlyHistoryAdmin):
    list_display = ["pk", "original_name", "status", "uploaded_by", "created_at", "new_count", "changed_count",
                    "unchanged_count", "error_count"]
    list_filter = ["status"]
    list_select_related = ["uploaded_by"]
    exclude = ["file"]
    readonly_fields = ["stored_file"]

    @display(description="stored file")
    def stored_file(self, obj):
        return file_link(site.name, obj)


@admin.register(m.HoldImport, site=site)
class HoldImportAdmin(ReadOnlyHistoryAdmin):
    list_display = ["pk", "original_name", "department", "status", "full_list", "uploaded_by", "created_at",
                    "placed_count", "updated_count", "released_count", "error_count"]
    list_filter = ["status", "department"]
    list_select_related = ["department", "uploaded_by"]
    exclude = ["file"]
    readonly_fields = ["stored_file"]

    @display(description="stored file")
    def stored_file(self, obj):
        return file_link(site.name, obj)


@admin.register(m.Payment, site=site)
class PaymentAdmin(ReadOnlyHistoryAdmin):
    list_display = ["transaction_code", "student", "amount", "method", "paid_at", "verified_at"]
    list_filter = ["method"]
    search_fields = ["transaction_code", "student__registration_number"]
    list_select_related = ["student"]
    show_full_result_count = False
    exclude = ["receipt"]
    readonly_fields = ["receipt_link"]

    @display(description="receipt")
    def receipt_link(self, obj):
        return file_link(site.name, obj)


@admin.register(m.GownIssuance, site=site)
class GownIssuanceAdmin(ReadOnlyHistoryAdmin):
    list_display = ["gown_code", "size", "student", "issued_at", "returned_at", "deposit", "deposit_status"]
    list_filter = ["deposit_status", "size"]
    list_select_related = ["student"]


@admin.register(m.Notification, site=site)
class NotificationAdmin(ReadOnlyHistoryAdmin):
    list_display = ["user", "title", "kind", "created_at", "read_at"]
    list_filter = ["kind"]
    list_select_related = ["user"]


@admin.register(m.Certificate, site=site)
class CertificateAdmin(ReadOnlyHistoryAdmin):
    list_display = ["request", "issued_at", "revoked_at"]
    list_select_related = ["request__student", "request__cycle"]


@admin.register(m.Delegation, site=site)
class DelegationAdmin(ReadOnlyHistoryAdmin):
    list_display = ["department", "from_user", "to_user", "starts_on", "ends_on", "revoked_at"]
    list_select_related = ["department", "from_user", "to_user"]


# --- API keys for systems (clearance_api/keys.py, README "The API") ------------------------------
# A key acts as the account it is bound to (a "system" user with one role and its offices, set up
# above like a person of that role). The key is shown once, on creation; revoked, never deleted.

class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = m.ApiKey
        fields = ["name", "user", "expiry_date"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "user" in self.fields:           # the add form (a key's page shows it read-only)
            self.fields["user"].queryset = m.User.objects.filter(is_active=True, is_superuser=False).order_by("email")

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                data["name"] = api_key_services.api_key_check(name=data.get("name"), user=data.get("user"),
                                                              expires_at=data.get("expiry_date"))
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(m.ApiKey, site=site)
class ApiKeyAdmin(HistoryModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "user", "created", "expiry_date", "revoked"]
    list_filter = ["revoked"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__email"]
    readonly_fields = ["prefix", "user", "name", "expiry_date", "created", "created_by", "revoked",
                       "revoked_at", "revoked_by"]
    actions = ["revoke_selected"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return ["name", "user", "expiry_date"] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False            # revoked, not deleted: history keeps who made it and who ended it

    def save_model(self, request, obj, form, change):
        if change:
            return
        created, key = api_key_services.api_key_create(
            name=form.cleaned_data["name"], user=form.cleaned_data["user"],
            expires_at=form.cleaned_data.get("expiry_date"), acting_user=request.user)
        for field in ("id", "prefix", "hashed_key", "created", "created_by_id"):
            setattr(obj, field, getattr(created, field))
        obj._state.adding, obj._state.db = False, created._state.db
        self.message_user(request, format_html(
            "The key of “{}” (acting as {}) is <code>{}</code> — copy it now into the system that uses it: it "
            "is not stored and cannot be shown again.", created.name, created.user.email, key), messages.WARNING)

    def response_add(self, request, obj, post_url_continue=None):
        return redirect(reverse(f"{site.name}:core_apikey_change", args=[obj.pk]))

    def _revoke(self, request, keys):
        for api_key in keys:
            if api_key.revoked:
                self.message_user(request, f"{api_key.name} ({api_key.prefix}): already revoked.", messages.INFO)
                continue
            api_key_services.api_key_revoke(api_key=api_key, acting_user=request.user)
            self.message_user(request, f"{api_key.name} ({api_key.prefix}): revoked; requests with it are "
                                       "refused from now on.", messages.SUCCESS)

    @action(description="Revoke", permissions=["change"], icon="key_off")
    def revoke_selected(self, request, queryset):
        self._revoke(request, queryset)


# --- sign-in lockouts (django-axes), with unfold's look -------------------------------------------
# axes' own admin classes keep their columns and filters; unfold's ModelAdmin themes them. A row of
# "Access attempts" is one account at one address; "Unlock" forgets its failures.

@admin.register(axes_models.AccessAttempt, site=site)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin, ModelAdmin):
    actions = ["unlock_selected"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False

    @action(description="Unlock", permissions=["delete"])
    def unlock_selected(self, request, queryset):
        for attempt in queryset:
            signin_services.signin_unlock(username=attempt.username, ip=attempt.ip_address,
                                          acting_user=request.user)
            self.message_user(request, f"{attempt.username or '(no email)'} from {attempt.ip_address}: unlocked.",
                              messages.SUCCESS)


@admin.register(axes_models.AccessFailureLog, site=site)
class AccessFailureLogAdmin(ReadOnlyAdminMixin, axes_admin.AccessFailureLogAdmin, ModelAdmin):
    show_full_result_count = False


@admin.register(axes_models.AccessLog, site=site)
class AccessLogAdmin(ReadOnlyAdminMixin, axes_admin.AccessLogAdmin, ModelAdmin):
    show_full_result_count = False


# --- the task queue (django-q2), with unfold's look -------------------------------------------
# django_q's own admin classes keep their columns, filters and the "resubmit" action; unfold's
# ModelAdmin comes second so the pages render in the site's theme.

@admin.register(q_models.Schedule, site=site)
class ScheduleAdmin(q_admin.ScheduleAdmin, ModelAdmin):
    show_full_result_count = False


@admin.register(q_models.Success, site=site)
class SuccessAdmin(q_admin.TaskAdmin, ModelAdmin):
    show_full_result_count = False
    list_per_page = 50


@admin.register(q_models.Failure, site=site)
class FailureAdmin(q_admin.FailAdmin, ModelAdmin):
    show_full_result_count = False
    list_per_page = 50


@admin.register(q_models.OrmQ, site=site)
class QueuedTaskAdmin(q_admin.QueueAdmin, ModelAdmin):
    """Tasks waiting in the ORM broker (empty when the broker is Redis: see the dashboard)."""

    show_full_result_count = False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if Conf.ORM else qs.none()


# long exports wait here (clearance_admin/exports.py)
register_my_exports(site)
