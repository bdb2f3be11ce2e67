"""Roles (groups synced from ROLE_PERMISSIONS) and the object scope of reviewers."""
from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.utils import timezone

from core import permissions
from core.models import ClearanceApproval, Department, Hold, School
from core.permissions import (FINANCE, REGISTRY, ROLE_PERMISSIONS, ROLES, STAFF, STUDENT, approvals_for, can_decide,
                              can_manage_holds, holds_for, may_download, may_download_evidence, may_download_import,
                              may_download_receipt, reviewable_departments, reviewer_set_scope, sync_roles)
from tests import factories

pytestmark = pytest.mark.django_db


def _group_perms(role):
    return {f"{app}.{code}" for app, code in Group.objects.get(name=role).permissions.values_list(
        "content_type__app_label", "codename")}


def _wanted(role):
    return {p if "." in p else f"core.{p}" for p in ROLE_PERMISSIONS[role]}


# --- roles ----------------------------------------------------------------------------------------

def test_sync_roles_makes_groups_match_role_permissions():
    counts = sync_roles()
    assert set(counts) == set(ROLES)
    for role in ROLES:
        assert _group_perms(role) == _wanted(role), role
        assert counts[role] == len(_wanted(role))


def test_sync_roles_is_idempotent():
    first = sync_roles()
    before = {role: _group_perms(role) for role in ROLES}
    second = sync_roles()
    assert first == second
    assert {role: _group_perms(role) for role in ROLES} == before
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)


def test_sync_roles_removes_a_permission_added_by_hand_and_restores_a_removed_one():
    staff = Group.objects.get(name=permissions.STAFF)
    delete_student = Permission.objects.get(codename="delete_student", content_type__app_label="core")
    view_approval = Permission.objects.get(codename="view_clearanceapproval", content_type__app_label="core")
    staff.permissions.add(delete_student)
    staff.permissions.remove(view_approval)
    sync_roles()
    perms = _group_perms(permissions.STAFF)
    assert "core.delete_student" not in perms
    assert "core.view_clearanceapproval" in perms


def test_sync_roles_command(capsys):
    Group.objects.filter(name=permissions.REGISTRY).delete()
    call_command("sync_roles")
    assert _group_perms(permissions.REGISTRY) == _wanted(permissions.REGISTRY)
    assert "Registry:" in capsys.readouterr().out


def test_a_student_role_cannot_change_approvals():
    student = factories.UserFactory()
    student.groups.add(Group.objects.get(name=permissions.STUDENT))
    assert student.has_perm("core.view_clearanceapproval")
    assert not student.has_perm("core.change_clearanceapproval")


def test_roles_of_and_has_role(make_user, superuser):
    finance = make_user(permissions.FINANCE)
    assert permissions.roles_of(finance) == {permissions.FINANCE}
    assert permissions.has_role(finance, permissions.FINANCE)
    assert not permissions.has_role(finance, permissions.REGISTRY)
    assert permissions.roles_of(superuser) == set(ROLES)
    assert not permissions.has_role(AnonymousUser(), permissions.STUDENT)
    finance.is_active = False
    assert not permissions.has_role(finance, permissions.FINANCE)


# --- reviewer scope ---------------------------------------------------------------------------------

@pytest.fixture
def two_schools(db):
    return factories.SchoolFactory(code="SCE"), factories.SchoolFactory(code="SPA")


@pytest.fixture
def world(offices, open_request, two_schools):
    """Two students in two schools, each with an open request (all offices but HOS)."""
    sce, spa = two_schools
    a = factories.StudentFactory(school=sce)
    b = factories.StudentFactory(school=spa)
    return {"sce": sce, "spa": spa, "a": a, "b": b, "ra": open_request(a), "rb": open_request(b)}


def _codes_and_students(qs):
    return {(a.department.code, a.request.student.registration_number)
            for a in qs.select_related("department", "request__student")}


def test_reviewer_sees_only_their_departments_approvals(world, make_reviewer):
    reviewer = make_reviewer("LIB", "SPT")
    seen = _codes_and_students(approvals_for(reviewer))
    assert {code for code, _ in seen} == {"LIB", "SPT"}
    assert len(seen) == 4  # two offices × two students


