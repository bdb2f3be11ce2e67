"""Every role × every site × list / detail / change / history / action.

A person without the site's role gets the login page (with a refusal) for every URL of that site,
and a POSTed action changes nothing. A person with the role sees the lists of the site, and gets a
403 for an object outside their scope however the URL was typed.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from clearance_admin.sites import SITES
from core import permissions
from core.demo import seed_demo
from core.models import ClearanceApproval, Hold, Notification, Student, User

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
