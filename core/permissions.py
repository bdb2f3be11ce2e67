"""Roles and what each may do, in one place.

- Roles are Django Groups; `ROLE_PERMISSIONS` lists each role's model permissions and
  `sync_roles()` keeps the groups equal to it (command `sync_roles`, and after every migrate).
- Which approvals and holds a reviewer may decide is an object permission granted on a handful of
  `Department` rows (`core.review_department`) and, for the school office, optionally narrowed to
  `School` rows (`core.review_school`). Delegations lend a department's rights for a date range.
- Everything that asks "may this user see/decide this" goes through the functions below.
"""
from __future__ import annotations

from collections import defaultdict
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from .models import (BalanceImport, Certificate, ClearanceApproval, Delegation, Department, ExportFile, Hold,
                     HoldImport, Payment, School, StatementReconciliation, StudentImport)

STAFF = "Department staff"
FINANCE = "Finance officer"
REGISTRY = "Registry"
STUDENT = "Student"
ADMINISTRATOR = "Administrator"
ROLES = (STAFF, FINANCE, REGISTRY, STUDENT, ADMINISTRATOR)

REVIEW_DEPARTMENT = "core.review_department"
REVIEW_SCHOOL = "core.review_school"
# the office that runs the gown store (DESIGN.md, rule 6): its reviewers issue and take back gowns
GOWN_DEPARTMENT_CODE = "GOWN"


def _crud(model, *verbs):
    return [f"{verb}_{model}" for verb in verbs]


ALL = ("view", "add", "change", "delete")

# Model permissions per role ("app_label.codename" without the app label: all are in core unless
# written "app.codename"). Object scoping comes on top of these for reviewers.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    STAFF: [
        *_crud("clearanceapproval", "view", "change"),
        *_crud("hold", "view", "add", "change"),
        *_crud("holdimport", "view", "add", "change"),
        *_crud("student", "view"),
        *_crud("clearancerequest", "view"),
        *_crud("department", "view"),
        *_crud("delegation", "view", "add"),
        *_crud("notification", "view", "change"),
        # the gown store's clerks (reviewers of GOWN_DEPARTMENT_CODE, see may_run_gown_store)
        *_crud("gownissuance", "view", "add", "change"),
    ],
    FINANCE: [
        *_crud("financerecord", "view", "change"),
        *_crud("hold", "view", "add", "change"),
        *_crud("payment", "view", "add", "change"),
        *_crud("balanceimport", "view", "add", "change"),
        *_crud("statementreconciliation", "view", "add"),
        *_crud("mpesaconfirmation", "view"),
        *_crud("clearanceapproval", "view", "change"),
        *_crud("student", "view"),
        *_crud("clearancerequest", "view"),
        *_crud("notification", "view", "change"),
    ],
    REGISTRY: [
        *_crud("student", "view", "add", "change"),
        *_crud("studentimport", "view", "add", "change"),
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
                          "balanceimport", "holdimport", "studentimport", "payment", "gownissuance", "notification", "certificate",
                          "delegation", "statementreconciliation", "mpesaconfirmation") for p in _crud(model, *ALL)],
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


def may_use_role(user, role: str | None) -> bool:
    """May `user` act in `role` on a site or through the API? Students sign in without is_staff;
    every other role is staff. `role` None: the administrators' (superusers only)."""
    if not (user.is_authenticated and user.is_active):
        return False
    if role is None:
        return user.is_superuser
    if not has_role(user, role):
        return False
    return user.is_staff or role == STUDENT


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


def on_behalf_of(user, department_ids) -> dict[int, str]:
    """For each of these offices that `user` reviews today only by delegation (not in their own
    right), the delegator(s) they act for: what history records as "on behalf of …"."""
    ids = set(department_ids)
    if not ids or not getattr(user, "is_authenticated", False) or user.is_superuser:
        return {}
    own = set(granted_departments(user).filter(pk__in=ids).values_list("pk", flat=True))
    names: dict[int, list[str]] = {}
    for department_id, full_name, email in (_active_delegations(user).filter(department_id__in=ids - own)
                                            .values_list("department_id", "from_user__full_name", "from_user__email")
                                            .order_by("from_user__email")):
        names.setdefault(department_id, []).append(full_name or email)
    return {d: ", ".join(n) for d, n in names.items()}


def granted_departments(user) -> QuerySet[Department]:
    """Departments the user reviews by their own object permission (not by delegation)."""
    if not (user.is_authenticated and user.is_active):
        return Department.objects.none()
    if user.is_superuser:
        return Department.objects.all()
    return get_objects_for_user(user, REVIEW_DEPARTMENT, klass=Department, accept_global_perms=False,
                                with_superuser=False)


