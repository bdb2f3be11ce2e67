"""The Reports page: pick a report and filters, see it a page at a time, download it as xlsx or
csv (each download logged). One view class for every site; each site offers its own reports
(RoleSite.report_names): the registry all of them, finance the financial summary, office staff
what is pending in *their* offices (scoped through core/permissions.py). The site's gate
(RoleSite.admin_view) refuses other roles; a report the site does not offer is a form error."""
from __future__ import annotations

import datetime
import io
import itertools

from django import forms
from django.core.exceptions import ValidationError
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from core import permissions
from core.exports import write_rows
from core.exports.reports import FORMATS, file_name, report_title, scoped_filters
from core.history import current_ip
from core.models import ClearanceCycle, Department, ExportFile, Programme, School, Student
from core.selectors.reports import FILTER_NAMES, REPORTS
from core.services.exports import export_log_record, export_queue

from .downloads import protect

PAGE_ROWS = 50


def _select():
    return UnfoldAdminSelectWidget()


class CodeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.code} — {obj.name}"


class ReportForm(forms.Form):
    """Which report, and its filters; read from the query string (the page and the download links
    carry the same one). Every value is checked by a field or by the report's own parser."""

    report = forms.ChoiceField(widget=_select())
    cycle = forms.ModelChoiceField(ClearanceCycle.objects.order_by("-opens_on"), required=False, widget=_select())
    cohort = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, widget=_select(),
                                    label="Cohort (graduation year)")
    school = CodeChoiceField(School.objects.all(), to_field_name="code", required=False, widget=_select())
    programme = CodeChoiceField(Programme.objects.all(), to_field_name="code", required=False, widget=_select())
    department = CodeChoiceField(Department.objects.all(), to_field_name="code", required=False, widget=_select(),
                                 label="Office")
    since = forms.DateField(required=False, widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000, widget=forms.HiddenInput)
    download = forms.ChoiceField(required=False, choices=[("", "")] + [(f, f) for f in FORMATS],
                                 widget=forms.HiddenInput)

    def __init__(self, *args, reports, departments, **kwargs):
        super().__init__(*args, **kwargs)
        self.reports = {name: REPORTS[name] for name in reports}
        self.fields["report"].choices = [(r.name, r.title) for r in self.reports.values()]
        self.fields["cohort"].choices = [("", "---------")] + [
            (year, year) for year in Student.objects.order_by("-expected_graduation_year")
            .values_list("expected_graduation_year", flat=True).distinct()]
        self.fields["department"].queryset = departments
        if len(self.reports) == 1:
            self.fields["report"].initial = next(iter(self.reports))
        # a filter no offered report takes is not shown
        taken = {name for r in self.reports.values() for name in r.filters}
        for name in FILTER_NAMES:
            if name not in taken:
                del self.fields[name]

    def clean(self):
        data = super().clean()
        report = self.reports.get(data.get("report"))
        if report is None or self.errors:
            return data
        raw = {name: _as_text(data.get(name)) for name in FILTER_NAMES if data.get(name) not in (None, "")}
        data["raw"] = raw
        try:
            data["filters"] = report.parse(raw)
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, problems)
        data["report_obj"] = report
        return data


def _as_text(value):
    """A cleaned field as the report's parser reads it (the command line's words)."""
    if isinstance(value, ClearanceCycle):
        return value.pk
    if isinstance(value, (School, Programme, Department)):
        return value.code
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


class ReportsView:
    """GET only: the form; with a valid form, a page of rows or (download=xlsx|csv) the file."""

    def __init__(self, site):
        self.site = site

    def __call__(self, request):
        user = request.user
        scoped = self.site.role == permissions.STAFF
        departments = permissions.reviewable_departments(user).order_by("code") if scoped \
            else Department.objects.order_by("stage", "code")
        form = ReportForm(request.GET or None, reports=self.site.report_names, departments=departments)
        context = {"form": form, "rows": None}
        if form.is_bound and form.is_valid():
            report, filters = form.cleaned_data["report_obj"], form.cleaned_data["filters"]
            filters = scoped_filters(filters, user=user, role=self.site.role)
            fmt = form.cleaned_data.get("download")
            if fmt:
                return self.download(request, report, filters, fmt, form.cleaned_data["raw"])
            page = form.cleaned_data.get("page") or 1
            shown = list(itertools.islice(report.rows(filters), (page - 1) * PAGE_ROWS, page * PAGE_ROWS + 1))
            query = request.GET.copy()
            query.pop("download", None)

            def link(**changes):
                q = query.copy()
                for key, value in changes.items():
                    q[key] = value
                return "?" + q.urlencode()
            context.update(report=report, filters=filters, title_row=report_title(report, filters),
                           header=report.header(filters), rows=shown[:PAGE_ROWS], page=page,
                           first_row=(page - 1) * PAGE_ROWS + 1,
                           last_row=(page - 1) * PAGE_ROWS + len(shown[:PAGE_ROWS]),
                           previous_url=link(page=page - 1) if page > 1 else None,
                           next_url=link(page=page + 1) if len(shown) > PAGE_ROWS else None,
                           xlsx_url=link(download="xlsx", page=1), csv_url=link(download="csv", page=1))
        request.current_app = self.site.name
        return TemplateResponse(request, "registry/reports.html", {
            **self.site.each_context(request), "title": "Reports", "reports": form.reports.values(),
            "reports_url": reverse(f"{self.site.name}:reports"), **context})

    def download(self, request, report, filters, fmt, raw):
        """The file at once when the report has at most EXPORT_BACKGROUND_ROWS rows (those rows are
        read once, and written); a longer one is queued for a worker and waits under "My exports"."""
        limit = settings.EXPORT_BACKGROUND_ROWS
        first = list(itertools.islice(report.rows(filters), limit + 1))
        if len(first) > limit:
            export = export_queue(acting_user=request.user, site=self.site.name, kind=ExportFile.Kind.REPORT,
                                  name=report.name, title=report_title(report, filters), format=fmt,
                                  task="core.tasks.export_report_task", ip=current_ip(),
                                  params={"role": self.site.role, "filters": raw})
            messages.info(request, f"{report.title} has more than {limit:,} rows: it is being written in the "
                                   f"background. It is listed under My exports (#{export.pk}); download it from "
                                   "there when it is ready.")
            return redirect(reverse(f"{self.site.name}:core_exportfile_changelist"))
        out = io.BytesIO()
        write_rows(first, columns=report.columns(filters), title=report_title(report, filters), sheet=report.title,
                   fmt=fmt, out=out)
        export_log_record(report=report.name, filters=filters.as_dict(), format=fmt, rows=len(first),
                          acting_user=request.user)
        response = HttpResponse(out.getvalue(), content_type=FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="{file_name(report, fmt)}"'
        return protect(response)
