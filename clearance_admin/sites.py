"""One UnfoldAdminSite per role (CONVENTIONS.md). Each site lets in only the people of its role;
anyone else who reaches it gets a clear refusal that names the sites they do have."""
from __future__ import annotations

import functools
import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.db import DataError
from django.template.response import TemplateResponse
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.urls import path, reverse
from django.core.exceptions import ValidationError
from unfold.forms import AuthenticationForm
from unfold.sites import UnfoldAdminSite

from core import permissions

from . import downloads

SITES: dict[str, "RoleSite"] = {}
log = logging.getLogger(__name__)
# what a value no page offers raises deep in Django, unfold or a library (an id that is not a number,
# "²" that passes isdigit(), a number too large for the database): the person gets a 400 that says
# so, never a 500
BAD_INPUT = (ValueError, OverflowError, DataError)


class RoleAuthenticationForm(AuthenticationForm):
    """Refuses, at login, a person whose roles do not include the site's."""

    def confirm_login_allowed(self, user):
        if not user.is_active:
            raise ValidationError("This account is disabled.", code="inactive")
        site = SITES.get(getattr(self.request, "current_app", None) or "")
        if site is not None and not site.user_allowed(user):
            raise ValidationError(site.refusal(user), code="wrong_site")


class RoleSite(UnfoldAdminSite):
    role: str | None = None  # None: superusers only
    audience = "administrators"
    login_form = RoleAuthenticationForm
    report_names: tuple[str, ...] = ()  # the reports its Reports page offers (clearance_admin/reports.py)

    def __init__(self, name):
        super().__init__(name)
        self.login_form = RoleAuthenticationForm
        SITES[name] = self

    def user_allowed(self, user) -> bool:
        if not (user.is_active and user.is_authenticated):
            return False
        if self.role is None:
            return user.is_superuser
        if not permissions.has_role(user, self.role):
            return False
        # students log in without is_staff; every other role is staff
        return user.is_staff or self.role == permissions.STUDENT

    def has_permission(self, request):
        return self.user_allowed(request.user)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @functools.wraps(inner)
        def guarded(request, *args, **kwargs):
            try:
                response = inner(request, *args, **kwargs)
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()       # lists evaluate their query while rendering: inside the guard
                return response
            except BAD_INPUT as exc:
                log.info("bad input on %s: %s: %s", request.path, type(exc).__name__, exc)
                return self.bad_input(request)
        return guarded

    def get_urls(self):
        # stored files: through this site's gate, then the object's rule for this site's role
        urls = [
            path("files/<str:kind>/<int:pk>/", self.admin_view(functools.partial(downloads.download_view, site=self)),
                 name="file_download"),
        ]
        if self.report_names:
            from .reports import ReportsView
            urls.append(path("reports/", self.admin_view(ReportsView(self)), name="reports"))
        return urls + super().get_urls()

    def bad_input(self, request):
        request.current_app = self.name
        return TemplateResponse(request, "admin/bad_input.html",
                                {**self.each_context(request), "title": "That address cannot be used",
                                 "index_url": reverse(f"{self.name}:index")}, status=400)

    def refusal(self, user) -> str:
        others = [f"/{s.name if s.name != 'admin' else 'admin'}/" for s in SITES.values()
                  if s is not self and s.user_allowed(user)]
        where = (" Your account can use " + ", ".join(others) + ".") if others else \
            " Your account has no role in Clearance yet; ask the IT office."
        return f"This site is for {self.audience}, and {user.email} is not one of them.{where}"

    def login(self, request, extra_context=None):
        if request.method == "GET":
            if REDIRECT_FIELD_NAME not in request.GET:
                # unfold's login form posts to its own URL without a `next` field: carry it in the URL
                # so a successful login lands on this site, not on LOGIN_REDIRECT_URL.
                return redirect(f"{request.path}?{urlencode({REDIRECT_FIELD_NAME: reverse(f'{self.name}:index')})}")
            if request.user.is_authenticated and not self.has_permission(request):
                messages.error(request, self.refusal(request.user))
        return super().login(request, extra_context)


class SuperuserSite(RoleSite):
    settings_name = "UNFOLD"
    site_header = "Clearance — administration"
    site_title = "Clearance administration"
    index_title = "Administration"


class StaffSite(RoleSite):
    role = permissions.STAFF
    audience = "department staff"
    settings_name = "UNFOLD_STAFF"
    report_names = ("pending_by_department",)       # narrowed to the offices the person reviews
    site_header = "Clearance — offices"
    site_title = "Clearance for offices"
    index_title = "My queue"


class FinanceSite(RoleSite):
    role = permissions.FINANCE
    audience = "finance officers"
    settings_name = "UNFOLD_FINANCE"
    report_names = ("financial_summary",)
    site_header = "Clearance — finance"
    site_title = "Clearance for finance"
    index_title = "Financial summary"


class RegistrySite(RoleSite):
    role = permissions.REGISTRY
    audience = "the registry"
    settings_name = "UNFOLD_REGISTRY"
    report_names = ("graduation_list", "pending_by_department", "bottlenecks", "completion_rate",
                    "financial_summary", "gowns", "completed_but_now_held", "audit_trail")
    site_header = "Clearance — registry"
    site_title = "Clearance for the registry"
    index_title = "Progress"


class StudentSite(RoleSite):
    role = permissions.STUDENT
    audience = "students"
    settings_name = "UNFOLD_STUDENT"
    site_header = "My clearance"
    site_title = "My clearance"
    index_title = "My clearance"

    def user_allowed(self, user) -> bool:
        # Only real members of the Student group: a superuser is not a student.
        return user.is_active and user.is_authenticated and permissions.in_group(user, permissions.STUDENT)


superuser_site = SuperuserSite(name="admin")
staff_site = StaffSite(name="staff")
finance_site = FinanceSite(name="finance")
registry_site = RegistrySite(name="registry")
student_site = StudentSite(name="student")