@dataclass(frozen=True)
class ReviewScope:
    """What a reviewer may decide: offices for every student, and school offices limited to
    schools. Resolved once per request from a handful of small rows (object permissions,
    delegations), so the big queries filter on plain ids that indexes serve; a subquery per
    approval row would scan the whole table."""

    everyone: frozenset[int] = frozenset()
    limited: tuple[tuple[int, frozenset[int]], ...] = ()
    all_departments: bool = False
    # the codes of those offices (read with them): "does this user run the gown store" costs no query
    department_codes: frozenset[str] = frozenset()

    @property
    def department_ids(self) -> set[int]:
        return set(self.everyone) | {d for d, _ in self.limited}

    def q(self, student_path: str) -> Q:
        if self.all_departments:
            return Q()
        q = Q(department_id__in=sorted(self.everyone))
        for department_id, schools in self.limited:
            q |= Q(department_id=department_id, **{f"{student_path}__school_id__in": sorted(schools)})
        return q

    def covers(self, department_id: int, school_id: int | None = None) -> bool:
        if self.all_departments or department_id in self.everyone:
            return True
        schools = dict(self.limited).get(department_id)
        return schools is not None and (school_id is None or school_id in schools)


def _school_limits(user_ids) -> dict[int, set[int]]:
    """review_school object permissions of these users: user id → school ids."""
    school_ct = ContentType.objects.get_for_model(School)
    limits = defaultdict(set)
    for user_id, object_pk in UserObjectPermission.objects.filter(
            user_id__in=list(user_ids), permission__codename="review_school",
            permission__content_type=school_ct).values_list("user_id", "object_pk"):
        limits[user_id].add(int(object_pk))
    return limits


_scope_cache: ContextVar[dict | None] = ContextVar("review_scope_cache", default=None)


class ReviewScopeCacheMiddleware:
    """Resolve each reviewer's scope at most once per request (lists, filters and dashboards all
    ask); outside a request nothing is cached, so services always see current rights."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _scope_cache.set({})
        try:
            return self.get_response(request)
        finally:
            _scope_cache.reset(token)


def forget_scope(user) -> None:
    cache = _scope_cache.get()
    if cache is not None:
        for key in [k for k in cache if k[0] == user.pk]:
            del cache[key]


def review_scope(user, *, on=None) -> ReviewScope:
    """The reviewer's rights today: their own object permissions (the school office narrowed to
    the schools they hold `review_school` on, if any) and active delegations, each delegated school
    office narrowed by the delegator's own school limit."""
    if not (user.is_authenticated and user.is_active):
        return ReviewScope()
    if user.is_superuser:
        return ReviewScope(all_departments=True)
    key = on or timezone.localdate()
    cache = _scope_cache.get()
    if cache is not None and (user.pk, key) in cache:
        return cache[(user.pk, key)]
    granted = list(granted_departments(user).values_list("pk", "type", "code"))
    delegated = list(_active_delegations(user, key).values_list("department_id", "department__type", "from_user_id",
                                                                "department__code"))
    limits = _school_limits({user.pk} | {from_user for _, _, from_user, _ in delegated})
    everyone, limited = set(), defaultdict(set)
    rights = [(d, t, user.pk, c) for d, t, c in granted] + delegated
    codes = frozenset(code for *_, code in rights)
    for department_id, type_, holder, _ in rights:
        if type_ != Department.Type.FACULTY or not limits.get(holder):
            everyone.add(department_id)
        else:
            limited[department_id] |= limits[holder]
    scope = ReviewScope(everyone=frozenset(everyone), limited=tuple(
        (d, frozenset(schools)) for d, schools in sorted(limited.items()) if d not in everyone),
        department_codes=codes)
    if cache is not None:
        cache[(user.pk, key)] = scope
    return scope


def reviewable_departments(user, *, on=None) -> QuerySet[Department]:
    """Departments the user may decide for: granted directly, or delegated for today."""
    scope = review_scope(user, on=on)
    if scope.all_departments:
        return Department.objects.all()
    return Department.objects.filter(pk__in=sorted(scope.department_ids))


def approvals_for(user) -> QuerySet[ClearanceApproval]:
    """Approvals the user may see and decide: one query on plain ids (see ReviewScope)."""
    return ClearanceApproval.objects.filter(review_scope(user).q("request__student")) \
        if _can_review(user) else ClearanceApproval.objects.none()


def holds_for(user) -> QuerySet[Hold]:
    """Holds of the offices the user reviews (with the same school limits)."""
    return Hold.objects.filter(review_scope(user).q("student")) if _can_review(user) else Hold.objects.none()


