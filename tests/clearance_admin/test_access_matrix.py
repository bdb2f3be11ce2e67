"""Every role × every site × list / detail / change / history / action.

A person without the site's role gets the login page (with a refusal) for every URL of that site,
and a POSTed action changes nothing. A person with the role sees the lists of the site; an object
outside their scope is not in the list, its change and history pages are a 403/404 that does not
name it, and an action with its id forged in changes nothing and is refused counted, not named
(`OUT_OF_SCOPE` × `COLUMNS`, below).
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from clearance_admin.sites import SITES
from core import permissions
from core.demo import seed_demo
from core.models import ClearanceApproval, Delegation, Department, Hold, Notification, Student, User
from core.services.holds import hold_place
from tests import factories
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

PASSWORD = "matrix-pass-1"
ROLE_USERS = {
    "admin": "admin@clearance.test",
    "registry": "registry@clearance.test",
    "finance": "finance@clearance.test",
    "staff": "lib@clearance.test",
    "student": "student@clearance.test",
}
# Where each demo user may go: the superuser everywhere but the students' site; the finance
# officer also reviews FIN, so the staff site is theirs too.
ALLOWED = {
    "admin": {"admin", "staff", "finance", "registry"},
    "registry": {"registry"},
    "finance": {"finance", "staff"},
    "staff": {"staff"},
    "student": {"student"},
}


@pytest.fixture
def world(db):
    seed_demo(students=40, password=PASSWORD, seed=3)
    return {role: User.objects.get(email=email) for role, email in ROLE_USERS.items()}


def _urls(site_name, model_admin, obj):
    opts = model_admin.model._meta
    base = f"{site_name}:{opts.app_label}_{opts.model_name}"
    urls = {"list": reverse(f"{base}_changelist")}
    if obj is not None:
        urls["detail"] = reverse(f"{base}_change", args=[obj.pk])
        urls["history"] = reverse(f"{base}_history", args=[obj.pk])
    return urls


def _any_object(model_admin):
    return model_admin.model._default_manager.order_by("pk").first()


def _sites():
    return sorted(SITES)


@pytest.mark.parametrize("site_name", _sites())
@pytest.mark.parametrize("role", sorted(ROLE_USERS))
def test_role_by_site(client, world, role, site_name):
    user = world[role]
    client.force_login(user)
    site = SITES[site_name]
    allowed = site_name in ALLOWED[role]
    index = client.get(reverse(f"{site_name}:index"))
    if not allowed:
        # the index and every model URL send a stranger to the login page, which says why
        assert index.status_code == 302 and "/login/" in index["Location"], (role, site_name)
        refusal = client.get(index["Location"])
        assert f"{user.email} is not one of them" in refusal.content.decode()
        for model_admin in site._registry.values():
            for kind, url in _urls(site_name, model_admin, _any_object(model_admin)).items():
                response = client.get(url)
                assert response.status_code == 302 and "/login/" in response["Location"], (role, site_name, url)
            before = _snapshot()
            response = client.post(_urls(site_name, model_admin, None)["list"],
                                   {"action": "delete_selected", "_selected_action": _some_ids(model_admin)})
            assert response.status_code == 302 and "/login/" in response["Location"]
            assert _snapshot() == before
        return
    assert index.status_code == 200, (role, site_name)
    for model_admin in site._registry.values():
        request = _request_for(user)
        if not model_admin.has_view_permission(request):
            continue
        visible = model_admin.get_queryset(request).order_by("pk").first()
        for kind, url in _urls(site_name, model_admin, visible).items():
            response = client.get(url)
            assert response.status_code == 200, (role, site_name, kind, url, response.status_code)


def _request_for(user):
    from django.test import RequestFactory
    request = RequestFactory().get("/")
    request.user = user
    return request


def _some_ids(model_admin):
    return list(model_admin.model._default_manager.order_by("pk").values_list("pk", flat=True)[:3])


def _snapshot():
    return (
        tuple(ClearanceApproval.objects.order_by("pk").values_list("status", flat=True)),
        tuple(Hold.objects.order_by("pk").values_list("status", flat=True)),
        Student.objects.count(),
        Notification.objects.filter(read_at__isnull=False).count(),
    )


def test_staff_cannot_reach_another_offices_approval_by_any_url(client, world):
    lib = world["staff"]
    client.force_login(lib)
    foreign = ClearanceApproval.objects.exclude(department__code="LIB").filter(status="pending").first()
    assert not permissions.approvals_for(lib).filter(pk=foreign.pk).exists()
    for suffix in ("change", "history"):
        response = client.get(reverse(f"staff:core_clearanceapproval_{suffix}", args=[foreign.pk]))
        assert response.status_code in (403, 404), suffix
    before = _snapshot()
    response = client.post(reverse("staff:core_clearanceapproval_change", args=[foreign.pk]),
                           {"reason": "x", "_approve": "1"})
    assert response.status_code in (403, 404)
    assert _snapshot() == before


def test_student_cannot_reach_another_students_notification(client, world):
    me = world["student"]
    other = Notification.objects.create(user=world["registry"], title="not yours")
    client.force_login(me)
    for suffix in ("change", "history"):
        response = client.get(reverse(f"student:core_notification_{suffix}", args=[other.pk]))
        assert response.status_code in (403, 404), suffix


# --- out of scope: every role × site × list / change / history / action ----------------------------
#
# Each row names a user, a site, a model and the object of that model the user must not reach; each
# column is one way of reaching it. A column is a function (client, site, model, obj, action) that
# asserts the object stays out of reach; a "download" column for stored files goes in COLUMNS the
# same way (its rows: the models with files).



@pytest.fixture
def scoped(world):
    """The demo world, plus a school office clerk limited to one school, a delegation between two
    others, and a school-office hold on a student of another school."""
    sch = Department.objects.get(code="SCH")
    approvals = ClearanceApproval.objects.filter(department=sch).select_related("request__student__school")
    home = approvals.order_by("pk").first().request.student.school
    clerk = User.objects.create_user(email="sch-limited@clearance.test", password=PASSWORD, full_name="Limited")
    permissions.reviewer_set_scope(user=clerk, departments=[sch], schools=[home])
    elsewhere = approvals.exclude(request__student__school=home).order_by("pk").first().request.student
    hold_place(department=sch, student=elsewhere, reason="Matrix: project report", acting_user=User.objects.get(
        email="admin@clearance.test"))
    spt, gown = User.objects.get(email="spt@clearance.test"), User.objects.get(email="gown@clearance.test")
    factories.DelegationFactory(department=Department.objects.get(code="SPT"), from_user=spt, to_user=gown)
    # a finance officer who also reviews the library: its holds are theirs on /staff/, never on /finance/
    both = User.objects.create_user(email="fin-lib@clearance.test", password=PASSWORD, full_name="Both")
    permissions.user_set_roles_and_scope(user=both, roles=[Group.objects.get(name=permissions.FINANCE)],
                                         departments=Department.objects.filter(code__in=["FIN", "LIB"]),
                                         acting_user=None)
    return {**world, "sch_limited": clerk, "home": home, "finance_lib": both}


def _approval_elsewhere(w, role):
    user = w[role]
    if role == "sch_limited":
        return ClearanceApproval.objects.filter(department__code="SCH", status="pending").exclude(
            request__student__school=w["home"]).order_by("pk").first()
    return ClearanceApproval.objects.exclude(pk__in=permissions.approvals_for(user).values("pk")).filter(
        status="pending").order_by("pk").first()


def _hold_elsewhere(w, role):
    if role == "sch_limited":
        return Hold.objects.filter(department__code="SCH", status="active").exclude(student__school=w["home"]).first()
    if role == "finance_lib":
        return Hold.objects.filter(department__code="LIB", status="active").order_by("pk").first()
    return Hold.objects.filter(status="active").exclude(department__code__in=["LIB", "FIN"]).order_by("pk").first()


OUT_OF_SCOPE = [
    # (user, site, model, the object out of reach, the action tried on it)
    ("staff", "staff", ClearanceApproval, _approval_elsewhere, "approve_selected"),
    ("staff", "staff", Hold, _hold_elsewhere, "release_selected"),
    ("staff", "staff", Delegation, lambda w, r: Delegation.objects.get(department__code="SPT"), "end_selected"),
    ("sch_limited", "staff", ClearanceApproval, _approval_elsewhere, "approve_selected"),
    ("sch_limited", "staff", Hold, _hold_elsewhere, "release_selected"),
    ("sch_limited", "staff", Student, lambda w, r: _hold_elsewhere(w, r).student, None),
    ("finance", "finance", Hold, _hold_elsewhere, "release_selected"),
    ("finance", "staff", ClearanceApproval, _approval_elsewhere, "approve_selected"),
    ("finance", "staff", Hold, _hold_elsewhere, "release_selected"),
    ("finance_lib", "finance", Hold, _hold_elsewhere, "release_selected"),
    ("student", "student", Notification,
     lambda w, r: Notification.objects.create(user=w["registry"], title="For the registry only"), "mark_read"),
]


def _label(obj):
    """What would name the object to the user: its student's registration number."""
    student = getattr(obj, "student", None) or getattr(getattr(obj, "request", None), "student", None)
    return student.registration_number if student else None


