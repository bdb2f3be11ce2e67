"""Signing in to the API (part 1): a person's email and password for a short-lived access token
and a refresh token (djangorestframework-simplejwt), refreshing, signing out, and who am I.

The sites' rules hold here too:
- the lockout (django-axes through core.signin.LockoutBackend): AXES_FAILURE_LIMIT wrong passwords
  for one account from one address lock that pair; the token request then answers 429 with
  core.signin.lockout_message (how long), the sentence the sign-in pages show;
- a wrong email and a wrong password get the same answer (no account enumeration), and so does a
  disabled account;
- the second factor: while OTP_REQUIRED is on, every site but /student/ asks for a TOTP code, and a
  token acts in every role of its account, so an account with any role but Student must send `otp`
  (a code of its authenticator app, or a recovery code). One that has not set up an authenticator
  yet does that on its site first (README "The API").
"""
from __future__ import annotations

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, user_logged_in
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from core import permissions
from core.selectors.student import student_of
from core.services import signin as signin_services
from core.signin import lockout_message

from .keys import is_key
from .schema import ErrorSerializer
from .serializers import StrictSerializer
from .throttling import SignInThrottle

WRONG_CREDENTIALS = "The email or password is not right (or the account is disabled)."
OTP_NEEDED = ("Your account signs in with a second factor: send the 6-digit code of your authenticator app "
              "(or one of your recovery codes) as `otp`.")
OTP_NOT_SET_UP = ("Your account needs a second factor, which is not set up yet: sign in once on your site "
                  "({sites}) and follow the steps to set up an authenticator app, then ask for a token again "
                  "with its code as `otp`.")


