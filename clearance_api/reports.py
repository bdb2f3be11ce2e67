"""The reports over the API (part 3): `GET /api/reports/{name}/` is the Reports page's report
(core/selectors/reports.py) as JSON pages, or the file by `?format=xlsx|csv` through the same
writers (core/exports) and the same export log; one of more than EXPORT_BACKGROUND_ROWS rows is
written in the background and waits under "My exports" on the site, as there.

Who may read which report is the Reports page's rule (clearance_admin/sites.py: report_names):
the registry every report, finance the financial summary, office staff what is pending in the
offices they review only (scoped_filters)."""
from __future__ import annotations

import datetime
import io
import itertools
from decimal import Decimal

from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from clearance_admin.downloads import protect
from clearance_admin.sites import finance_site, registry_site, staff_site
from core import permissions
from core.exports import csv_chunks, xlsx_write
from core.exports.reports import FORMATS, file_name, report_title, scoped_filters
from core.history import current_ip
from core.models import ExportFile
from core.selectors.reports import FILTER_HELP, FILTER_NAMES, REPORTS
from core.services.exports import export_log_record, export_queue

from .permissions import role_permission
from .schema import ErrorSerializer

PAGE_ROWS = 100
MAX_PAGE = 100_000
# the sites whose Reports page a role reads, the unscoped first
SITES = ((permissions.REGISTRY, registry_site), (permissions.FINANCE, finance_site), (permissions.STAFF, staff_site))
MayReadReports = role_permission(permissions.REGISTRY, permissions.FINANCE, permissions.STAFF,
                                 message="Reports are for the registry, finance and office staff.")


def _site_for(user, name: str):
    for role, site in SITES:
        if name in site.report_names and permissions.may_use_role(user, role):
            return site
    return None


def _cell(value):
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


class ReportPageSerializer(serializers.Serializer):
    report = serializers.CharField()
    title = serializers.CharField(help_text="As the file's title row: the report, its filters, when it was made.")
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()),
                                 help_text="Each row's cells in `columns` order: text, numbers, amounts as decimal "
                                           "strings, moments in ISO 8601, or null.")
    page = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)


class QueuedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    export = serializers.IntegerField(help_text="The export's id under My exports on the site.")


PARAMETERS = [
    OpenApiParameter("format", str, enum=["json", "xlsx", "csv"], description="json (default): a page of rows."),
    OpenApiParameter("page", int, description=f"The page, {PAGE_ROWS} rows each (json only)."),
    *[OpenApiParameter(name, OpenApiTypes.STR, description=FILTER_HELP[name]) for name in FILTER_NAMES],
]


class ReportView(APIView):
    permission_classes = [MayReadReports]

    @extend_schema(tags=["reports"], parameters=PARAMETERS,
                   responses={(200, "application/json"): ReportPageSerializer,
                              (200, "text/csv"): OpenApiTypes.BINARY,
                              (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"):
                                  OpenApiTypes.BINARY,
                              202: OpenApiResponse(QueuedSerializer, description="A large file: written in the "
                                                                                 "background (My exports)."),
                              404: OpenApiResponse(ErrorSerializer, description="No report of that name for you.")},
                   summary="A report: JSON pages, or the whole as xlsx/csv",
                   description="Names: " + ", ".join(REPORTS) + ". A filter the report does not take, or a bad "
                               "value, is a 400 naming it.")
    def get(self, request, name: str):
        report = REPORTS.get(name)
        site = _site_for(request.user, name) if report else None
        if site is None:
            raise exceptions.NotFound("There is no report of that name for you.")
        fmt = request.query_params.get("format") or "json"
        if fmt not in ("json", *FORMATS):
            raise exceptions.ValidationError({"format": ["json, xlsx or csv."]})
        page_text = request.query_params.get("page") or "1"
        if not (page_text.isascii() and page_text.isdigit() and 1 <= int(page_text) <= MAX_PAGE):
            raise exceptions.ValidationError({"page": [f"A page number from 1 to {MAX_PAGE:,}."]})
        page = int(page_text)
        unknown = sorted(set(request.query_params) - {"format", "page", *FILTER_NAMES})
        if unknown:
            raise exceptions.ValidationError({k: ["Unknown parameter."] for k in unknown})
        raw = {k: request.query_params.get(k) for k in FILTER_NAMES if request.query_params.get(k)}
        filters = scoped_filters(report.parse(raw), user=request.user, role=site.role)
        if fmt != "json":
            return self.download(request, site, report, filters, fmt, raw)
        shown = list(itertools.islice(report.rows(filters), (page - 1) * PAGE_ROWS, page * PAGE_ROWS + 1))
        link = request.build_absolute_uri(request.path)

        def url(p):
            q = request.query_params.copy()
            q["page"] = str(p)
            return f"{link}?{q.urlencode()}"
        return Response({"report": report.name, "title": report_title(report, filters),
                         "columns": report.header(filters),
                         "rows": [[_cell(c) for c in row] for row in shown[:PAGE_ROWS]], "page": page,
                         "next": url(page + 1) if len(shown) > PAGE_ROWS else None,
                         "previous": url(page - 1) if page > 1 else None})

    def download(self, request, site, report, filters, fmt, raw):
        """As the Reports page: at once up to EXPORT_BACKGROUND_ROWS rows, else queued."""
        limit = settings.EXPORT_BACKGROUND_ROWS
        first = list(itertools.islice(report.rows(filters), limit + 1))
        if len(first) > limit:
            export = export_queue(acting_user=request.user, site=site.name, kind=ExportFile.Kind.REPORT,
                                  name=report.name, title=report_title(report, filters), format=fmt,
                                  task="core.tasks.export_report_task", ip=current_ip(),
                                  params={"role": site.role, "filters": raw})
            return Response({"detail": f"{report.title} has more than {limit:,} rows: it is being written in the "
                                       f"background, under My exports on /{site.name}/ (#{export.pk}).",
                             "export": export.pk}, status=status.HTTP_202_ACCEPTED)
        out = io.BytesIO()
        columns, title = report.columns(filters), report_title(report, filters)
        if fmt == "xlsx":
            xlsx_write(first, columns=columns, title=title, out=out, sheet=report.title)
        else:
            for chunk in csv_chunks(first, columns=columns):
                out.write(chunk.encode("utf-8"))
        export_log_record(report=report.name, filters=filters.as_dict(), format=fmt, rows=len(first),
                          acting_user=request.user)
        response = HttpResponse(out.getvalue(), content_type=FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="{file_name(report, fmt)}"'
        return protect(response)


urlpatterns = [path("reports/<str:name>/", ReportView.as_view(), name="report")]
