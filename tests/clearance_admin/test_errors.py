"""A 403 or 404 inside a role site is that site's page, with the reason and a way back; outside the
sites, or for someone not signed in there, Django's plain page."""
from __future__ import annotations

from core import permissions
from tests.conftest import _with_role, approval_of


def test_another_offices_item_by_url_is_refused_inside_the_site(client, make_reviewer, clearance):
    clerk = _with_role(make_reviewer("LIB", is_staff=True), permissions.STAFF)
    client.force_login(clerk)
    theirs = approval_of(clearance, "SPT")
    response = client.get(f"/staff/core/clearanceapproval/{theirs.pk}/change/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="refused"' in html and "Clearance queue" in html          # the site's layout, its sidebar
    assert 'href="/staff/"' in html
    reason = html.split('id="refused-reason">', 1)[1].split("</p>", 1)[0]
    assert reason.strip() and "403 Forbidden" not in html


def test_a_missing_page_inside_a_site_is_shown_there(client, registry_user):
    client.force_login(registry_user)
    response = client.get("/registry/files/receipt/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="refused"' in html and "No such file." in html and 'href="/registry/"' in html
    typed = client.get("/registry/no/such/page/")
    assert typed.status_code in (302, 404)


def test_outside_the_sites_or_signed_out_the_page_says_nothing_of_the_site(client, db):
    response = client.get("/nowhere/")
    assert response.status_code == 404 and 'id="refused"' not in response.content.decode()
    signed_out = client.get("/staff/files/receipt/1/")
    assert signed_out.status_code == 302                                 # to the site's sign-in
