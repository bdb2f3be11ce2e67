"""The Export button and "Export selected" action of every list (django-import-export's, unfold's
form): exactly the rows of the person's list (scope, filters, search, selection), through the
neutralising writers, logged; long ones in the background under "My exports", downloadable by their
maker only; refused to anyone else by every path."""
from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest
from django.contrib.admin import helpers

from clearance_admin.exports import ListExportMixin
from clearance_admin.sites import SITES
from core import permissions
from core.exports.resources import RESOURCES
from core.models import ClearanceApproval, ExportFile, ExportLog, Hold
from tests import factories
from tests.conftest import _with_role
from tests.reports_world import world  # noqa: F401  (a fixture)

XLSX, CSV = "0", "1"            # the export form's format choices, in ListExportMixin.formats order


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def xlsx_rows(content: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


def export_url(site: str, model: str) -> str:
    return f"/{site}/core/{model}/export/"


@pytest.fixture
def lib_staff(make_reviewer):
    user = make_reviewer("LIB", is_staff=True, email="lib@clearance.test")
    return _with_role(user, permissions.STAFF)


def role_lists():
    """(site, model admin) of every list of every site whose model has a resource."""
    return [(name, admin) for name, site in SITES.items() for model, admin in site._registry.items()
            if model in RESOURCES and model is not ExportFile]


def test_every_list_of_every_site_whose_model_is_exported_offers_the_export():
    offered = {(name, type(admin).__name__) for name, admin in role_lists()}
    # the lists people work from, on each role site
    for expected in [("staff", "ClearanceApprovalAdmin"), ("staff", "HoldAdmin"), ("staff", "StudentAdmin"),
                     ("staff", "DelegationAdmin"), ("finance", "FinanceRecordAdmin"), ("finance", "FinanceHoldAdmin"),
                     ("finance", "PaymentAdmin"), ("finance", "BalanceImportAdmin"), ("registry", "StudentAdmin"),
                     ("registry", "ClearanceRequestAdmin"), ("registry", "CertificateAdmin"),
                     ("registry", "ClearanceCycleAdmin"), ("student", "MyNotificationAdmin")]:
        assert expected in offered
    for _, admin in role_lists():
        assert isinstance(admin, ListExportMixin)


@pytest.mark.parametrize("site, model, who", [
    ("registry", "student", "registry"), ("registry", "clearancerequest", "registry"),
    ("finance", "financerecord", "finance"), ("finance", "hold", "finance"), ("finance", "payment", "finance"),
    ("staff", "clearanceapproval", "lib"), ("staff", "hold", "lib"), ("staff", "student", "lib"),
])
def test_the_export_has_exactly_the_rows_of_the_persons_list(world, client, registry_user, finance_user, lib_staff,
                                                             site, model, who):
    user = {"registry": registry_user, "finance": finance_user, "lib": lib_staff}[who]
    client.force_login(user)
    listing = client.get(f"/{site}/core/{model}/")
    assert listing.status_code == 200
    assert export_url(site, model) in listing.content.decode()          # the Export button
    response = client.post(export_url(site, model), {"format": CSV})
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    rows = csv_rows(response)
    admin = SITES[site]._registry[next(m for m in RESOURCES if m._meta.model_name == model)]
    request = listing.wsgi_request
    # the list's rows: its scope, narrowed by a default filter where the list has one (the staff queue)
    expected = listing.context["cl"].queryset.count()
    assert expected <= admin.get_queryset(request).count()
    assert len(rows) - 1 == expected and expected > 0
    log = ExportLog.objects.get()
    assert (log.user, log.report, log.rows, log.format) == (user, f"list:{RESOURCES[admin.model].name}", expected,
                                                           "csv")


def test_an_office_exports_its_own_approvals_and_the_filters_and_search_it_set(world, client, lib_staff):
    client.force_login(lib_staff)
    response = client.post(export_url("staff", "clearanceapproval") + "?queue=all", {"format": CSV})
    rows = csv_rows(response)
    assert rows[0][:5] == ["Registration number", "Student", "School", "Programme", "Office"]
    assert {r[4] for r in rows[1:]} == {"LIB"}
    lib = ClearanceApproval.objects.filter(department__code="LIB").count()
    assert len(rows) - 1 == lib
    searched = client.post(export_url("staff", "clearanceapproval") + "?q=Ben", {"format": CSV})
    assert [r[1] for r in csv_rows(searched)[1:]] == ["Ben Baraka"]
    filtered = client.post(export_url("staff", "clearanceapproval") + "?status__exact=approved", {"format": XLSX})
    sheet = xlsx_rows(filtered.content)
    assert "Approved" in sheet[0][0]                             # the title says what narrowed it
    assert sheet[1][0] == "Registration number"
    assert {r[5] for r in sheet[2:]} == {"Approved"}


def test_export_selected_exports_the_selection_and_nothing_outside_the_list(world, client, lib_staff):
    client.force_login(lib_staff)
    mine = list(ClearanceApproval.objects.filter(department__code="LIB").order_by("pk").values_list("pk", flat=True))
    theirs = ClearanceApproval.objects.filter(department__code="FIN").values_list("pk", flat=True).first()
    form = client.post("/staff/core/clearanceapproval/?queue=all",
                       {"action": "export_admin_action", helpers.ACTION_CHECKBOX_NAME: [mine[0], theirs]})
    assert form.status_code == 200
    html = form.content.decode()
    assert 'action="/staff/core/clearanceapproval/export/' in html
    posted = set(re.findall(r'name="export_items" value="(\d+)"', html))
    assert posted == {str(mine[0])}
    # a forged id posted straight to the export: refused, nothing exported
    forged = client.post(export_url("staff", "clearanceapproval"), {"format": CSV, "export_items": [mine[0], theirs]})
    assert "Content-Disposition" not in forged and not ExportLog.objects.exists()
    response = client.post(export_url("staff", "clearanceapproval") + "?queue=all", {"format": CSV,
                                                                                   "export_items": [mine[0]]})
    rows = csv_rows(response)
    assert len(rows) == 2 and rows[1][4] == "LIB"


def test_select_all_exports_the_filtered_list_without_listing_its_ids(world, client, registry_user):
    client.force_login(registry_user)
    response = client.post("/registry/core/student/?expected_graduation_year=2026",
                           {"action": "export_admin_action", "select_across": "1",
                            helpers.ACTION_CHECKBOX_NAME: [world["a"].pk]})
    assert response.status_code == 302
    assert response["Location"] == "/registry/core/student/export/?expected_graduation_year=2026"


def test_text_from_people_is_neutralised_in_csv_and_xlsx(world, client, lib_staff):
    client.force_login(lib_staff)
    rows = csv_rows(client.post(export_url("staff", "hold"), {"format": CSV}))
    assert rows[1][3] == "'=HYPERLINK(\"x\")"
    sheet = xlsx_rows(client.post(export_url("staff", "hold"), {"format": XLSX}).content)
    assert sheet[2][3] == "'=HYPERLINK(\"x\")" and sheet[2][4] == 1500     # the amount stays a number


@pytest.mark.parametrize("who, url", [
    ("lib", "/finance/core/payment/export/"), ("lib", "/registry/core/student/export/"),
    ("registry", "/staff/core/clearanceapproval/export/"), ("registry", "/finance/core/financerecord/export/"),
    ("finance", "/registry/core/clearancerequest/export/"),
    ("student", "/registry/core/student/export/"), ("student", "/staff/core/hold/export/"),
])
def test_another_role_typing_an_export_url_gets_nothing(world, client, lib_staff, finance_user, registry_user, who,
                                                        url):
    user = {"lib": lib_staff, "finance": finance_user, "registry": registry_user}.get(who)
    if user is None:
        user = factories.StudentFactory(with_user=True).user
        _with_role(user, permissions.STUDENT)
    client.force_login(user)
    for response in (client.get(url), client.post(url, {"format": CSV})):
        assert response.status_code in (302, 403)
        assert "Content-Disposition" not in response
    assert not ExportLog.objects.exists()


def test_a_student_exports_their_own_notifications_only(client, student):
    _with_role(student.user, permissions.STUDENT)
    factories.NotificationFactory(user=student.user, title="Yours")
    factories.NotificationFactory(title="Someone else's")
    client.force_login(student.user)
    rows = csv_rows(client.post(export_url("student", "notification"), {"format": CSV}))
    assert [r[1] for r in rows[1:]] == ["Yours"]


# --- long exports: in the background, under "My exports" ---------------------------------------

def test_a_long_list_is_written_in_the_background_and_waits_under_my_exports(world, client, lib_staff, settings,
                                                                             django_capture_on_commit_callbacks):
    settings.EXPORT_BACKGROUND_ROWS = 0
    client.force_login(lib_staff)
    with django_capture_on_commit_callbacks(execute=True):      # the task runs inline (Q_CLUSTER sync)
        response = client.post(export_url("staff", "clearanceapproval") + "?q=Ben", {"format": XLSX})
    assert response.status_code == 302 and response["Location"] == "/staff/core/exportfile/"
    export = ExportFile.objects.get()
    expected = ClearanceApproval.objects.filter(department__code="LIB", request__student__first_name="Ben")
    assert (export.status, export.user, export.kind, export.name) == ("done", lib_staff, "list", "approvals")
    assert export.rows == expected.count() == export.params["expected"]
    page = client.get("/staff/core/exportfile/")
    assert page.status_code == 200
    link = re.search(r'href="(/staff/files/export/\d+/)"', page.content.decode()).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    sheet = xlsx_rows(b"".join(download.streaming_content))
    assert "search “Ben”" in sheet[0][0] and len(sheet) - 2 == export.rows
    log = ExportLog.objects.get()
    assert (log.user, log.report, log.rows) == (lib_staff, "list:approvals", export.rows)


def test_a_long_report_is_written_in_the_background_as_its_maker_may_see_it(world, client, lib_staff, settings,
                                                                            django_capture_on_commit_callbacks):
    settings.EXPORT_BACKGROUND_ROWS = 1
    client.force_login(lib_staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get("/staff/reports/", {"report": "pending_by_department", "download": "csv"})
    assert response["Location"] == "/staff/core/exportfile/"
    export = ExportFile.objects.get()
    assert (export.status, export.kind, export.name) == ("done", "report", "pending_by_department")
    with export.file.open("rb") as handle:
        rows = list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig"))))
    assert {r[0] for r in rows[1:]} == {"LIB"} and len(rows) - 1 == export.rows == 2


def test_my_exports_are_mine_on_this_site_only(world, client, lib_staff, make_reviewer, registry_user, settings,
                                               django_capture_on_commit_callbacks):
    settings.EXPORT_BACKGROUND_ROWS = 0
    client.force_login(lib_staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(export_url("staff", "hold"), {"format": CSV})
    export = ExportFile.objects.get()
    url = f"/staff/files/export/{export.pk}/"
    assert client.get(url).status_code == 200
    other = _with_role(make_reviewer("LIB", is_staff=True, email="other@clearance.test"), permissions.STAFF)
    client.force_login(other)
    assert client.get(url).status_code == 404                       # the same office, another person
    assert client.get(f"/staff/core/exportfile/{export.pk}/change/").status_code in (403, 404, 302)
    assert export.title not in client.get("/staff/core/exportfile/").content.decode()
    # the maker on another site of theirs: not there either
    _with_role(lib_staff, permissions.REGISTRY)
    client.force_login(lib_staff)
    assert client.get(f"/registry/files/export/{export.pk}/").status_code == 404
    # and once they lose the role it was made with
    lib_staff.groups.remove(*lib_staff.groups.filter(name=permissions.STAFF))
    assert client.get(url).status_code in (302, 403, 404)


def test_a_background_export_checks_the_makers_rights_again_when_it_runs(world, client, lib_staff, settings):
    settings.EXPORT_BACKGROUND_ROWS = 0
    client.force_login(lib_staff)
    client.post(export_url("staff", "hold"), {"format": CSV})       # queued: on_commit has not fired
    export = ExportFile.objects.get()
    assert export.status == "queued"
    lib_staff.groups.remove(*lib_staff.groups.filter(name=permissions.STAFF))
    from clearance_admin.exports import list_export_task
    assert "refused" in list_export_task(export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and "may no longer export" in export.error and not export.file
    assert Hold.objects.exists() and not ExportLog.objects.exists()


def test_a_background_export_of_a_site_that_is_gone_fails_with_a_reason(world, client, lib_staff, settings):
    settings.EXPORT_BACKGROUND_ROWS = 0
    client.force_login(lib_staff)
    client.post(export_url("staff", "hold"), {"format": CSV})
    export = ExportFile.objects.get()
    ExportFile.objects.filter(pk=export.pk).update(site="retired")   # a site renamed between queue and run
    from clearance_admin.exports import list_export_task
    assert "no such list" in list_export_task(export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and "cannot be exported any more" in export.error
