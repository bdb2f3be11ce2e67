"""Exports from the sites: the Export button and "Export selected" action of every list
(django-import-export's, with unfold's ExportForm), and "My exports", where long exports wait.

A list exports exactly what its page would show the person: the ModelAdmin's own queryset (scoped
through core/permissions.py by ScopedAdminMixin) with the list's current filters and search, or the
rows they selected. The columns are the model's one resource (core/exports/resources.py); the file is
written by the same writers as the reports (core.exports: styled header, number and date formats,
every cell neutralised) and logged. A list longer than EXPORT_BACKGROUND_ROWS is written by a worker
(`list_export_task`, as the same person with their rights as they are then) and waits under
"My exports", downloaded through the permission-checked file view."""
from __future__ import annotations

import io
import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ExportActionMixin
from import_export.formats.base_formats import CSV, XLSX
from unfold.admin import ModelAdmin
from unfold.contrib.import_export.forms import ExportForm
from unfold.decorators import display

from core.exports import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, Counted, write_rows
from core.exports.resources import BY_NAME, RESOURCES, list_log_name
from core.history import current_ip
from core.models import ExportFile
from core.services.exports import export_fail, export_log_record, export_queue, export_take, export_write, \
    exports_sweep_quietly

from .downloads import file_url, protect
from .filters import parse_id

log = logging.getLogger(__name__)
LIST_EXPORT_TASK = "clearance_admin.exports.list_export_task"
IGNORED_PARAMS = {"o", "p", "_changelist_filters", "e", "_to_field", "_popup"}


def _fmt(file_format) -> str:
    return "xlsx" if isinstance(file_format, XLSX) else "csv"


