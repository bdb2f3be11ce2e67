"""No input, however odd, answers 5xx: every changelist of every site with junk in each of its
filter parameters, junk selections posted to its actions, and every history URL with a junk id."""
from __future__ import annotations

import pytest
from django.contrib.admin import SimpleListFilter
from django.urls import reverse

from clearance_admin.sites import finance_site, registry_site, staff_site, student_site, superuser_site
from core import permissions

pytestmark = pytest.mark.django_db

JUNK = ["²", "99999999999999999999", "abc", "-1", "1.5", "' OR 1=1 --", "", "\x00"]


def _parameters(model_admin, request):
    names = []
    for item in model_admin.get_list_filter(request):
        spec = item[1] if isinstance(item, (list, tuple)) else item
        field = item[0] if isinstance(item, (list, tuple)) else item
        if isinstance(spec, type) and issubclass(spec, SimpleListFilter):
            names.append(spec.parameter_name)
        elif isinstance(field, str):
            names += [f"{field}__exact", f"{field}__id__exact", field]
    return names


@pytest.fixture
def users(superuser, registry_user, finance_user, lib_reviewer, student):
    return {"admin": superuser, "registry": registry_user, "finance": finance_user, "staff": lib_reviewer,
            "student": student.user}


SITES = [("staff", staff_site), ("finance", finance_site), ("registry", registry_site), ("student", student_site),
         ("admin", superuser_site)]


@pytest.mark.parametrize("name, site", SITES, ids=[n for n, _ in SITES])
def test_junk_never_answers_5xx(client, users, clearance, name, site, rf):
    client.force_login(users[name])
    client.raise_request_exception = False      # a 500 is an answer to record, not an exception
    import clearance_admin.urls  # noqa: F401  (the sites' modules register their admins on import)
    failures, walked = [], 0
    for model, model_admin in site._registry.items():
        opts = model._meta
        try:
            url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_changelist")
        except Exception:
            continue
        walked += 1
        request = rf.get(url)
        request.user = users[name]
        for param in _parameters(model_admin, request) + ["q", "o", "p"]:
            for junk in JUNK:
                response = client.get(url, {param: junk})
                if response.status_code >= 500:
                    failures.append(f"GET {url}?{param}={junk!r}: {response.status_code}")
        for action in list(model_admin.get_actions(request))[:6]:
            for junk in JUNK[:4]:
                response = client.post(url, {"action": action, "_selected_action": [junk], "index": "0"})
                if response.status_code >= 500:
                    failures.append(f"POST {url} {action} _selected_action={junk!r}: {response.status_code}")
        for junk in ("abc", "99999999999999999999", "²"):
            response = client.get(f"{url}{junk}/history/")
            if response.status_code >= 500:
                failures.append(f"GET {url}{junk}/history/: {response.status_code}")
            response = client.get(f"{url}{junk}/change/")
            if response.status_code >= 500:
                failures.append(f"GET {url}{junk}/change/: {response.status_code}")
    assert walked >= 1, f"no list walked on {name}"
    assert not failures, "\n".join(failures)


def test_a_value_no_page_offers_gets_a_400_that_says_so(client, lib_reviewer, clearance):
    client.force_login(lib_reviewer)
    for url in ("/staff/core/clearanceapproval/abc/history/", "/staff/core/hold/²/history/"):
        response = client.get(url)
        assert response.status_code == 400
        body = response.content.decode()
        assert "That address cannot be used" in body and "Nothing was changed" in body
        assert 'href="/staff/"' in body


@pytest.mark.parametrize("value, parsed", [("12", 12), ("²", None), ("١٢", None), ("-1", None), ("1.5", None),
                                           ("9" * 19, None), ("9" * 18, 10 ** 18 - 1), ("", None), (None, None)])
def test_ids_from_urls_are_ascii_digits_a_database_can_hold(value, parsed):
    from clearance_admin.filters import parse_id
    assert parse_id(value) == parsed


def test_a_unicode_digit_in_a_filter_is_ignored_not_a_400(client, lib_reviewer, clearance):
    client.force_login(lib_reviewer)
    for param in ("school", "programme", "cohort", "department", "stage"):
        assert client.get("/staff/core/clearanceapproval/", {param: "²"}).status_code == 200, param


@pytest.mark.parametrize("name, site", SITES, ids=[n for n, _ in SITES])
def test_autocomplete_with_junk_never_answers_5xx(client, users, clearance, name, site):
    """Every autocomplete field of every site, with junk in each of the view's parameters."""
    client.force_login(users[name])
    client.raise_request_exception = False
    import clearance_admin.urls  # noqa: F401
    failures = []
    url = reverse(f"{site.name}:autocomplete")
    fields = [(model, field) for model, model_admin in site._registry.items()
              for field in model_admin.autocomplete_fields]
    base = [{"app_label": m._meta.app_label, "model_name": m._meta.model_name, "field_name": f} for m, f in fields]
    base += [{"app_label": "core", "model_name": "nope", "field_name": "x"}, {}]
    for params in base:
        for junk in JUNK:
            for extra in ({"term": junk}, {"page": junk}, {"field_name": junk}, {"model_name": junk}):
                response = client.get(url, {**params, **extra})
                if response.status_code >= 500:
                    failures.append(f"GET {url}?{params | extra}: {response.status_code}")
    assert not failures, "\n".join(failures)
