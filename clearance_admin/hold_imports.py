"""/staff/ — hold imports: an office uploads its own list of holds (the library's overdue list, the
hostels' damage list), sees the preview, and confirms it (core/services/hold_imports.py).

The list and every page answer from `permissions.hold_imports_for` (the offices the clerk reviews
for every student); the upload form offers only `permissions.importable_departments`, so a posted
id of another office is "not one of the available choices", and the services ask
`permissions.may_import_holds` again whatever the page lets through."""
from __future__ import annotations


from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import action, display
from unfold.enums import ActionVariant
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminSelectWidget, UnfoldBooleanWidget

from core import permissions
from core.imports.balances import MAX_FILE_BYTES, READABLE_EXTENSIONS, READABLE_KINDS
from core.models import Department, HoldImport
from core.money import kes
from core.services.hold_imports import (hold_import_apply, hold_import_cancel, hold_import_preview,
                                        hold_import_preview_again)

from .downloads import file_link
from .mixins import RoleModelAdmin
from .sites import staff_site as site
from .staff import DepartmentFilter

PREVIEW_ROWS = 200
STATUS_LABELS = {"applied": "success", "failed": "danger", "cancelled": "info", "previewed": "primary"}


def _kes(amount) -> str:
    return kes(amount, "—")


class HoldImportUploadForm(forms.Form):
    department = forms.ModelChoiceField(label="Office", queryset=Department.objects.none(),
                                        widget=UnfoldAdminSelectWidget, empty_label=None,
                                        help_text="The office whose holds the file lists; only offices you review "
                                                  "for every student are offered.")
    file = forms.FileField(label="List of holds",
                           widget=UnfoldAdminFileFieldWidget(attrs={"accept": ",".join(READABLE_EXTENSIONS)}),
                           help_text=f"{READABLE_KINDS}, up to {MAX_FILE_BYTES // 1024 // 1024} MB: a registration "
                                     "number column, a reason column (Reason, Title, Book, Item, Description, "
                                     "Damage) and, if you charge one, an amount column. The header row need not be "
                                     "the first.")
    full_list = forms.BooleanField(
        label="This file is the full list", required=False, widget=UnfoldBooleanWidget,
        help_text="Tick it when the file lists everything your office holds today: holds placed by earlier imports "
                  "for a student and reason no longer in the file are then released. Holds placed by hand are never "
                  "released by an import. Leave it unticked to only add and update.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        offices = permissions.importable_departments(user).order_by("code")
        self.fields["department"].queryset = offices
        self.fields["department"].label_from_instance = lambda d: f"{d.code} — {d.name}"

    def clean_file(self):
        f = self.cleaned_data["file"]
        if not (f.name or "").lower().endswith(READABLE_EXTENSIONS):
            raise ValidationError(f"{f.name} is not a spreadsheet: upload an {READABLE_KINDS} file.", code="extension")
        return f


@admin.register(HoldImport, site=site)
class HoldImportAdmin(RoleModelAdmin):
    list_display = ("import_display", "department", "uploaded_by", "created_at", "status_display", "full_list",
                    "rows_total", "placed_count", "updated_count", "released_count", "not_found_count", "error_count")
    list_display_links = ("import_display",)
    list_select_related = ("department", "uploaded_by")
    list_filter = ("status", DepartmentFilter)
    search_fields = ("original_name",)
    ordering = ("-created_at", "-pk")
    actions_list = ["import_holds"]
    actions_detail = ["preview"]
    scope_refusal = "This hold import belongs to an office you do not review."
    fieldsets = (
        (None, {"fields": ("department", "original_name", "stored_file", "uploaded_by", "created_at", "status_badge",
                           "full_list", "applied_at", "failure_reason")}),
        ("Counts", {"fields": ("rows_total", "placed_count", "updated_count", "unchanged_count", "released_count",
                               "not_found_count", "error_count", "skipped_count", "holds_links")}),
    )
    readonly_fields = ("department", "original_name", "stored_file", "uploaded_by", "created_at", "status_badge",
                       "full_list", "applied_at", "failure_reason", "rows_total", "placed_count", "updated_count",
                       "unchanged_count", "released_count", "not_found_count", "error_count", "skipped_count",
                       "holds_links")

    def scope(self, request, queryset):
        return queryset & permissions.hold_imports_for(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_import_permission(self, request, obj=None):
        return permissions.importable_departments(request.user).exists()

    def has_reviewer_permission(self, request, obj=None):
        return self.has_view_permission(request)

    # --- columns -------------------------------------------------------------------------------

    @display(description="File", ordering="original_name")
    def import_display(self, obj):
        return obj.original_name or f"Hold import #{obj.pk}"

    @display(description="Status", ordering="status", label=STATUS_LABELS)
    def status_display(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Status")
    def status_badge(self, obj):
        return obj.get_status_display()

    @display(description="Stored file")
    def stored_file(self, obj):
        return file_link(self.admin_site.name, obj)

    @display(description="Holds")
    def holds_links(self, obj):
        links = self.holds_urls(obj)
        return format_html('<a class="text-primary-600 underline" href="{}">Active holds it placed or updated</a> · '
                           '<a class="text-primary-600 underline" href="{}">Holds it released</a>',
                           links["active"], links["released"])

    def holds_urls(self, obj) -> dict:
        base = reverse(f"{self.admin_site.name}:core_hold_changelist")
        return {"active": f"{base}?hold_import={obj.pk}&status__exact=active",
                "released": f"{base}?hold_import={obj.pk}&status__exact=released",
                "office": f"{base}?department={obj.department_id}&status__exact=active"}

    # --- pages ---------------------------------------------------------------------------------

    def object_url(self, obj, name="change"):
        return reverse(f"{self.admin_site.name}:core_holdimport_{name}", args=[obj.pk])

    def changelist_url(self):
        return reverse(f"{self.admin_site.name}:core_holdimport_changelist")

    def object_or_404(self, request, object_id):
        obj = self.get_object(request, object_id)   # PermissionDenied when it is another office's
        if obj is None:
            raise Http404("No such hold import.")
        return obj

    def _page(self, request, template, **context):
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "subtitle": None,
            "changelist_url": self.changelist_url(), **context})

    @action(description="Import holds", permissions=["import"], icon="upload_file", url_path="import",
            variant=ActionVariant.PRIMARY)
    def import_holds(self, request):
        if request.method == "POST":
            form = HoldImportUploadForm(request.POST, request.FILES, user=request.user)
        else:
            form = HoldImportUploadForm(user=request.user)
            offices = form.fields["department"].queryset
            if len(offices[:2]) == 1:
                form.initial["department"] = offices[0].pk
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                hi = hold_import_preview(file=data["file"], department=data["department"],
                                         full_list=data["full_list"], acting_user=request.user)
            except ValidationError as exc:              # ImportFileError too: nothing was stored
                form.add_error("file", exc.messages)
            else:
                return HttpResponseRedirect(self.object_url(hi, "preview"))
        return self._page(request, "staff/hold_import_upload.html", form=form, title="Import holds")

    @action(description="Preview", permissions=["reviewer"], icon="fact_check", url_path="preview")
    def preview(self, request, object_id):
        hi = self.object_or_404(request, object_id)
        if request.method == "POST":
            return self._post_preview(request, hi)
        return self.preview_page(request, hi)

    def _post_preview(self, request, hi):
        try:
            if "_preview_again" in request.POST:
                again = hold_import_preview_again(hold_import=hi, acting_user=request.user)
                self.message_user(request, f"{again} compares the file of {hi} with the office's holds as they are "
                                           "now.", messages.INFO)
                return HttpResponseRedirect(self.object_url(again, "preview"))
            if "_cancel" in request.POST:
                hold_import_cancel(hold_import=hi, acting_user=request.user)
                self.message_user(request, f"Cancelled {hi}: nothing was applied.", messages.SUCCESS)
                return HttpResponseRedirect(self.object_url(hi, "preview"))
            skip = request.POST.get("skip_errors") in ("1", "on", "true")
            hi = hold_import_apply(hold_import=hi, acting_user=request.user, skip_errors=skip)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(self.object_url(hi, "preview"))
        self.message_user(request, f"Applied {hi}: {hi.placed_count} placed, {hi.updated_count} updated, "
                                   f"{hi.released_count} released.", messages.SUCCESS)
        return HttpResponseRedirect(self.object_url(hi, "preview"))

    def preview_page(self, request, hi):
        plan = hi.plan or {}

        def first(name):
            items = plan.get(name, [])
            return items[:PREVIEW_ROWS], max(len(items) - PREVIEW_ROWS, 0)

        place, place_more = first("place")
        update, update_more = first("update")
        release, release_more = first("release")
        not_found, not_found_more = first("not_found")
        skipped, skipped_more = first("skipped")
        errors = hi.errors or []
        by_hand = [item for item in plan.get("unchanged", []) if item[-1]]
        may_import = permissions.may_import_holds(request.user, hi.department)
        return self._page(
            request, "staff/hold_import_preview.html", hi=hi,
            title=f"Preview of {hi}" if hi.status == HoldImport.Status.PREVIEWED else str(hi),
            detail_url=self.object_url(hi), applied=hi.status == HoldImport.Status.APPLIED,
            can_confirm=hi.status == HoldImport.Status.PREVIEWED and may_import,
            can_preview_again=hi.status == HoldImport.Status.FAILED and bool(hi.file) and may_import,
            holds=self.holds_urls(hi),
            place=[dict(row=row, reg=reg, reason=reason, amount=_kes(amount)) for _sid, reg, row, reason, amount in place],
            place_more=place_more,
            update=[dict(row=row, reg=reg, old_reason=old_reason, reason=reason, old_amount=_kes(old), amount=_kes(new),
                         reason_changed=old_reason != reason)
                    for _hid, _sid, reg, row, old_reason, reason, old, new in update],
            update_more=update_more,
            release=[dict(reg=reg, reason=reason, amount=_kes(amount)) for _hid, _sid, reg, reason, amount in release],
            release_more=release_more,
            by_hand=[dict(row=row, reg=reg, reason=reason) for _hid, _sid, reg, row, reason, _ in by_hand[:PREVIEW_ROWS]],
            not_found=[dict(row=row, reg=reg) for row, reg in not_found], not_found_more=not_found_more,
            skipped=[dict(row=row, why=why) for row, why in skipped], skipped_more=skipped_more,
            errors=[e if isinstance(e, dict) else {"row": "", "column": "", "reason": str(e), "value": ""}
                    for e in errors[:PREVIEW_ROWS]],
            errors_more=max(len(errors) - PREVIEW_ROWS, 0),
            notices=[w for w in hi.warnings or [] if isinstance(w, str)])