class ListExportMixin(ExportActionMixin):
    """The Export button (the whole list as filtered) and the "Export selected" action, on every
    list whose model has a resource; none on the others."""

    export_form_class = ExportForm
    formats = [XLSX, CSV]
    show_change_form_export = False
    change_form_template = None          # the detail pages stay as they are

    def export_resource(self):
        resource = RESOURCES.get(self.model)
        return resource() if resource is not None else None

    def get_resource_classes(self, request):
        resource = RESOURCES.get(self.model)
        return [resource] if resource is not None else []

    def has_export_permission(self, request):
        return self.model in RESOURCES and self.has_view_permission(request)

    def get_valid_export_item_pks(self, request):
        # only what was posted and is in the person's list: a forged id exports nothing
        ids = {parse_id(v) for v in request.POST.getlist("export_items")} - {None}
        return list(self.get_queryset(request).filter(pk__in=ids).values_list("pk", flat=True))

    def export_admin_action(self, request, queryset):
        if not self.has_export_permission(request):
            raise PermissionDenied
        if request.POST.get("select_across") == "1":
            # "select all N": the whole filtered list, without N ids in a form
            url = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_export")
            return redirect(f"{url}?{request.GET.urlencode()}" if request.GET else url)
        return super().export_admin_action(request, queryset)

    def init_request_context_data(self, request, form):
        """The form says what it will export (how many rows, narrowed by what) and offers xlsx first."""
        context = super().init_request_context_data(request, form)
        form.fields["format"].initial = "0"
        resource = self.export_resource()
        if request.method == "GET" and resource is not None:
            count = self.get_export_queryset(request).count()
            narrowed = self.export_title(request, resource, None).split(" — ")[1]
            later = (" It is written in the background and listed under My exports." if count >
                     settings.EXPORT_BACKGROUND_ROWS else "")
            messages.info(request, f"{count:,} {self.opts.verbose_name if count == 1 else self.opts.verbose_name_plural}"
                                   f" ({narrowed}).{later}")
        context["title"] = f"Export {self.opts.verbose_name_plural}"
        return context

    def export_title(self, request, resource, selected: int | None) -> str:
        """The list, what narrowed it (the filters as the sidebar names them, the search) and when."""
        parts = []
        try:
            cl = self.get_changelist_instance(request)
            for spec in cl.filter_specs:
                used = set(getattr(spec, "expected_parameters", lambda: [])()) & set(request.GET)
                if not used and not getattr(spec, "default_applied", False):   # a list's default view narrows too
                    continue
                chosen = [str(c.get("display")) for c in spec.choices(cl) if c.get("selected")]
                parts.append(f"{spec.title}: {', '.join(chosen) or ', '.join(request.GET[u] for u in used)}")
            if cl.query:
                parts.append(f"search “{cl.query}”")
        except Exception:                   # a title is never worth an error: the raw parameters then
            parts = [f"{k}={v}" for k, v in request.GET.items() if k not in IGNORED_PARAMS]
        if selected is not None:
            parts.append(f"{selected} selected")
        made = timezone.localtime(timezone.now())
        return f"{resource.title} — {'; '.join(parts) or 'the whole list'} — {self.admin_site.site_header} — " \
               f"made {made:%Y-%m-%d %H:%M}"

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        resource = self.export_resource()
        if resource is None or not self.has_export_permission(request):
            raise PermissionDenied
        fmt = _fmt(file_format)
        selected = None
        if export_form is not None and "export_items" in export_form.changed_data:
            selected = sorted(int(pk) for pk in export_form.cleaned_data["export_items"])
        count = queryset.count()
        title = self.export_title(request, resource, len(selected) if selected is not None else None)
        query = request.GET.copy()
        for key in IGNORED_PARAMS - {"o"}:
            query.pop(key, None)
        filters = {"site": self.admin_site.name, "query": query.urlencode(), "selected": len(selected or [])}
        if count > settings.EXPORT_BACKGROUND_ROWS:
            export = export_queue(acting_user=request.user, site=self.admin_site.name, kind=ExportFile.Kind.LIST,
                                  name=resource.name, title=title, format=fmt, task=LIST_EXPORT_TASK,
                                  expected=count, ip=current_ip(),
                                  params={"role": self.admin_site.role, "model": self.opts.label_lower,
                                          "query": query.urlencode(), "ids": selected})
            messages.info(request, f"{count:,} rows: the export is being written in the background. It is listed "
                                   f"under My exports (#{export.pk}); download it from there when it is ready.")
            return redirect(reverse(f"{self.admin_site.name}:core_exportfile_changelist"))
        out = io.BytesIO()
        rows = Counted(resource.rows(queryset))
        write_rows(rows, columns=resource.columns(), title=title, sheet=resource.title, fmt=fmt, out=out)
        export_log_record(report=list_log_name(resource), filters=filters, format=fmt, rows=rows.count,
                          acting_user=request.user)
        name = f"{resource.name}-{timezone.localtime(timezone.now()):%Y%m%d-%H%M}.{fmt}"
        response = HttpResponse(out.getvalue(), content_type=XLSX_CONTENT_TYPE if fmt == "xlsx" else CSV_CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return protect(response)


def _request_as(user, site, query: str) -> HttpRequest:
    """A GET of the list as `user` made it: what the ModelAdmin's queryset, scope and filters read."""
    request = HttpRequest()
    request.method = "GET"
    request.GET = QueryDict(query)
    request.user = user
    request.current_app = site.name
    request.META = {"SERVER_NAME": "worker", "SERVER_PORT": "80"}
    return request


def list_export_task(export_id: int) -> str:
    """Write a list export queued under "My exports": the list's rows as its ModelAdmin gives them
    to the person now (their scope and rights as they are when it runs), with the filters and the
    selection they exported."""
    from django.apps import apps

    from .sites import SITES

    export = export_take(export_id)
    if export is None:
        return f"export #{export_id} is not waiting; nothing to do"
    params = export.params
    site = SITES.get(export.site)
    try:
        if site is None:
            raise LookupError(export.site)
        model = apps.get_model(params["model"])
        modeladmin = site._registry[model]
        resource_class = BY_NAME[export.name]
    except (KeyError, LookupError):
        export_fail(export, "That list cannot be exported any more.")
        return f"export #{export_id} not written: no such list"
    user = export.user
    request = _request_as(user, site, params.get("query") or "")
    if not (site.user_allowed(user) and modeladmin.has_export_permission(request)):
        export_fail(export, f"{user.email} may no longer export this list; nothing was written.")
        return f"export #{export_id} refused"
    try:
        queryset = modeladmin.get_export_queryset(request)
    except Exception as exc:                 # filters the list no longer has
        export_fail(export, f"The list's filters cannot be used any more ({exc}).")
        return f"export #{export_id} not written: {exc}"
    if params.get("ids") is not None:
        queryset = queryset.filter(pk__in=params["ids"])
    resource = resource_class()
    export_write(export, rows=resource.rows(queryset), columns=resource.columns(), title=export.title,
                 sheet=resource.title, log_name=list_log_name(resource),
                 log_filters={"site": site.name, "query": params.get("query") or "",
                              "selected": len(params.get("ids") or [])})
    return f"export #{export_id} written: {export.rows} rows"


class MyExportsAdmin(ModelAdmin):
    """The person's own exports on this site: what, when, how far, and the file when it is ready."""

    list_display = ["title_column", "format", "status_column", "rows_column", "created_at", "kept_until_column",
                    "download_column"]
    list_filter = ["status"]
    list_per_page = 50
    show_full_result_count = False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "My exports", **(extra_context or {})})

    def get_queryset(self, request):
        exports_sweep_quietly()
        return super().get_queryset(request).filter(user=request.user, site=self.admin_site.name)

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        if not self.admin_site.has_permission(request):
            return False
        return obj is None or (obj.user_id == request.user.pk and obj.site == self.admin_site.name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description="Export")
    def title_column(self, obj):
        return obj.title

    @display(description="Status", label={"Ready": "success", "Failed": "danger", "Waiting for a worker": "info",
                                          "Being written": "warning", "Deleted (kept time over)": "info"})
    def status_column(self, obj):
        return obj.get_status_display()

    @display(description="Rows")
    def rows_column(self, obj):
        expected = (obj.params or {}).get("expected")
        if obj.status == ExportFile.Status.RUNNING and expected:
            return f"{obj.rows:,} of {expected:,} ({min(100, obj.rows * 100 // max(expected, 1))}%)"
        if obj.status == ExportFile.Status.RUNNING:
            return f"{obj.rows:,} so far"
        if obj.status == ExportFile.Status.FAILED:
            return obj.error
        return f"{obj.rows:,}"

    @display(description="Kept until")
    def kept_until_column(self, obj):
        kept = obj.kept_until()
        return timezone.localtime(kept).strftime("%Y-%m-%d %H:%M") if kept else "—"

    @display(description="File")
    def download_column(self, obj):
        url = file_url(self.admin_site.name, obj) if obj.status == ExportFile.Status.DONE else None
        if url is None:
            return "—"
        return format_html('<a class="text-primary-600 underline" href="{}" download>Download {}</a>', url,
                           obj.file_name or obj.format)


def register_my_exports(site) -> None:
    site.register(ExportFile, MyExportsAdmin)


def my_exports_url(site_name: str) -> str | None:
    try:
        return reverse(f"{site_name}:core_exportfile_changelist")
    except NoReverseMatch:
        return None