def test_reviewer_set_scope_makes_a_staff_reviewer_and_replaces_the_scope(world, offices):
    user = factories.UserFactory()
    reviewer_set_scope(user=user, departments=[offices["LIB"]])
    user.refresh_from_db()
    assert user.is_staff
    assert permissions.STAFF in permissions.roles_of(user)
    reviewer_set_scope(user=user, departments=[offices["SPT"]])
    assert set(reviewable_departments(user).values_list("code", flat=True)) == {"SPT"}
    assert {a.department.code for a in approvals_for(user).select_related("department")} == {"SPT"}


def test_school_office_reviewer_limited_to_a_school_sees_only_its_students(world, make_reviewer):
    reviewer = make_reviewer("SCH", schools=[world["sce"]])
    assert _codes_and_students(approvals_for(reviewer)) == {("SCH", world["a"].registration_number)}


def test_school_limit_does_not_narrow_the_reviewers_other_offices(world, make_reviewer):
    reviewer = make_reviewer("SCH", "LIB", schools=[world["sce"]])
    assert _codes_and_students(approvals_for(reviewer)) == {
        ("SCH", world["a"].registration_number),
        ("LIB", world["a"].registration_number), ("LIB", world["b"].registration_number)}


def test_unlimited_school_office_reviewer_sees_every_school(world, make_reviewer):
    reviewer = make_reviewer("SCH")
    assert _codes_and_students(approvals_for(reviewer)) == {
        ("SCH", world["a"].registration_number), ("SCH", world["b"].registration_number)}


def test_can_decide_refuses_another_offices_approval_and_a_neighbours_school_item(world, make_reviewer):
    lib = make_reviewer("LIB")
    sch_sce = make_reviewer("SCH", schools=[world["sce"]])
    lib_of_a = world["ra"].approvals.get(department__code="LIB")
    sch_of_a = world["ra"].approvals.get(department__code="SCH")
    sch_of_b = world["rb"].approvals.get(department__code="SCH")
    assert can_decide(lib, lib_of_a)
    assert not can_decide(lib, sch_of_a)
    assert can_decide(sch_sce, sch_of_a)
    assert not can_decide(sch_sce, sch_of_b)


def test_holds_for_follows_the_same_scope(world, make_reviewer, offices):
    factories.HoldFactory(department=offices["SCH"], student=world["a"])
    factories.HoldFactory(department=offices["SCH"], student=world["b"])
    factories.HoldFactory(department=offices["LIB"], student=world["a"])
    reviewer = make_reviewer("SCH", schools=[world["spa"]])
    assert {(h.department.code, h.student_id) for h in holds_for(reviewer).select_related("department")} == {
        ("SCH", world["b"].pk)}


def test_can_manage_holds(world, make_reviewer, offices):
    sch_sce = make_reviewer("SCH", schools=[world["sce"]])
    assert can_manage_holds(sch_sce, offices["SCH"])
    assert can_manage_holds(sch_sce, offices["SCH"], world["a"])
    assert not can_manage_holds(sch_sce, offices["SCH"], world["b"])
    assert not can_manage_holds(sch_sce, offices["LIB"])


def test_a_user_without_scope_sees_nothing(world, make_user):
    staff = make_user(permissions.STAFF)
    assert not approvals_for(staff).exists()
    assert not approvals_for(AnonymousUser()).exists()
    assert not reviewable_departments(AnonymousUser()).exists()


def test_a_global_review_permission_does_not_grant_every_office(world, make_user):
    # object permissions only: a model-level grant must not open every office
    user = make_user(permissions.STAFF)
    user.user_permissions.add(Permission.objects.get(codename="review_department"))
    assert not approvals_for(user).exists()


def test_superuser_sees_all(world, superuser):
    assert approvals_for(superuser).count() == ClearanceApproval.objects.count() == 12
    assert set(reviewable_departments(superuser)) == set(Department.objects.all())
    assert holds_for(superuser).count() == Hold.objects.count()


# --- delegations ----------------------------------------------------------------------------------

def _delegate(offices, from_user, to_user, *, starts, ends, code="LIB", revoked=False):
    today = timezone.localdate()
    return factories.DelegationFactory(
        department=offices[code], from_user=from_user, to_user=to_user,
        starts_on=today + datetime.timedelta(days=starts), ends_on=today + datetime.timedelta(days=ends),
        revoked_at=timezone.now() if revoked else None)


def test_active_delegation_grants_access(world, offices, make_reviewer, make_user):
    lib = make_reviewer("LIB")
    colleague = make_user(permissions.STAFF)
    _delegate(offices, lib, colleague, starts=-1, ends=1)
    assert {a.department.code for a in approvals_for(colleague).select_related("department")} == {"LIB"}
    assert approvals_for(colleague).count() == 2


