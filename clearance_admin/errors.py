"""A refusal (403) or a page that is not there (404) inside a role site is shown in that site's
layout, with the reason and a way back — never a bare page. Outside the sites, or for someone who
is not signed in to that site, Django's plain page (nothing about the site is shown to them)."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import defaults

DEFAULT_REASONS = {403: "This is not for your role, or not in your offices.", 404: "There is nothing here."}
TITLES = {403: "You cannot open this", 404: "Not found"}


def _site_of(request):
    from .sites import SITES
    first = request.path.lstrip("/").split("/", 1)[0]
    site = SITES.get(first)
    if site is None or not site.has_permission(request):
        return None
    return site


def _reason(exception, status: int) -> str:
    text = str(exception or "").strip() if exception is not None else ""
    # a URL that resolves to nothing carries Django's resolver details, not a reason for a person
    if not text or text.startswith("{") or "path" in text and "tried" in text:
        return DEFAULT_REASONS[status]
    return text


def _in_site(request, exception, status: int, fallback):
    try:
        site = _site_of(request)
    except Exception:
        site = None
    if site is None:
        return fallback()
    request.current_app = site.name
    response = TemplateResponse(request, "admin/refused.html", {
        **site.each_context(request), "title": TITLES[status], "reason": _reason(exception, status),
        "index_url": reverse(f"{site.name}:index")}, status=status)
    response.render()
    return response


def _api(request) -> bool:
    return request.path.startswith("/api/")


def permission_denied(request, exception=None):
    if _api(request):
        from clearance_api.errors import json_error
        return json_error(request, 403, DEFAULT_REASONS[403])
    return _in_site(request, exception, 403,
                    lambda: defaults.permission_denied(request, exception or PermissionDenied()))


def page_not_found(request, exception=None):
    if _api(request):        # an /api/ address that matches nothing: the API's error shape, not a page
        from clearance_api.errors import json_error
        return json_error(request, 404, "There is no such API endpoint; see /api/docs/.")
    return _in_site(request, exception, 404, lambda: defaults.page_not_found(request, exception))



def server_error(request):
    if _api(request):
        from clearance_api.errors import json_error
        return json_error(request, 500, "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)
