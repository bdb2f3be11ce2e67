"""One UnfoldAdminSite per role (CONVENTIONS.md). Each site lets in only the people of its role;
anyone else who reaches it gets a clear refusal that names the sites they do have."""
from __future__ import annotations

import functools
import logging
from urllib.parse import urlencode

import django_otp
from django.conf import settings
from django.contrib import messages
from django.db import DataError
from django.template.response import TemplateResponse
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.urls import path, reverse
from django.core.exceptions import ValidationError
from django.utils.http import url_has_allowed_host_and_scheme
from unfold.forms import AuthenticationForm
from unfold.sites import UnfoldAdminSite

from core import permissions
from core.services import signin as signin_services
from core.signin import lockout_message

from .signin import CodeForm, qr_svg, secret_text

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

    def get_invalid_login_error(self):
        # axes flags the request when this attempt locked the account (or it already was)
        if getattr(self.request, "axes_locked_out", False):
            return ValidationError(lockout_message(self.request), code="locked_out")
        return super().get_invalid_login_error()


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
        return permissions.may_use_role(user, self.role)

    def has_permission(self, request):
        return self.user_allowed(request.user)

    def needs_second_factor(self, request) -> bool:
        """A signed-in person of this site whose session has not yet given their second factor
        (every site but /student/, while OTP_REQUIRED is on)."""
        user = request.user
        return (settings.OTP_REQUIRED and self.role != permissions.STUDENT and self.user_allowed(user)
                and not (hasattr(user, "is_verified") and user.is_verified()))

    def get_urls(self):
        urls = [
            # stored files: through this site's gate, then the object's rule for this site's role
            path("files/<str:kind>/<int:pk>/", self.admin_view(functools.partial(downloads.download_view, site=self)),
                 name="file_download"),
            # certificates' PDFs: the site's gate, then permissions.may_download_certificate
            path("certificates/<int:pk>/pdf/",
                 self.admin_view(functools.partial(downloads.certificate_view, site=self)), name="certificate_pdf"),
            path("second-factor/", self.admin_view(self.second_factor_view), name="otp"),
            path("second-factor/recovery-codes/", self.admin_view(self.recovery_codes_view), name="otp_recovery"),
        ]
        if self.report_names:
            from .reports import ReportsView
            urls.append(path("reports/", self.admin_view(ReportsView(self)), name="reports"))
        return urls + super().get_urls()

    def _next_url(self, request) -> str:
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
        if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                      require_https=request.is_secure()):
            return target
        return reverse(f"{self.name}:index")

    def _second_factor_page(self, request, template, **context):
        request.current_app = self.name
        return TemplateResponse(request, template, {
            **self.each_context(request), "next": self._next_url(request),
            "logout_url": reverse(f"{self.name}:logout"), **context})

    def second_factor_view(self, request):
        """Asks a signed-in person for their second factor. Without a confirmed authenticator they
        set one up here (QR code and key, then a code from the app to confirm it) and are shown
        their recovery codes once; with one they enter its code or a recovery code."""
        if not self.needs_second_factor(request):
            return redirect(self._next_url(request))
        user = request.user
        form = CodeForm(request.POST or None)
        if signin_services.has_second_factor(user):
            if request.method == "POST" and form.is_valid():
                result = signin_services.second_factor_verify(user=user, token=form.cleaned_data["token"])
                if result.device is not None:
                    django_otp.login(request, result.device)
                    if result.recovery_codes_left is not None:
                        messages.warning(request, f"You used a recovery code; {result.recovery_codes_left} left. "
                                                  "Ask the IT office to reset your second factor if you lost your phone.")
                    return redirect(self._next_url(request))
                form.add_error("token", result.error)
            return self._second_factor_page(request, "admin/second_factor_verify.html", form=form,
                                            title="Second factor")
        device = signin_services.second_factor_start(user=user, device_id=request.session.get("otp_enrol_device"))
        request.session["otp_enrol_device"] = device.pk
        if request.method == "POST" and form.is_valid():
            result = signin_services.second_factor_confirm(device=device, token=form.cleaned_data["token"])
            if result.device is not None:
                django_otp.login(request, result.device)
                request.session.pop("otp_enrol_device", None)
                request.session["otp_recovery_codes"] = result.recovery_codes
                return redirect(f"{reverse(f'{self.name}:otp_recovery')}?"
                                f"{urlencode({REDIRECT_FIELD_NAME: self._next_url(request)}, safe='/')}")
            form.add_error("token", result.error)
        return self._second_factor_page(request, "admin/second_factor_enrol.html", form=form,
                                        title="Set up a second factor", qr=qr_svg(device.config_url),
                                        secret=secret_text(device))

    def recovery_codes_view(self, request):
        """The recovery codes just issued, shown once: the page cannot be opened again to show them."""
        codes = request.session.pop("otp_recovery_codes", None)
        if not codes:
            return redirect(self._next_url(request))
        return self._second_factor_page(request, "admin/second_factor_recovery.html", codes=codes,
                                        title="Your recovery codes")

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


# pages a signed-in person reaches before giving their second factor
SECOND_FACTOR_EXEMPT = {"login", "logout", "otp", "otp_recovery", "jsi18n"}


class SecondFactorMiddleware:
    """Every page of a site that asks for a second factor is reached only by a verified session;
    others are sent to that site's second-factor page (after django_otp's OTPMiddleware). Resolving
    by URL covers the sites' own views and the ModelAdmins' extra URLs alike."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        site = SITES.get(match.namespace) if match is not None else None
        if site is None or match.url_name in SECOND_FACTOR_EXEMPT or not site.needs_second_factor(request):
            return None
        return redirect(f"{reverse(f'{site.name}:otp')}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()}, safe='/')}")


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