def test_delegation_on_its_first_and_last_day_grants_access(world, offices, make_reviewer, make_user):
    lib = make_reviewer("LIB")
    first_day, last_day = make_user(permissions.STAFF), make_user(permissions.STAFF)
    _delegate(offices, lib, first_day, starts=0, ends=3)
    _delegate(offices, lib, last_day, starts=-3, ends=0)
    assert approvals_for(first_day).count() == 2
    assert approvals_for(last_day).count() == 2


@pytest.mark.parametrize("starts, ends, revoked", [(-10, -1, False), (1, 5, False), (-1, 1, True)],
                         ids=["expired", "not-started", "revoked"])
def test_inactive_delegation_grants_nothing(world, offices, make_reviewer, make_user, starts, ends, revoked):
    lib = make_reviewer("LIB")
    colleague = make_user(permissions.STAFF)
    _delegate(offices, lib, colleague, starts=starts, ends=ends, revoked=revoked)
    assert not approvals_for(colleague).exists()
    assert not reviewable_departments(colleague).exists()


def test_delegation_adds_to_the_delegates_own_offices(world, offices, make_reviewer):
    lib = make_reviewer("LIB")
    spt = make_reviewer("SPT")
    _delegate(offices, lib, spt, starts=0, ends=0)
    assert set(reviewable_departments(spt).values_list("code", flat=True)) == {"LIB", "SPT"}


def test_delegating_a_school_limited_office_does_not_widen_it(world, offices, make_reviewer, make_user):
    sch_sce = make_reviewer("SCH", schools=[world["sce"]])
    colleague = make_user(permissions.STAFF)
    _delegate(offices, sch_sce, colleague, starts=0, ends=1, code="SCH")
    assert _codes_and_students(approvals_for(colleague)) == _codes_and_students(approvals_for(sch_sce)) == {
        ("SCH", world["a"].registration_number)}


# --- queries --------------------------------------------------------------------------------------

def test_approvals_for_is_one_query_on_plain_ids_once_the_scope_is_resolved(
        world, offices, make_reviewer, make_user, django_assert_num_queries):
    from django.test import RequestFactory

    from core.permissions import ReviewScopeCacheMiddleware
    reviewer = make_reviewer("SCH", "LIB", schools=[world["sce"]])
    _delegate(offices, make_reviewer("SPT"), reviewer, starts=-1, ends=1, code="SPT")
    # content types are cached per process, as in a running server
    ContentType.objects.get_for_model(Department)
    ContentType.objects.get_for_model(School)
    seen = {}

    def view(request):
        # resolving the scope: three small lookups (own permissions, delegations, school limits)
        with django_assert_num_queries(4):
            seen["first"] = list(approvals_for(reviewer))
        # later questions in the same request reuse it: the big query is the only one
        with django_assert_num_queries(1):
            seen["again"] = list(approvals_for(reviewer))
        seen["sql"] = str(approvals_for(reviewer).query)

    ReviewScopeCacheMiddleware(view)(RequestFactory().get("/"))
    rows = seen["first"]
    assert {a.department_id for a in rows} == {offices["SCH"].pk, offices["LIB"].pk, offices["SPT"].pk}
    assert len(rows) == 5  # SCH of a; LIB and SPT of a and b
    assert [a.pk for a in seen["again"]] == [a.pk for a in rows]
    # no subquery per approval row: the scope is plain ids an index can serve
    assert "SELECT" not in seen["sql"].split("WHERE", 1)[1]


