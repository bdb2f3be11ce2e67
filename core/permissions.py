"""Roles and what each may do, in one place.

- Roles are Django Groups; `ROLE_PERMISSIONS` lists each role's model permissions and
  `sync_roles()` keeps the groups equal to it (command `sync_roles`, and after every migrate).
- Which approvals and holds a reviewer may decide is an object permission granted on a handful of
  `Department` rows (`core.review_department`) and, for the school office, optionally narrowed to
  `School` rows (`core.review_school`). Delegations lend a department's rights for a date range.
- Everything that asks "may this user see/decide this" goes through the functions below.
"""
from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from .models import (ClearanceApproval, Delegation, Department, Hold, School)

STAFF = "Department staff"
FINANCE = "Finance officer"
REGISTRY = "Registry"
STUDENT = "Student"
ADMINISTRATOR = "Administrator"
ROLES = (STAFF, FINANCE, REGISTRY, STUDENT, ADMINISTRATOR)

REVIEW_DEPARTMENT = "core.review_department"
REVIEW_SCHOOL = "core.review_school"


def _crud(model, *verbs):
    return [f"{verb}_{model}" for verb in verbs]


ALL = ("view", "add", "change", "delete")

# Model permissions per role ("app_label.codename" without the app label: all are in core unless
# written "app.codename"). Object scoping comes on top of these for reviewers.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    STAFF: [
        *_crud("clearanceapproval", "view", "change"),
        *_crud("hold", "view", "add", "change"),
        *_crud("student", "view"),
        *_crud("clearancerequest", "view"),
        *_crud("department", "view"),
        *_crud("delegation", "view", "add"),
        *_crud("notification", "view", "change"),
    ],
    FINANCE: [
        *_crud("financerecord", "view", "change"),
        *_crud("hold", "view", "add", "change"),
        *_crud("payment", "view", "add", "change"),
        *_crud("balanceimport", "view", "add", "change"),
        *_crud("clearanceapproval", "view", "change"),
        *_crud("student", "view"),
        *_crud("clearancerequest", "view"),
        *_crud("notification", "view", "change"),
    ],
    REGISTRY: [
        *_crud("student", "view", "add", "change"),
        *_crud("clearancecycle", "view", "add", "change"),
        *_crud("clearancerequest", "view", "add", "change"),
        *_crud("clearanceapproval", "view"),
        *_crud("hold", "view"),
        *_crud("certificate", "view", "add", "change"),
        *_crud("gownissuance", "view"),
        *_crud("financerecord", "view"),
        *_crud("department", "view"),
        *_crud("school", "view"),
        *_crud("programme", "view"),
        *_crud("academicdepartment", "view"),
        *_crud("notification", "view", "change"),
    ],
    STUDENT: [
        *_crud("clearancerequest", "view", "add"),
        *_crud("clearanceapproval", "view"),
        *_crud("hold", "view"),
        *_crud("notification", "view", "change"),
        *_crud("certificate", "view"),
    ],
    ADMINISTRATOR: [
        *[p for model in ("user", "school", "academicdepartment", "programme", "student", "department",
                          "clearancecycle", "clearancerequest", "clearanceapproval", "hold", "financerecord",
                          "balanceimport", "payment", "gownissuance", "notification", "certificate",
                          "delegation") for p in _crud(model, *ALL)],
        *[f"auth.{p}" for p in _crud("group", *ALL)],
        *[f"django_q.{p}" for model in ("schedule", "task", "success", "failure", "ormq")
          for p in _crud(model, *ALL)],
    ],
}


def _split(perm: str) -> tuple[str, str]:
    return tuple(perm.split(".", 1)) if "." in perm else ("core", perm)


@transaction.atomic
def sync_roles() -> dict[str, int]:
    """Make every role group hold exactly the permissions listed above. Returns counts per role."""
    wanted = {role: {_split(p) for p in perms} for role, perms in ROLE_PERMISSIONS.items()}
    pairs = set().union(*wanted.values())
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            content_type__app_label__in={a for a, _ in pairs}, codename__in={c for _, c in pairs})
    }
    missing = pairs - set(found)
    if missing:
        raise LookupError(f"Permissions not found (migrate first?): {sorted(missing)}")
    counts = {}
    for role, perms in wanted.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([found[p] for p in perms])
        counts[role] = len(perms)
    return counts


def has_role(user, role: str) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or in_group(user, role)