class Locked(exceptions.APIException):
    """429 with the sites' sentence; `wait` (seconds) becomes Retry-After, as for a throttle."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, request):
        super().__init__(lockout_message(request))
        cool_off = get_cool_off(request)
        self.wait = int(cool_off.total_seconds()) if cool_off else None


def second_factor_required(user) -> bool:
    """Does a token for `user` need their second factor? The sites ask for it on every site but
    /student/ (clearance_admin.sites.RoleSite.needs_second_factor); a token reaches every role of
    the account, so any role but Student (or a superuser) needs it, while OTP_REQUIRED is on."""
    return bool(settings.OTP_REQUIRED and (user.is_superuser or permissions.roles_of(user) - {permissions.STUDENT}))


def _sites_of(user) -> str:
    from clearance_admin.sites import SITES     # the sites' own gates name the places to go
    return ", ".join(f"/{name}/" for name, site in SITES.items() if site.user_allowed(user)) or "/staff/"


def _tokens(user) -> dict:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh),
            "access_expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds())}


class TokenRequest(StrictSerializer):
    email = serializers.CharField(max_length=254, trim_whitespace=True)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True,
                                     style={"input_type": "password"})
    otp = serializers.CharField(max_length=32, required=False, allow_blank=True,
                                help_text="The second factor's code, for accounts with any role but Student "
                                          "while second factors are required.")


class TokenPair(serializers.Serializer):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>`.")
    refresh = serializers.CharField(help_text="Send to /api/auth/token/refresh/ for a new pair; used once.")
    access_expires_in = serializers.IntegerField(help_text="Seconds the access token lasts.")


class RefreshRequest(StrictSerializer):
    refresh = serializers.CharField(max_length=4096)


class LogoutRequest(StrictSerializer):
    refresh = serializers.CharField(max_length=4096, help_text="The refresh token to end (it cannot be used again).")


class Me(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), help_text="The account's roles (groups).")
    offices = serializers.ListField(child=serializers.CharField(),
                                    help_text="Codes of the offices the account reviews today (own or delegated).")
    registration_number = serializers.CharField(allow_null=True, help_text="The student record linked, if any.")
    second_factor = serializers.BooleanField(help_text="An authenticator app is set up.")
    via = serializers.ChoiceField(choices=["token", "api_key"], help_text="How this request was authenticated.")


class _SignIn(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []          # a stale Authorization header must not stop a sign-in
    throttle_classes = [SignInThrottle]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'     # wrong credentials are a 401 (DRF says 403 without a header)


class TokenView(_SignIn):
    """POST email + password (+ otp) → an access and a refresh token."""

    @extend_schema(tags=["auth"], request=TokenRequest, responses={
        200: TokenPair,
        401: OpenApiResponse(ErrorSerializer, description="Wrong email or password, or a disabled account."),
        403: OpenApiResponse(ErrorSerializer, description="A second factor is needed and not set up yet."),
        429: OpenApiResponse(ErrorSerializer, description="Locked after too many failed sign-ins, or too many "
                                                          "requests: `detail` says when to try again.")},
        summary="Sign in: email and password for tokens")
    def post(self, request):
        data = TokenRequest(data=request.data)
        data.is_valid(raise_exception=True)
        email, password = data.validated_data["email"].lower(), data.validated_data["password"]
        django_request = request._request        # axes marks the request the middleware sees
        user = authenticate(django_request, username=email, password=password)
        if user is None:
            if getattr(django_request, "axes_locked_out", False):
                raise Locked(django_request)
            raise exceptions.AuthenticationFailed(WRONG_CREDENTIALS)
        if second_factor_required(user):
            if not signin_services.has_second_factor(user):
                raise exceptions.PermissionDenied(OTP_NOT_SET_UP.format(sites=_sites_of(user)))
            code = data.validated_data.get("otp") or ""
            if not code.strip():
                raise exceptions.ValidationError({"otp": [OTP_NEEDED]})
            result = signin_services.second_factor_verify(user=user, token=code)
            if result.device is None:
                raise exceptions.ValidationError({"otp": [result.error]})
        # what a site's sign-in does: axes forgets the failed attempts, last_login is set
        user_logged_in.send(sender=type(user), request=django_request, user=user)
        return Response(_tokens(user))


class RefreshView(_SignIn):
    """POST a refresh token → a new access token and a new refresh token (the old one is spent)."""

    @extend_schema(tags=["auth"], request=RefreshRequest, responses={
        200: TokenPair,
        401: OpenApiResponse(ErrorSerializer, description="The refresh token is expired, tampered with, used "
                                                          "already or signed out, or its account is disabled.")},
        summary="New tokens for a refresh token")
    def post(self, request):
        data = RefreshRequest(data=request.data)
        data.is_valid(raise_exception=True)
        refresh = _valid_refresh(data.validated_data["refresh"])
        user = _user_of(refresh)
        refresh.blacklist()                     # rotation: this refresh token is spent
        return Response(_tokens(user))


def _valid_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)              # signature, expiry, and not blacklisted
    except TokenError as exc:
        raise InvalidToken({"detail": str(exc)})


def _user_of(refresh: RefreshToken):
    user = get_user_model().objects.filter(pk=refresh.payload.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None or not user.is_active:
        raise exceptions.AuthenticationFailed("This account no longer signs in.")
    if (jwt_settings.CHECK_REVOKE_TOKEN and refresh.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM)
            != get_md5_hash_password(user.password)):
        raise exceptions.AuthenticationFailed("The password has changed since this token was issued; sign in again.")
    return user


class LogoutView(APIView):
    """POST the refresh token → it is blacklisted; the access token runs out by itself (minutes)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["auth"], request=LogoutRequest, responses={204: None}, summary="Sign out")
    def post(self, request):
        data = LogoutRequest(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            refresh = RefreshToken(data.validated_data["refresh"])
        except TokenError:
            raise exceptions.ValidationError({"refresh": ["This refresh token is expired, invalid or already "
                                                          "signed out."]})
        if str(refresh.payload.get(jwt_settings.USER_ID_CLAIM)) != str(request.user.pk):
            raise exceptions.ValidationError({"refresh": ["This refresh token is not yours."]})
        refresh.blacklist()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The signed-in account (or the account an API key acts as): profile and roles."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["auth"], responses=Me, summary="Who am I")
    def get(self, request):
        user = request.user
        student = student_of(user)
        return Response(Me({
            "id": user.pk, "email": user.email, "full_name": user.full_name,
            "roles": sorted(permissions.roles_of(user)),
            "offices": sorted(permissions.review_scope(user).department_codes)
            if not user.is_superuser else [],
            "registration_number": student.registration_number if student else None,
            "second_factor": signin_services.has_second_factor(user),
            "via": "api_key" if is_key(request) else "token",
        }).data)


urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("token/refresh/", RefreshView.as_view(), name="token_refresh"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("me/", MeView.as_view(), name="me"),
]
