"""DRF permission classes and helpers for every API module. Each asks core/permissions.py: the API
decides nothing by itself, so a person (or a system's key, which acts as its account) may do here
exactly what their role and offices allow on the sites.

    class QueueView(APIView):
        permission_classes = [IsOfficeStaff]

    approval = own_or_404(approvals_for(request.user), pk)     # outside the scope: 404, not 403
"""
from __future__ import annotations

from django.http import Http404
from rest_framework.permissions import BasePermission

from core import permissions as core_permissions
from core.permissions import FINANCE, REGISTRY, STAFF, STUDENT


class HasRole(BasePermission):
    """Signed in (token or key) and acting in one of `roles` (core.permissions.may_use_role, as the
    sites' gates). Subclass with `roles = (...)` or use the ones below."""

    roles: tuple[str, ...] = ()
    message = "Your account does not have the role this needs."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated) and any(
            core_permissions.may_use_role(user, role) for role in self.roles)


class IsStudent(HasRole):
    roles = (STUDENT,)
    message = "This is for students: your account is not a student's."


class IsOfficeStaff(HasRole):
    roles = (STAFF,)
    message = "This is for office staff: your account is not a reviewer's."


class IsFinance(HasRole):
    roles = (FINANCE,)
    message = "This is for the finance office."


class IsRegistry(HasRole):
    roles = (REGISTRY,)
    message = "This is for the registry."


class IsStaffOrFinance(HasRole):
    """Those who decide approvals and place holds: office staff and finance officers."""
    roles = (STAFF, FINANCE)
    message = "This is for office staff and finance officers."


def role_permission(*roles: str, message: str | None = None) -> type[HasRole]:
    """A HasRole for any other combination of roles."""
    return type("HasRole_" + "_".join(r.split()[0] for r in roles), (HasRole,),
                {"roles": tuple(roles), "message": message or HasRole.message})


def own_or_404(queryset, pk, *, what: str = "item"):
    """The object `pk` of a queryset already narrowed to what the user may see (a selector's or
    core.permissions.*_for), or 404 — the same answer for someone else's and for none at all, so an
    id reveals nothing."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No such {what} of yours.")
    return obj