def in_group(user, role: str) -> bool:
    """Membership of the role's group itself (a superuser is not thereby a student)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if getattr(user, "_role_names", None) is None:
        user._role_names = set(user.groups.values_list("name", flat=True))
    return role in user._role_names


def roles_of(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    has_role(user, STAFF)  # fills the cache
    return set(user._role_names)


# --- object scope -------------------------------------------------------------------------------

def _active_delegations(user, on=None):
    on = on or timezone.localdate()
    return Delegation.objects.filter(to_user=user, starts_on__lte=on, ends_on__gte=on, revoked_at__isnull=True)


def granted_departments(user) -> QuerySet[Department]:
    """Departments the user reviews by their own object permission (not by delegation)."""
    if not (user.is_authenticated and user.is_active):
        return Department.objects.none()
    if user.is_superuser:
        return Department.objects.all()
    return get_objects_for_user(user, REVIEW_DEPARTMENT, klass=Department, accept_global_perms=False,
                                with_superuser=False)


def reviewable_departments(user, *, on=None) -> QuerySet[Department]:
    """Departments the user may decide for: granted directly, or delegated for today."""
    if not (user.is_authenticated and user.is_active):
        return Department.objects.none()
    if user.is_superuser:
        return Department.objects.all()
    delegated = _active_delegations(user, on).values("department_id")
    return Department.objects.filter(Q(pk__in=granted_departments(user).values("pk")) | Q(pk__in=delegated))


def _school_perms(user_ref):
    school_ct = ContentType.objects.get_for_model(School)
    return UserObjectPermission.objects.filter(user=user_ref, permission__codename="review_school",
                                               permission__content_type=school_ct)


def _school_ok(user_ref, school_ref) -> Q:
    """The school office may be limited to given schools: where a reviewer holds `review_school` on
    any school, only those schools' students; otherwise all. (object_pk is text in guardian.)"""
    perms = _school_perms(user_ref)
    return ~Exists(perms) | Exists(perms.filter(object_pk=Cast(school_ref, CharField())))


def _scope_q(user, student_path: str) -> Q:
    """Rows (approvals or holds) of the offices the user reviews, each right with its own school
    limit: a delegate gets the delegator's limit for a delegated school office, never wider."""
    school = OuterRef(f"{student_path}__school_id")
    not_faculty = ~Q(department__type=Department.Type.FACULTY)
    direct = Q(department__in=granted_departments(user)) & (not_faculty | _school_ok(user, school))
    delegation = _active_delegations(user).filter(department_id=OuterRef("department_id"))
    delegated = Exists(delegation.filter(
        Q(department__type__in=[t for t in Department.Type.values if t != Department.Type.FACULTY])
        | _school_ok(OuterRef("from_user"), OuterRef(school))))
    return direct | delegated


def approvals_for(user) -> QuerySet[ClearanceApproval]:
    """Approvals the user may see and decide, as one query (the scope is subqueries)."""
    qs = ClearanceApproval.objects.all()
    if not (user.is_authenticated and user.is_active):
        return qs.none()
    if user.is_superuser:
        return qs
    return qs.filter(_scope_q(user, "request__student"))


def holds_for(user) -> QuerySet[Hold]:
    """Holds of the offices the user reviews (with the same school limits)."""
    qs = Hold.objects.all()
    if not (user.is_authenticated and user.is_active):
        return qs.none()
    if user.is_superuser:
        return qs
    return qs.filter(_scope_q(user, "student"))


def can_decide(user, approval: ClearanceApproval) -> bool:
    return approvals_for(user).filter(pk=approval.pk).exists()


def can_manage_holds(user, department: Department, student=None) -> bool:
    """May the user place holds of `department` (on `student`, when given: school limits apply)."""
    if not reviewable_departments(user).filter(pk=department.pk).exists():
        return False
    if student is None or user.is_superuser or department.type != Department.Type.FACULTY:
        return True
    from .models import Student
    school = OuterRef("school_id")
    direct = Exists(granted_departments(user).filter(pk=department.pk)) & _school_ok(user, school)
    delegated = Exists(_active_delegations(user).filter(department=department).filter(
        _school_ok(OuterRef("from_user"), OuterRef(school))))
    return Student.objects.filter(pk=student.pk).filter(direct | delegated).exists()


# --- granting -----------------------------------------------------------------------------------

@transaction.atomic
def reviewer_set_scope(*, user, departments, schools=()) -> None:
    """Make `user` a reviewer of exactly `departments` (and, for school offices, `schools`)."""
    departments = list(departments)
    schools = list(schools)
    current = set(get_objects_for_user(user, REVIEW_DEPARTMENT, klass=Department, accept_global_perms=False,
                                       with_superuser=False))
    for dept in current - set(departments):
        remove_perm(REVIEW_DEPARTMENT, user, dept)
    for dept in set(departments) - current:
        assign_perm(REVIEW_DEPARTMENT, user, dept)
    current_schools = set(get_objects_for_user(user, REVIEW_SCHOOL, klass=School, accept_global_perms=False,
                                               with_superuser=False))
    for school in current_schools - set(schools):
        remove_perm(REVIEW_SCHOOL, user, school)
    for school in set(schools) - current_schools:
        assign_perm(REVIEW_SCHOOL, user, school)
    if departments:
        user.groups.add(Group.objects.get(name=STAFF))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