def _can_review(user) -> bool:
    return bool(user.is_authenticated and user.is_active)


def can_decide(user, approval: ClearanceApproval) -> bool:
    return approvals_for(user).filter(pk=approval.pk).exists()


def can_manage_holds(user, department: Department, student=None) -> bool:
    """May the user place holds of `department` (on `student`, when given: school limits apply)."""
    return review_scope(user).covers(department.pk, None if student is None else student.school_id)


def may_run_gown_store(user, *, on=None) -> bool:
    """May `user` issue gowns, take them back and refund deposits? Department staff whose review
    scope today (own object permission or an active delegation) covers the GOWN office; superusers.
    Asked by every page and action of the gown store, its sidebar links and its services: no query
    beyond the review scope's own (cached per request)."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return in_group(user, STAFF) and GOWN_DEPARTMENT_CODE in review_scope(user, on=on).department_codes


def may_import_balances(user, perm: str = "change") -> bool:
    """May `user` import fee balances (`perm`: "add" to upload and preview, "change" to apply or
    cancel)? Asked when the officer acts and again when a worker runs what they queued: a user
    deleted, deactivated or out of the finance role by then may not."""
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.has_perm(f"core.{perm}_balanceimport"))


def reviews_whole_office(user, department_id: int) -> bool:
    """Does the user review this office for every student (their own right or a delegation, not
    narrowed to some schools)?"""
    scope = review_scope(user)
    return scope.all_departments or department_id in scope.everyone


def may_import_holds(user, department: Department) -> bool:
    """May `user` import a list of holds into `department` (upload, preview, confirm, cancel)? Only
    into an office they review for every student: a file is the office's whole list, and a full
    list releases holds of students of every school. Asked again at confirm and by the command."""
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.has_perm("core.add_holdimport") and reviews_whole_office(user, department.pk))


def may_import_students(user) -> bool:
    """May `user` import the graduands from the student records system (upload, preview, confirm,
    cancel)? The registry only: the import creates and changes students of every school. Asked
    again at confirm and by the command."""
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.has_perm("core.add_studentimport") and (user.is_superuser or in_group(user, REGISTRY)))


def importable_departments(user) -> QuerySet[Department]:
    """The offices `user` may import holds into (the upload form's choices)."""
    if not (user is not None and user.is_authenticated and user.is_active and user.has_perm("core.add_holdimport")):
        return Department.objects.none()
    scope = review_scope(user)
    if scope.all_departments:
        return Department.objects.filter(is_active=True)
    return Department.objects.filter(pk__in=sorted(scope.everyone), is_active=True)


def hold_imports_for(user) -> QuerySet[HoldImport]:
    """Hold imports of the offices the user reviews for every student."""
    if not _can_review(user):
        return HoldImport.objects.none()
    scope = review_scope(user)
    if scope.all_departments:
        return HoldImport.objects.all()
    return HoldImport.objects.filter(department_id__in=sorted(scope.everyone))


# --- stored files -------------------------------------------------------------------------------
# Who may download a stored file, asked by every site's download view (clearance_admin/downloads.py)
# after the site's own gate. `as_role` is the site's role: each site serves what its role may see
# (a finance officer who is also a student gets other students' receipts from /finance/, not from
# /student/); None (the administrators' site) asks every rule.

def _as(as_role, role) -> bool:
    return as_role is None or as_role == role


def may_download_evidence(user, approval: ClearanceApproval, *, as_role: str | None = None) -> bool:
    """Evidence of an approval: the office that decided it (a reviewer whose scope covers its
    department, and for a school office the student's school, as in `approvals_for`), the registry,
    the student it belongs to; superusers."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    student = approval.request.student
    if _as(as_role, STAFF) and review_scope(user).covers(approval.department_id, student.school_id):
        return True
    if _as(as_role, REGISTRY) and in_group(user, REGISTRY):
        return True
    return _as(as_role, STUDENT) and in_group(user, STUDENT) and student.user_id == user.pk


def may_download_response_file(user, approval: ClearanceApproval, *, as_role: str | None = None) -> bool:
    """The file a student sent with a re-submission: the student it belongs to and the office that
    reviews the item (a reviewer whose scope covers its department and, for a school office, the
    student's school); superusers. Not the registry: it is the student's answer to one office."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    student = approval.request.student
    if _as(as_role, STAFF) and review_scope(user).covers(approval.department_id, student.school_id):
        return True
    return _as(as_role, STUDENT) and in_group(user, STUDENT) and student.user_id == user.pk


def may_download_receipt(user, payment: Payment, *, as_role: str | None = None) -> bool:
    """A payment's receipt: finance officers, the student who paid; superusers."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    if _as(as_role, FINANCE) and in_group(user, FINANCE):
        return True
    return _as(as_role, STUDENT) and in_group(user, STUDENT) and payment.student.user_id == user.pk


def may_download_import(user, balance_import: BalanceImport, *, as_role: str | None = None) -> bool:
    """A balance import's file and its error report: finance officers and the registry; superusers."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return any(_as(as_role, role) and in_group(user, role) for role in (FINANCE, REGISTRY))


def may_download_statement(user, reconciliation: StatementReconciliation, *, as_role: str | None = None) -> bool:
    """A reconciled M-PESA statement and its result (every payer's phone and name is in it): finance
    officers and superusers only."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return _as(as_role, FINANCE) and in_group(user, FINANCE)


def may_download_hold_import(user, hold_import: HoldImport, *, as_role: str | None = None) -> bool:
    """A hold import's file: reviewers of that office (for every student, as `may_import_holds`),
    on the staff site; superusers."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return _as(as_role, STAFF) and reviews_whole_office(user, hold_import.department_id)


def may_download_student_import(user, student_import: StudentImport, *, as_role: str | None = None) -> bool:
    """A graduand import's file (every student's name, email and phone is in it): the registry, on
    its site; superusers."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return _as(as_role, REGISTRY) and in_group(user, REGISTRY)


def may_download_certificate(user, certificate: Certificate, *, as_role: str | None = None) -> bool:
    """A certificate's PDF: the registry (valid or revoked: a revoked one is stamped REVOKED);
    the student it belongs to while it is valid (a revoked certificate is not theirs to hand on);
    superusers."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    if _as(as_role, REGISTRY) and in_group(user, REGISTRY):
        return True
    return (_as(as_role, STUDENT) and in_group(user, STUDENT) and certificate.is_valid
            and certificate.request.student.user_id == user.pk)


def may_download_export(user, export: ExportFile, *, as_role: str | None = None) -> bool:
    """A file under "My exports": only the person it was made for, only on the site they asked on
    (an export from /staff/ holds what their offices see, not what /registry/ shows), while they
    still have that site's role. Not even a superuser opens someone else's."""
    if not (user.is_authenticated and user.is_active) or export.user_id != user.pk:
        return False
    role = export.params.get("role") if isinstance(export.params, dict) else None
    return as_role == role and (role is None and user.is_superuser or role is not None and has_role(user, role))


def may_download(user, obj, *, as_role: str | None = None, field: str | None = None) -> bool:
    """The rule for this object's stored file `field` (an approval's evidence or the student's
    response file, a payment's receipt, an import's file, an export, a reconciled statement);
    anything else: no."""
    if isinstance(obj, ClearanceApproval) and field == "response_file":
        return may_download_response_file(user, obj, as_role=as_role)
    rule = {ClearanceApproval: may_download_evidence, Payment: may_download_receipt,
            BalanceImport: may_download_import, HoldImport: may_download_hold_import,
            StudentImport: may_download_student_import,
            ExportFile: may_download_export, StatementReconciliation: may_download_statement}.get(type(obj))
    return rule is not None and rule(user, obj, as_role=as_role)


# --- granting -----------------------------------------------------------------------------------

@transaction.atomic
def reviewer_set_scope(*, user, departments, schools=(), acting_user=None) -> None:
    """Make `user` a reviewer of exactly `departments` (and, for school offices, `schools`).
    Reviewing an office makes the user Department staff (and staff, to log in to /staff/)."""
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
    forget_scope(user)
    if departments:
        user.groups.add(Group.objects.get(name=STAFF))
        _ensure_staff_flag(user, acting_user)


def _ensure_staff_flag(user, acting_user) -> None:
    # every role but Student logs in to an admin site, which needs is_staff
    if not user.is_staff:
        user.is_staff = True
        user._history_user = acting_user
        user._change_reason = "Roles assigned"
        user.save(update_fields=["is_staff"])


@transaction.atomic
def user_set_roles_and_scope(*, user, roles, departments, schools=(), acting_user) -> None:
    """Give `user` exactly these role groups (other, non-role groups are kept) and make them a
    reviewer of exactly `departments` / `schools` (see reviewer_set_scope)."""
    others = [g for g in user.groups.all() if g.name not in ROLES]
    user.groups.set([*others, *roles])
    user.__dict__.pop("_role_names", None)
    reviewer_set_scope(user=user, departments=departments, schools=schools, acting_user=acting_user)
    if {g.name for g in user.groups.all()} - {STUDENT}:
        _ensure_staff_flag(user, acting_user)
