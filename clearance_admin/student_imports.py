"""/registry/ — graduand imports: the registry uploads a cohort's list from the student records
system, sees the preview (new students, changed ones old → new, errors, unknown programmes and
schools, rows skipped) and confirms or cancels it (core/services/student_imports.py).

Every page answers from `scope()`, which is `permissions.may_import_students`: the registry only,
and the services ask it again whatever the page lets through. The preview page is drawn from the
stored plan alone: its queries do not grow with the file."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action, display
from unfold.enums import ActionVariant
from unfold.widgets import UnfoldAdminFileFieldWidget

from core import permissions
from core.imports.balances import MAX_FILE_BYTES, READABLE_EXTENSIONS, READABLE_KINDS
from core.models import StudentImport
from core.services.student_imports import (student_import_apply, student_import_cancel, student_import_preview,
                                           student_import_preview_again)

from .downloads import file_link
from .mixins import RoleModelAdmin
from .sites import registry_site as site

PREVIEW_ROWS = 200
STATUS_LABELS = {"applied": "success", "failed": "danger", "cancelled": "info", "previewed": "primary"}


class StudentImportUploadForm(forms.Form):
    file = forms.FileField(label="List of graduands",
                           widget=UnfoldAdminFileFieldWidget(attrs={"accept": ",".join(READABLE_EXTENSIONS)}),
                           help_text=f"{READABLE_KINDS}, up to {MAX_FILE_BYTES // 1024 // 1024} MB, as the student "
                                     "records system exports it: registration number (Adm No, Reg No), surname and "
                                     "other names (or one Name column), programme and school (code or name), "
                                     "expected graduation (Graduation Year, Cohort); optionally year of study, "
                                     "hostel (yes/no), email and phone. The header row need not be the first.")

    def clean_file(self):
        f = self.cleaned_data["file"]
        if not (f.name or "").lower().endswith(READABLE_EXTENSIONS):
            raise ValidationError(f"{f.name} is not a spreadsheet: upload an {READABLE_KINDS} file.", code="extension")
        return f


@admin.register(StudentImport, site=site)
class StudentImportAdmin(RoleModelAdmin):
    list_display = ("import_display", "uploaded_by", "created_at", "status_display", "rows_total", "new_count",
                    "changed_count", "unchanged_count", "error_count", "skipped_count")
    list_display_links = ("import_display",)
    list_select_related = ("uploaded_by",)
    list_filter = ("status",)
    search_fields = ("original_name",)
    ordering = ("-created_at", "-pk")
    actions_list = ["import_students"]
    actions_detail = ["preview"]
    scope_refusal = "Graduand imports are the registry's."
    fieldsets = (
        (None, {"fields": ("original_name", "stored_file", "uploaded_by", "created_at", "status_badge", "applied_at",
                           "failure_reason")}),
        ("Counts", {"fields": ("rows_total", "new_count", "changed_count", "unchanged_count", "error_count",
                               "skipped_count", "invited_display")}),
    )
    readonly_fields = ("original_name", "stored_file", "uploaded_by", "created_at", "status_badge", "applied_at",
                       "failure_reason", "rows_total", "new_count", "changed_count", "unchanged_count", "error_count",
                       "skipped_count", "invited_display")

    @display(description="invited")
    def invited_display(self, obj):
        return obj.invited_count if obj.status == StudentImport.Status.APPLIED else "—"

    def scope(self, request, queryset):
        return queryset if permissions.may_import_students(request.user) else queryset.none()

    def has_module_permission(self, request):
        return permissions.may_import_students(request.user)

    def has_view_permission(self, request, obj=None):
        return permissions.may_import_students(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_import_permission(self, request, obj=None):
        return permissions.may_import_students(request.user)

    # --- columns -------------------------------------------------------------------------------

    @display(description="File", ordering="original_name")
    def import_display(self, obj):
        return obj.original_name or f"Graduand import #{obj.pk}"

    @display(description="Status", ordering="status", label=STATUS_LABELS)
    def status_display(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Status")
    def status_badge(self, obj):
        return obj.get_status_display()

    @display(description="Stored file")
    def stored_file(self, obj):
        return file_link(self.admin_site.name, obj)

    # --- pages ---------------------------------------------------------------------------------

    def object_url(self, obj, name="change"):
        return reverse(f"{self.admin_site.name}:core_studentimport_{name}", args=[obj.pk])

    def changelist_url(self):
        return reverse(f"{self.admin_site.name}:core_studentimport_changelist")

    def _page(self, request, template, **context):
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "subtitle": None,
            "changelist_url": self.changelist_url(), **context})

    @action(description="Import graduands", permissions=["import"], icon="upload_file", url_path="import",
            variant=ActionVariant.PRIMARY)
    def import_students(self, request):
        form = StudentImportUploadForm(request.POST, request.FILES) if request.method == "POST" else \
            StudentImportUploadForm()
        if form.is_bound and form.is_valid():
            try:
                si = student_import_preview(file=form.cleaned_data["file"], acting_user=request.user)
            except ValidationError as exc:              # ImportFileError too: nothing was stored
                form.add_error("file", exc.messages)
            else:
                return HttpResponseRedirect(self.object_url(si, "preview"))
        return self._page(request, "registry/student_import_upload.html", form=form, title="Import graduands")

    @action(description="Preview", permissions=["import"], icon="fact_check", url_path="preview")
    def preview(self, request, object_id):
        si = self.get_object(request, object_id)
        if si is None:
            raise Http404("No such graduand import.")
        if request.method == "POST":
            return self._post_preview(request, si)
        return self.preview_page(request, si)

    def _post_preview(self, request, si):
        try:
            if "_preview_again" in request.POST:
                again = student_import_preview_again(student_import=si, acting_user=request.user)
                self.message_user(request, f"{again} compares the file of {si} with the students as they are now.",
                                  messages.INFO)
                return HttpResponseRedirect(self.object_url(again, "preview"))
            if "_cancel" in request.POST:
                student_import_cancel(student_import=si, acting_user=request.user)
                self.message_user(request, f"Cancelled {si}: nothing was applied.", messages.SUCCESS)
                return HttpResponseRedirect(self.object_url(si, "preview"))
            skip = request.POST.get("skip_errors") in ("1", "on", "true")
            si = student_import_apply(student_import=si, acting_user=request.user, skip_errors=skip)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(self.object_url(si, "preview"))
        self.message_user(request, f"Applied {si}: {si.new_count} students created, {si.changed_count} updated; "
                                   f"{si.invited_count} invited to set a password (an email each, with an email "
                                   "address and no login yet).", messages.SUCCESS)
        return HttpResponseRedirect(self.object_url(si, "preview"))

    def preview_page(self, request, si):
        plan = si.plan or {}

        def first(items):
            return items[:PREVIEW_ROWS], max(len(items) - PREVIEW_ROWS, 0)

        new, new_more = first(plan.get("new", []))
        changed, changed_more = first(plan.get("changed", []))
        skipped, skipped_more = first(plan.get("skipped", []))
        errors, errors_more = first(si.errors or [])
        unknown = plan.get("unknown", {})
        return self._page(
            request, "registry/student_import_preview.html", si=si,
            title=f"Preview of {si}" if si.status == StudentImport.Status.PREVIEWED else str(si),
            detail_url=self.object_url(si), applied=si.status == StudentImport.Status.APPLIED,
            can_confirm=si.status == StudentImport.Status.PREVIEWED,
            can_preview_again=si.status == StudentImport.Status.FAILED and bool(si.file),
            students_url=reverse(f"{self.admin_site.name}:core_student_changelist"),
            new=[dict(row=row, reg=reg, name=f"{v['first_name']} {v['last_name']}", school=shown.get("school", ""),
                      programme=shown.get("programme", ""), year=v["expected_graduation_year"])
                 for reg, row, v, shown in new], new_more=new_more,
            changed=[dict(row=row, reg=reg, diffs=[dict(field=f, old=old, new=new_value) for f, old, new_value in diffs])
                     for _sid, reg, row, _values, diffs in changed], changed_more=changed_more,
            errors=[e if isinstance(e, dict) else {"row": "", "column": "", "reason": str(e), "value": ""}
                    for e in errors], errors_more=errors_more,
            unknown_programmes=[dict(text=t, rows=", ".join(map(str, rows))) for t, rows in unknown.get("programmes", [])],
            unknown_schools=[dict(text=t, rows=", ".join(map(str, rows))) for t, rows in unknown.get("schools", [])],
            skipped=[dict(row=row, why=why) for row, why in skipped], skipped_more=skipped_more,
            notices=[w for w in si.warnings or [] if isinstance(w, str)])