def test_approvals_for_superuser_is_a_single_query(world, superuser, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert len(list(approvals_for(superuser))) == 12


def test_a_disabled_reviewer_sees_nothing(make_reviewer, clearance):
    lib = make_reviewer("LIB")
    assert approvals_for(lib).exists()
    lib.is_active = False
    lib.save()
    assert not approvals_for(lib).exists()


# --- stored files ---------------------------------------------------------------------------------


@pytest.fixture
def evidence(clearance, approval, with_evidence):
    """The fixture student's library item, with evidence."""
    return with_evidence(approval(clearance, "LIB"))


def test_evidence_goes_to_its_office_the_registry_and_its_student(evidence, lib_reviewer, registry_user, student,
                                                                  superuser):
    assert may_download_evidence(lib_reviewer, evidence)
    assert may_download_evidence(registry_user, evidence)
    assert may_download_evidence(student.user, evidence)
    assert may_download_evidence(superuser, evidence)


def test_evidence_is_refused_to_another_office_another_student_finance_and_nobody(
        evidence, make_reviewer, finance_user, make_user):
    other_student = factories.StudentFactory(with_user=True)
    other_student.user.groups.add(Group.objects.get(name=STUDENT))
    assert not may_download_evidence(make_reviewer("SPT"), evidence)
    assert not may_download_evidence(other_student.user, evidence)
    assert not may_download_evidence(finance_user, evidence)         # reviews FIN, not LIB
    assert not may_download_evidence(make_user(), evidence)           # no role at all
    assert not may_download_evidence(AnonymousUser(), evidence)


def test_evidence_of_a_school_office_respects_the_reviewers_schools(offices, open_request, make_reviewer,
                                                                    with_evidence):
    spa_student = factories.StudentFactory(school=factories.SchoolFactory(code="SPA"))
    sce_student = factories.StudentFactory()
    item = with_evidence(open_request(spa_student).approvals.get(department__code="SCH"))
    assert not may_download_evidence(make_reviewer("SCH", schools=[sce_student.school]), item)
    assert may_download_evidence(make_reviewer("SCH", schools=[spa_student.school]), item)
    assert may_download_evidence(make_reviewer("SCH"), item)          # every school


def test_evidence_follows_a_delegation(evidence, lib_reviewer, make_user):
    colleague = make_user(permissions.STAFF)
    assert not may_download_evidence(colleague, evidence)
    factories.DelegationFactory(from_user=lib_reviewer, to_user=colleague, department=evidence.department)
    assert may_download_evidence(colleague, evidence)


def test_receipts_go_to_finance_and_the_student_who_paid(student, paid_with_receipt, finance_user, lib_reviewer,
                                                         registry_user, superuser):
    payment = paid_with_receipt(student)
    other_student = factories.StudentFactory(with_user=True)
    other_student.user.groups.add(Group.objects.get(name=STUDENT))
    assert may_download_receipt(finance_user, payment)
    assert may_download_receipt(student.user, payment)
    assert may_download_receipt(superuser, payment)
    assert not may_download_receipt(lib_reviewer, payment)
    assert not may_download_receipt(registry_user, payment)
    assert not may_download_receipt(other_student.user, payment)


def test_import_files_go_to_finance_and_the_registry(finance_user, registry_user, lib_reviewer, student, superuser):
    bi = factories.BalanceImportFactory()
    assert may_download_import(finance_user, bi) and may_download_import(registry_user, bi)
    assert may_download_import(superuser, bi)
    assert not may_download_import(lib_reviewer, bi)
    assert not may_download_import(student.user, bi)


def test_each_site_serves_only_what_its_own_role_may_have(student, paid_with_receipt, evidence, finance_user,
                                                          registry_user):
    """A finance officer who is also a student: other students' receipts on /finance/, not on /student/."""
    someone_elses = paid_with_receipt(factories.StudentFactory())
    finance_user.groups.add(Group.objects.get(name=STUDENT))
    finance_user.__dict__.pop("_role_names", None)
    assert may_download(finance_user, someone_elses, as_role=FINANCE)
    assert not may_download(finance_user, someone_elses, as_role=STUDENT)
    assert may_download(registry_user, evidence, as_role=REGISTRY)
    assert not may_download(registry_user, evidence, as_role=STAFF)
    assert not may_download(registry_user, object(), as_role=None)


def test_only_the_registry_imports_graduands(registry_user, finance_user, lib_reviewer, make_user, superuser):
    assert permissions.may_import_students(registry_user)
    assert permissions.may_import_students(superuser)
    for user in (finance_user, lib_reviewer, make_user(STUDENT), make_user(), AnonymousUser()):
        assert not permissions.may_import_students(user)
    registry_user.is_active = False
    assert not permissions.may_import_students(registry_user)


def test_a_graduand_imports_file_is_the_registrys(registry_user, finance_user, lib_reviewer, superuser):
    from core.models import StudentImport
    si = StudentImport.objects.create(original_name="cohort.csv", sha256="0" * 64, uploaded_by=registry_user)
    assert may_download(registry_user, si, as_role=REGISTRY)
    assert may_download(superuser, si)
    assert not may_download(registry_user, si, as_role=FINANCE)          # not through another site
    assert not may_download(finance_user, si, as_role=FINANCE)
    assert not may_download(finance_user, si, as_role=REGISTRY)
    assert not may_download(lib_reviewer, si, as_role=STAFF)
