"""/admin/ through the HTTP client, as a superuser: roles and reviewer scope, the task queue pages,
the dashboard, and history with revert (for administrators only)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.urls import include, path, reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from clearance_admin.mixins import HistoryModelAdmin
from clearance_admin.sites import SITES, RoleSite
from core import permissions
from core.models import ClearanceApproval, Department, School
from tests import factories
from tests.conftest import approval_of


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def scope_url(user):
    return reverse("admin:core_user_scope", args=[user.pk])


# --- roles and reviewer scope -------------------------------------------------------------------

@pytest.fixture
def schools(db):
    return {code: factories.SchoolFactory(code=code) for code in ("SCE", "SPA", "SBE")}


@pytest.fixture
def students_in_schools(schools, open_request):
    """One student with an open request per school."""
    return {code: open_request(factories.StudentFactory(school=school)) for code, school in schools.items()}


def test_scope_form_makes_a_reviewer_of_offices_and_schools(admin_client, make_user, offices, schools,
                                                            students_in_schools):
    user = make_user(email="newhire@clearance.test")
    assert not permissions.approvals_for(user).exists()
    page = admin_client.get(scope_url(user))
    assert page.status_code == 200
    assert "Reviews these offices" in page.content.decode()

    response = admin_client.post(scope_url(user), {
        "roles": [Group.objects.get(name=permissions.STAFF).pk],
        "departments": [offices["LIB"].pk, offices["SCH"].pk],
        "schools": [schools["SPA"].pk],
    }, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:core_user_change", args=[user.pk])
    assert any("Reviews: LIB, SCH" in t and "limited to SPA" in t for t in texts(response))
    user.refresh_from_db()
    assert user.is_staff
    assert permissions.has_role(user, permissions.STAFF)
    seen = set(permissions.approvals_for(user).values_list("department__code", "request__student__school__code"))
    # LIB for every school; the school office only for SPA
    assert seen == {("LIB", "SCE"), ("LIB", "SPA"), ("LIB", "SBE"), ("SCH", "SPA")}
    # the user page shows the current scope
    body = response.content.decode()
    assert 'id="reviewer-scope"' in body
    assert "LIB (Library)" in body and "SCH (School office)" in body


def test_scope_form_narrows_and_removes(admin_client, make_reviewer, offices, schools, students_in_schools):
    user = make_reviewer("LIB", "SPT", email="two@clearance.test")
    page = admin_client.get(reverse("admin:core_user_change", args=[user.pk])).content.decode()
    assert "LIB (Library), SPT (Sports)" in page

    admin_client.post(scope_url(user), {"roles": [Group.objects.get(name=permissions.STAFF).pk],
                                        "departments": [offices["SPT"].pk]})

    assert set(permissions.approvals_for(user).values_list("department__code", flat=True)) == {"SPT"}

    admin_client.post(scope_url(user), {"roles": [], "departments": []})

    user.refresh_from_db()
    assert not permissions.approvals_for(user).exists()
    assert not user.groups.filter(name__in=permissions.ROLES).exists()


def test_scope_form_refuses_schools_without_a_school_office(admin_client, make_user, offices, schools):
    user = make_user(email="wrong@clearance.test")

    response = admin_client.post(scope_url(user), {"departments": [offices["LIB"].pk],
                                                   "schools": [schools["SPA"].pk]})

    assert response.status_code == 200
    assert "Schools limit only a school office" in response.content.decode()
    assert not permissions.granted_departments(user).exists()
    assert not user.groups.exists()


def test_scope_form_assigns_roles_and_keeps_other_groups(admin_client, make_user):
    other = Group.objects.create(name="Newsletter")
    user = make_user(email="registrar@clearance.test")
    user.groups.add(other)

    admin_client.post(scope_url(user), {"roles": [Group.objects.get(name=permissions.REGISTRY).pk]})

    user.refresh_from_db()
    assert set(user.groups.values_list("name", flat=True)) == {"Newsletter", permissions.REGISTRY}
    assert user.is_staff  # a registry user logs in to /registry/


def test_scope_form_is_for_superusers_only(client, registry_user, make_user, offices):
    target = make_user(email="target@clearance.test")
    client.force_login(registry_user)

    response = client.post(scope_url(target), {"departments": [offices["FIN"].pk]})

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not permissions.granted_departments(target).exists()


def test_user_list_shows_roles_without_a_query_per_row(admin_client, make_user, django_assert_max_num_queries):
    for n in range(15):
        make_user(permissions.REGISTRY, email=f"r{n}@clearance.test")
    with django_assert_max_num_queries(20):
        response = admin_client.get(reverse("admin:core_user_changelist"))
    assert response.status_code == 200
    assert "Registry" in response.content.decode()


# --- task queue ---------------------------------------------------------------------------------

@pytest.fixture
def queue_rows(db):
    now = timezone.now()
    Schedule.objects.create(name="Overdue escalation", func="core.tasks.escalate_overdue",
                            schedule_type=Schedule.DAILY, next_run=now + timedelta(hours=3))
    Task.objects.create(id="a" * 32, name="balances-ok", func="core.tasks.import_balances", started=now,
                        stopped=now, success=True, result="done")
    Task.objects.create(id="b" * 32, name="report-broke", func="core.tasks.export_report", started=now,
                        stopped=now, success=False, result="Traceback: boom")
    OrmQ.objects.create(key="clearance", payload="x", lock=None)


@pytest.mark.parametrize("name", ["django_q_ormq_changelist", "django_q_schedule_changelist",
                                  "django_q_success_changelist", "django_q_failure_changelist"])
def test_task_queue_pages_render(admin_client, queue_rows, name):
    response = admin_client.get(reverse(f"admin:{name}"))
    assert response.status_code == 200


def test_task_queue_pages_show_their_rows(admin_client, queue_rows):
    assert "Overdue escalation" in admin_client.get(reverse("admin:django_q_schedule_changelist")).content.decode()
    assert "balances-ok" in admin_client.get(reverse("admin:django_q_success_changelist")).content.decode()
    failures = admin_client.get(reverse("admin:django_q_failure_changelist")).content.decode()
    assert "report-broke" in failures and "balances-ok" not in failures
    assert admin_client.get(reverse("admin:django_q_failure_change", args=["b" * 32])).status_code == 200


def test_schedule_add_and_change_pages_render(admin_client, queue_rows):
    schedule = Schedule.objects.get(name="Overdue escalation")
    assert admin_client.get(reverse("admin:django_q_schedule_add")).status_code == 200
    assert admin_client.get(reverse("admin:django_q_schedule_change", args=[schedule.pk])).status_code == 200
    queued = OrmQ.objects.get()
    assert admin_client.get(reverse("admin:django_q_ormq_change", args=[queued.pk])).status_code == 200


def test_task_queue_pages_refused_to_registry(client, registry_user, queue_rows):
    client.force_login(registry_user)
    response = client.get(reverse("admin:django_q_schedule_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- dashboard ----------------------------------------------------------------------------------

def test_dashboard_figures(admin_client, clearance, registry_user, lib_reviewer, queue_rows):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    ctx = response.context
    roles = {r["name"]: r["count"] for r in ctx["roles"]}
    assert roles[permissions.REGISTRY] == 1
    assert roles[permissions.STAFF] >= 1
    assert roles[permissions.STUDENT] == 1
    assert ctx["queue"]["failures"] == 1
    # the fixture's, and the system's own: the jobs sweep, the nightly backup, digests, escalation, closing cycles
    assert ctx["queue"]["schedules"] == 6
    assert ctx["queue"]["queued"] == 1
    assert {k["title"]: k["value"] for k in ctx["kpis"]}["Open requests"] == "1"
    body = response.content.decode()
    assert 'id="task-queue"' in body and 'id="users-per-role"' in body


# --- history and revert -------------------------------------------------------------------------

def _rename_school(client, school, new_name):
    response = client.post(reverse("admin:core_school_change", args=[school.pk]),
                           {"code": school.code, "name": new_name})
    assert response.status_code == 302, response.content.decode()[:2000]


def test_superuser_reverts_a_school_change(admin_client, db):
    school = factories.SchoolFactory(code="SPA", name="School of Pure Arts")
    _rename_school(admin_client, school, "School of Typos")
    first = school.history.earliest("history_date")

    history = admin_client.get(reverse("admin:core_school_history", args=[school.pk])).content.decode()
    assert "revert to a previous version" in history
    form = admin_client.get(reverse("admin:core_school_simple_history", args=[school.pk, first.history_id]))
    assert "Revert" in form.content.decode()

    response = admin_client.post(reverse("admin:core_school_simple_history", args=[school.pk, first.history_id]),
                                 {"code": "SPA", "name": "School of Pure Arts"})

    assert response.status_code == 302
    school.refresh_from_db()
    assert school.name == "School of Pure Arts"
    assert school.history.count() == 3


def test_superuser_reverts_a_department_change(admin_client, offices):
    lib = offices["LIB"]
    data = {"code": "LIB", "name": "Library", "type": lib.type, "head_email": "", "stage": 1, "sla_days": 7,
            "applies_to": lib.applies_to, "is_active": "on"}
    admin_client.post(reverse("admin:core_department_change", args=[lib.pk]), {**data, "sla_days": 30})
    lib.refresh_from_db()
    assert lib.sla_days == 30
    before = lib.history.filter(sla_days=7).latest("history_date")

    response = admin_client.post(reverse("admin:core_department_simple_history", args=[lib.pk, before.history_id]),
                                 data)

    assert response.status_code == 302
    lib.refresh_from_db()
    assert lib.sla_days == 7


def test_workflow_records_show_history_but_never_revert(admin_client, clearance, lib_reviewer):
    from core.services.approvals import approvals_reject
    lib = approval_of(clearance, "LIB")
    approvals_reject(approval_ids=[lib.pk], acting_user=lib_reviewer, reason="Book").raise_if_refused()
    first = lib.history.earliest("history_date")
    url = reverse("admin:core_clearanceapproval_simple_history", args=[lib.pk, first.history_id])

    assert admin_client.get(reverse("admin:core_clearanceapproval_history", args=[lib.pk])).status_code == 200
    page = admin_client.get(url).content.decode()
    assert "Press the 'Revert' button" not in page
    assert admin_client.post(url, {}).status_code == 403
    assert approval_of(clearance, "LIB").status == ClearanceApproval.Status.REJECTED


# A role site other than /admin/, with a history-tracked School admin, exactly as the role sites
# build theirs (HistoryModelAdmin). Served under /test-registry/ for these tests only.
class _TestRegistrySite(RoleSite):
    role = permissions.REGISTRY
    audience = "the registry"
    settings_name = "UNFOLD_REGISTRY"


_test_site = _TestRegistrySite(name="test_registry")
SITES.pop("test_registry", None)  # not a real site: keep it out of refusal messages
django_admin.register(School, site=_test_site)(type("RegistrySchoolAdmin", (HistoryModelAdmin,), {}))
django_admin.register(Department, site=_test_site)(type("RegistryDepartmentAdmin", (HistoryModelAdmin,), {}))

urlpatterns = [path("test-registry/", _test_site.urls), path("", include("clearance_admin.urls"))]


@pytest.fixture
def registry_with_school_change(registry_user):
    registry_user.user_permissions.add(*Permission.objects.filter(
        codename__in=["change_school", "change_department"], content_type__app_label="core"))
    return registry_user


@pytest.mark.urls(__name__)
def test_revert_is_neither_offered_nor_allowed_on_another_site(client, registry_with_school_change):
    school = factories.SchoolFactory(code="SBE", name="School of Business")
    client.force_login(registry_with_school_change)
    edit = client.post(f"/test-registry/core/school/{school.pk}/change/", {"code": "SBE", "name": "Renamed"})
    assert edit.status_code == 302  # the registry may edit here; reverting is another matter
    first = school.history.earliest("history_date")
    history_url = f"/test-registry/core/school/{school.pk}/history/"
    form_url = f"/test-registry/core/school/{school.pk}/history/{first.history_id}/"

    history = client.get(history_url)
    assert history.status_code == 200
    assert "revert to a previous version" not in history.content.decode()
    form = client.get(form_url)
    assert form.status_code == 200
    assert "Press the 'Revert' button" not in form.content.decode()

    response = client.post(form_url, {"code": "SBE", "name": "School of Business"})

    assert response.status_code == 403
    school.refresh_from_db()
    assert school.name == "Renamed"


def test_a_superuser_on_a_role_site_sees_history_read_only(client, superuser, clearance, registry_user):
    from core.services.requests import request_revoke
    request_revoke(request=clearance, acting_user=registry_user, reason="Withdrew")
    first = clearance.history.earliest("history_date")
    client.force_login(superuser)
    form_url = reverse("registry:core_clearancerequest_simple_history", args=[clearance.pk, first.history_id])
    page = client.get(form_url)
    assert page.status_code in (200, 403)
    assert "Press the 'Revert' button" not in page.content.decode()
    assert client.post(form_url, {}).status_code == 403
    clearance.refresh_from_db()
    assert clearance.status == "revoked"


# --- history pages: what changed, whole, from where and why -------------------------------------

LONG_REASON = ("Two books not returned: Introduction to Algorithms (third edition) and Clean Code, "
               "both due back on 1 March; bring them to the front desk of the main library")


def _history_rows(body: str) -> list[str]:
    """The HTML of each entry of the history table."""
    table = body[body.index('id="change-history"'):]
    return table.split("data-history-id=")[1:]


def test_history_changes_show_status_whole_text_ip_and_reason(admin_client, clearance, lib_reviewer):
    from core.history import audit_context
    from core.services.approvals import approvals_reject
    lib = approval_of(clearance, "LIB")
    with audit_context(ip="203.0.113.7"):
        approvals_reject(approval_ids=[lib.pk], acting_user=lib_reviewer, reason=LONG_REASON).raise_if_refused()
    recorded = lib.history.latest("history_date")
    assert len(LONG_REASON) > 100        # longer than simple-history shortens to

    body = admin_client.get(reverse("admin:core_clearanceapproval_history", args=[lib.pk])).content.decode()

    newest = _history_rows(body)[0]
    status = newest[newest.index('data-field="status"'):]
    status = status[:status.index("</li>")]
    assert "Pending" in status and "Rejected" in status          # a non-editable field, shown
    assert LONG_REASON in newest                                 # the reason whole, not "Two b[123 chars]ary"
    assert "chars]" not in body
    assert 'data-field="decided_by"' in newest and str(lib_reviewer) in newest
    assert "203.0.113.7" in newest                               # the IP recorded with the change
    assert recorded.history_change_reason and recorded.history_change_reason in newest
    assert 'data-field="updated_at"' not in body                 # moved by every save: not a change


def test_history_of_a_hold_shows_its_release_and_why(admin_client, student, offices, lib_reviewer):
    from core.services.holds import hold_place, hold_release
    hold = hold_place(department=offices["LIB"], student=student, reason="Lost book", amount=Decimal("2500"),
                      acting_user=lib_reviewer)
    hold_release(hold=hold, acting_user=lib_reviewer, reason="Book found")

    body = admin_client.get(reverse("admin:core_hold_history", args=[hold.pk])).content.decode()

    newest = _history_rows(body)[0]
    assert 'data-field="status"' in newest and "Released" in newest
    assert "Book found" in newest


def test_a_version_page_without_revert_has_no_form_to_fill_and_a_working_history_link(
        admin_client, clearance, lib_reviewer):
    from core.services.approvals import approvals_reject
    lib = approval_of(clearance, "LIB")
    approvals_reject(approval_ids=[lib.pk], acting_user=lib_reviewer, reason="Book").raise_if_refused()
    first = lib.history.earliest("history_date")
    history_url = reverse("admin:core_clearanceapproval_history", args=[lib.pk])

    page = admin_client.get(reverse("admin:core_clearanceapproval_simple_history",
                                    args=[lib.pk, first.history_id])).content.decode()

    # the History tab is a link (an empty one rendered as a dropdown toggle without its Alpine data:
    # "actionDropdownOpen is not defined")
    assert f'href="{history_url}"' in page
    assert "actionDropdownOpen" not in page
    assert 'id="history-read-only"' in page
    start = page.index("<form", page.index('id="content-main"'))
    form = page[start:page.index("</form>", start)]
    for tag in ("<textarea", "<select", 'type="file"', 'type="text"', 'name="_save"'):
        assert tag not in form, tag
    assert "Pending" in form                                     # the version's values, read-only


def test_a_version_page_where_revert_is_allowed_still_offers_it(admin_client, db):
    school = factories.SchoolFactory(code="SPA", name="School of Pure Arts")
    _rename_school(admin_client, school, "School of Typos")
    first = school.history.earliest("history_date")
    page = admin_client.get(reverse("admin:core_school_simple_history", args=[school.pk, first.history_id]))
    body = page.content.decode()
    assert 'name="name"' in body and "Revert" in body
    assert "actionDropdownOpen" not in body


def test_approvals_in_admin_are_found_by_the_student_s_name(admin_client, clearance, student, open_request):
    other = open_request(factories.StudentFactory(first_name="Brian", last_name="Otieno"))
    url = reverse("admin:core_clearanceapproval_changelist")

    found = admin_client.get(url, {"q": f"{student.first_name} {student.last_name}"})
    ids = {a.pk for a in found.context["cl"].result_list}
    assert ids == set(clearance.approvals.values_list("pk", flat=True))
    assert not ids & set(other.approvals.values_list("pk", flat=True))
    by_last = admin_client.get(url, {"q": "otieno"})
    assert {a.pk for a in by_last.context["cl"].result_list} == set(other.approvals.values_list("pk", flat=True))


def test_dashboard_counts_only_open_requests_as_open(admin_client, clearance, open_request, complete_request):
    done = open_request(factories.StudentFactory())
    complete_request(done)
    response = admin_client.get("/admin/")
    kpi = {k["title"]: k for k in response.context["kpis"]}["Open requests"]
    assert kpi["value"] == "1"
    assert kpi["footer"].startswith("1 in progress, 0 on hold")
    assert "1 completed, not counted here" in kpi["footer"]


def test_the_sidebar_names_departments_as_their_page_does(admin_client, offices):
    body = admin_client.get("/admin/").content.decode()
    assert ">Offices<" not in body.replace("\n", "").replace(" ", "")
    page = admin_client.get(reverse("admin:core_department_changelist")).content.decode()
    assert "Departments" in page


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_moving_an_office_to_another_stage_stores_again_which_items_wait(admin_client, offices, clearance):
    from django.forms.models import model_to_dict

    from core.selectors.consistency import consistency_violations
    reg = offices["REG"]
    assert not ClearanceApproval.objects.get(request=clearance, department=reg).stage_open   # stage 1 pending
    data = {k: v for k, v in model_to_dict(reg).items() if v is not None}
    data.update(stage=1, schools=[s.pk for s in data.get("schools", [])])
    response = admin_client.post(reverse("admin:core_department_change", args=[reg.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ClearanceApproval.objects.get(request=clearance, department=reg).stage_open
    assert consistency_violations() == []
