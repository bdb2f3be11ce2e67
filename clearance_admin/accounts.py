"""Getting in without an administrator: a student's first login (the one-time link of an
invitation or of signing up with their registration number and email) and a forgotten password
(Django's own reset views), for everyone, on pages styled like the sign-in page.

Nothing on these pages says whether an account, a student or an address exists: every request for
a link ends on the same "if it matches, we sent it" page. Each asking page is limited per client
address (ACCOUNT_RATE_LIMIT per minute, core/throttle.py); the links themselves are one-time and
expire (Django's reset: PASSWORD_RESET_TIMEOUT; invitations and sign-ups: ACCOUNT_LINK_DAYS)."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse, reverse_lazy
from django.views.generic import FormView
from unfold.widgets import INPUT_CLASSES, UnfoldAdminEmailInputWidget, UnfoldAdminTextInputWidget

from core.services.accounts import account_link_tokens, student_sign_up
from core.throttle import rate_limit


def _context(request, **extra):
    from .sites import student_site
    return {**student_site.each_context(request), "site_title": "Clearance", "site_header": "Clearance",
            "login_url": reverse("student:login"), **extra}


class _Styled:
    """The sign-in page's look (unfold's inputs) for these forms' fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field.widget, forms.PasswordInput):
                field.widget.attrs["class"] = " ".join(INPUT_CLASSES)


class ResetForm(PasswordResetForm):
    email = forms.EmailField(label="Email address", max_length=254, widget=UnfoldAdminEmailInputWidget(
        attrs={"autocomplete": "email", "autofocus": True}))


class NewPasswordForm(_Styled, SetPasswordForm):
    pass


class SignUpForm(forms.Form):
    registration_number = forms.CharField(max_length=40, widget=UnfoldAdminTextInputWidget(
        attrs={"autofocus": True, "placeholder": "e.g. SCE/CS/0042/2022"}))
    email = forms.EmailField(label="Email address in the student records", max_length=254,
                             widget=UnfoldAdminEmailInputWidget(attrs={"autocomplete": "email"}))


class _Limited:
    """A POST over ACCOUNT_RATE_LIMIT per minute from one address is answered 429 with the form."""

    rate_scope = "accounts"

    def post(self, request, *args, **kwargs):
        limited = rate_limit(request, scope=self.rate_scope, limit=settings.ACCOUNT_RATE_LIMIT)
        if limited is not None:
            response = TemplateResponse(request, "accounts/limited.html", _context(
                request, title="Too many requests", retry_after=limited.retry_after), status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response
        return super().post(request, *args, **kwargs)


class _Page:
    def get_context_data(self, **kwargs):
        return _context(self.request, **super().get_context_data(**kwargs))


class ResetView(_Limited, _Page, auth_views.PasswordResetView):
    rate_scope = "password-reset"
    form_class = ResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")
    title = "Forgotten password"

    def form_valid(self, form):
        self.extra_email_context = {"public_url": settings.PUBLIC_URL}
        return super().form_valid(form)


class ResetDoneView(_Page, auth_views.PasswordResetDoneView):
    template_name = "accounts/link_sent.html"
    title = "Check your email"


class ResetConfirmView(_Page, auth_views.PasswordResetConfirmView):
    form_class = NewPasswordForm
    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("password_reset_complete")
    title = "Choose a new password"


class ResetCompleteView(_Page, auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_set.html"
    title = "Password changed"


class WelcomeView(ResetConfirmView):
    """The invitation's or sign-up's one-time link: the student chooses their first password."""

    token_generator = account_link_tokens
    success_url = reverse_lazy("account_welcome_done")
    title = "Choose your password"


class WelcomeDoneView(ResetCompleteView):
    title = "Your login is ready"


class SignUpView(_Limited, _Page, FormView):
    rate_scope = "sign-up"
    form_class = SignUpForm
    template_name = "accounts/sign_up.html"
    title = "Get your login"

    def form_valid(self, form):
        student_sign_up(registration_number=form.cleaned_data["registration_number"],
                        email=form.cleaned_data["email"])
        return redirect("account_sign_up_sent")

    def get_context_data(self, **kwargs):
        return super().get_context_data(title=self.title, **kwargs)


def sign_up_sent(request):
    return TemplateResponse(request, "accounts/link_sent.html", _context(request, title="Check your email",
                                                                         sign_up=True))


urlpatterns = [
    path("password-reset/", ResetView.as_view(), name="admin_password_reset"),
    path("password-reset/sent/", ResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", ResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", ResetCompleteView.as_view(), name="password_reset_complete"),
    path("sign-up/", SignUpView.as_view(), name="account_sign_up"),
    path("sign-up/sent/", sign_up_sent, name="account_sign_up_sent"),
    path("welcome/<uidb64>/<token>/", WelcomeView.as_view(), name="account_welcome"),
    path("welcome/done/", WelcomeDoneView.as_view(), name="account_welcome_done"),
]
