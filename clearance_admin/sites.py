"""One UnfoldAdminSite per role (CONVENTIONS.md). Each site lets in only the people of its role."""
from __future__ import annotations

from unfold.sites import UnfoldAdminSite

from core import permissions


class RoleSite(UnfoldAdminSite):
    role: str | None = None

    def has_permission(self, request):
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        if self.role is None:
            return user.is_superuser
        return permissions.has_role(user, self.role) and (user.is_staff or self.role == permissions.STUDENT)


class SuperuserSite(RoleSite):
    site_header = "Clearance — administration"
    site_title = "Clearance administration"
    index_title = "Administration"


superuser_site = SuperuserSite(name="admin")