def _base(site, model):
    return f"{site}:{model._meta.app_label}_{model._meta.model_name}"


def _row(obj):
    return obj.__class__._default_manager.filter(pk=obj.pk).values().get()


def _not_in_list(client, site, model, obj, action):
    response = client.get(reverse(f"{_base(site, model)}_changelist"))
    assert response.status_code == 200
    assert not response.context["cl"].queryset.filter(pk=obj.pk).exists()


def _by_url(suffix):
    def check(client, site, model, obj, action):
        response = client.get(reverse(f"{_base(site, model)}_{suffix}", args=[obj.pk]))
        assert response.status_code in (403, 404), response.status_code
        label = _label(obj)
        assert label is None or label not in response.content.decode()
    return check


def _forged_action(client, site, model, obj, action):
    if action is None:
        return
    before = _row(obj)
    response = client.post(reverse(f"{_base(site, model)}_changelist"), {
        "action": action, "_selected_action": [str(obj.pk)], "index": "0", "select_across": "0",
        "confirm": "yes", "reason": "forged", "apply": "1"}, follow=True)
    assert response.status_code == 200
    assert _row(obj) == before                                   # nothing was done to it
    said = messages_of(response)
    assert any(m.startswith("Refused: 1 ") and " not " in m for m in said), said     # counted …
    label = _label(obj)
    assert label is None or not any(label in m for m in said), said                # … never named


