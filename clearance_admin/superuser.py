"""/admin/ — superusers: everything. Reference data is edited here; clearance decisions are made
through the services (from the role sites), so those models are read-only here."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.models import Group
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm

from core import models as m

from .mixins import HistoryModelAdmin
from .sites import superuser_site as site


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = m.User
        fields = ("email", "full_name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = m.User
        fields = "__all__"


class UserAdmin(BaseUserAdmin, HistoryModelAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_active", "is_staff", "is_superuser"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),)
    filter_horizontal = ["groups"]


class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


class ReadOnlyHistoryAdmin(HistoryModelAdmin):
    """Workflow records change only through the services; here they are shown with their history."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


@admin.register(m.ClearanceCycle, site=site)
class ClearanceCycleAdmin(HistoryModelAdmin):
    list_display = ["name", "graduation_year", "opens_on", "closes_on", "is_closed"]


@admin.register(m.ClearanceRequest, site=site)
class ClearanceRequestAdmin(ReadOnlyHistoryAdmin):
    list_display = ["student", "cycle", "status", "submitted_at", "completed_at"]
    list_filter = ["status", "cycle"]
    search_fields = ["student__registration_number"]
    list_select_related = ["student", "cycle"]
    show_full_result_count = False


@admin.register(m.ClearanceApproval, site=site)
class ClearanceApprovalAdmin(ReadOnlyHistoryAdmin):
    list_display = ["request", "department", "status", "decided_by", "decided_at"]
    list_filter = ["status", "department"]
    search_fields = ["request__student__registration_number"]
    list_select_related = ["request__student", "request__cycle", "department", "decided_by"]
    show_full_result_count = False


@admin.register(m.Hold, site=site)
class HoldAdmin(ReadOnlyHistoryAdmin):
    list_display = ["student", "department", "reason", "amount", "status", "source", "placed_at"]
    list_filter = ["status", "department", "source"]
    search_fields = ["student__registration_number", "reason"]
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


@admin.register(m.Payment, site=site)
class PaymentAdmin(ReadOnlyHistoryAdmin):
    list_display = ["transaction_code", "student", "amount", "method", "paid_at", "verified_at"]
    list_filter = ["method"]
    search_fields = ["transaction_code", "student__registration_number"]
    list_select_related = ["student"]
    show_full_result_count = False


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