COLUMNS = {"list": _not_in_list, "change": _by_url("change"), "history": _by_url("history"), "action": _forged_action}


# --- out of scope: downloads ---------------------------------------------------------------------
# The same users against stored files they must not have, on the site they use: each row names the
# file's object; the answer is the 404 a missing id gets, naming nothing.

def _stored(obj, field, name):
    from django.core.files.base import ContentFile

    from tests.conftest import PDF_BYTES
    getattr(obj, field).save(name, ContentFile(PDF_BYTES))
    return obj


def _evidence_elsewhere(w, role):
    return _stored(_approval_elsewhere(w, role), "evidence", "letter.pdf")


def _receipt_of_another_student(w, role):
    student = Student.objects.exclude(user=w["student"]).order_by("pk").first()
    return _stored(factories.PaymentFactory(student=student), "receipt", "receipt.pdf")


def _evidence_of_another_student(w, role):
    approval = ClearanceApproval.objects.exclude(request__student__user=w["student"]).order_by("pk").first()
    return _stored(approval, "evidence", "letter.pdf")


def _import_file(w, role):
    return _stored(factories.BalanceImportFactory(), "file", "balances.xlsx")


DOWNLOADS = [
    # (user, site, kind, the object whose file is out of reach)
    ("staff", "staff", "evidence", _evidence_elsewhere),
    ("sch_limited", "staff", "evidence", _evidence_elsewhere),
    ("finance", "staff", "evidence", _evidence_elsewhere),
    ("finance", "finance", "evidence", _evidence_of_another_student),
    ("staff", "staff", "receipt", _receipt_of_another_student),
    ("registry", "registry", "receipt", _receipt_of_another_student),
    ("student", "student", "receipt", _receipt_of_another_student),
    ("student", "student", "evidence", _evidence_of_another_student),
    ("staff", "staff", "import", _import_file),
    ("student", "student", "import", _import_file),
]


@pytest.mark.parametrize("role, site_name, kind, pick", DOWNLOADS,
                         ids=[f"{r}-{s}-{k}" for r, s, k, _ in DOWNLOADS])
def test_download_out_of_scope(client, scoped, role, site_name, kind, pick):
    obj = pick(scoped, role)
    client.force_login(scoped[role])
    response = client.get(reverse(f"{site_name}:file_download", args=[kind, obj.pk]))
    assert response.status_code == 404
    label = _label(obj)
    assert label is None or label not in response.content.decode()
    # the same object is there for someone it belongs to: the refusal is about the user, not the file
    admin = scoped["admin"]
    client.force_login(admin)
    assert client.get(reverse("admin:file_download", args=[kind, obj.pk])).status_code == 200


@pytest.mark.parametrize("column", sorted(COLUMNS))
@pytest.mark.parametrize("role, site_name, model, pick, action", OUT_OF_SCOPE,
                         ids=[f"{r}-{s}-{m._meta.model_name}" for r, s, m, _, _ in OUT_OF_SCOPE])
def test_out_of_scope(client, scoped, role, site_name, model, pick, action, column):
    obj = pick(scoped, role)
    assert obj is not None, "the demo world has no such object"
    client.force_login(scoped[role])
    COLUMNS[column](client, site_name, model, obj, action)


@pytest.mark.parametrize("role, path", [
    # models that are the superuser's only are not on the registry's site at all
    ("registry", "/registry/core/user/"), ("registry", "/registry/core/department/"),
    ("registry", "/registry/core/balanceimport/"), ("registry", "/registry/auth/group/"),
    ("finance", "/finance/core/user/"), ("staff", "/staff/core/user/"), ("student", "/student/core/user/"),
])
def test_models_outside_a_site_are_not_there(client, world, role, path):
    client.force_login(world[role])
    assert client.get(path).status_code == 404


def test_a_student_cannot_answer_another_students_item(client, world):
    me = world["student"]
    theirs = ClearanceApproval.objects.exclude(request__student__user=me).filter(status="rejected").first()
    before = _row(theirs)
    client.force_login(me)
    response = client.post(reverse("student:student_resubmit", args=[theirs.pk]), {"response": "for them"})
    assert response.status_code == 404 and theirs.request.student.registration_number not in response.content.decode()
    assert _row(theirs) == before
