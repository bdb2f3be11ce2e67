"""Hold imports in /staff/ through the HTTP client: upload → preview → confirm, each office into its
own only (the form, a posted id, a typed URL, the download), and no 5xx on junk."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import Hold, HoldImport
from tests.conftest import messages_of
from tests.factories import student_with_reg

pytestmark = pytest.mark.django_db

URL = "/staff/core/holdimport"
LIST = ("Reg No,Book Title,Fine\nSCE/CS/0001/2022,Calculus,150\nSCE/CS/0001/2022,Physics,\n"
        "SCE/CS/0002/2022,Chemistry,abc\nNOT/A/0000/1999,Lost,10\nTotal,,160\n")


@pytest.fixture
def students(offices):
    return [student_with_reg(f"SCE/CS/{i:04d}/2022") for i in (1, 2)]


@pytest.fixture
def hos_reviewer(make_reviewer):
    return make_reviewer("HOS", email="hos@clearance.test")


def upload(client, office, text=LIST, name="overdue.csv", **extra):
    return client.post(f"{URL}/import/", {"department": office.pk, "file": SimpleUploadedFile(name, text.encode()),
                                          **extra})


def test_upload_preview_confirm_and_the_links_to_the_holds(client, offices, students, lib_reviewer):
    client.force_login(lib_reviewer)
    form = client.get(f"{URL}/import/")
    assert form.status_code == 200
    body = form.content.decode()
    assert "This file is the full list" in body and "Holds placed by hand are never released" in body
    assert f'value="{offices["LIB"].pk}"' in body and f'value="{offices["HOS"].pk}"' not in body
    response = upload(client, offices["LIB"])
    hi = HoldImport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{URL}/{hi.pk}/preview/"
    page = client.get(response["Location"]).content.decode()
    for text in ("To place (2)", "Calculus", "KES 150.00", "Errors (1)", "Fine", "“abc” is not an amount",
                 "Not found (1)", "NOT/A/0000/1999", "Rows skipped (1)", "a total or sub-total",
                 "Skip the 1 row with errors"):
        assert text in page, text
    assert "placed_count" not in page and "not_found" not in page            # plain labels, no field names
    assert not Hold.objects.exists()
    refused = client.post(f"{URL}/{hi.pk}/preview/", {"_confirm": "1"})
    assert "1 row with errors" in " ".join(messages_of(refused))
    assert not Hold.objects.exists()
    done = client.post(f"{URL}/{hi.pk}/preview/", {"_confirm": "1", "skip_errors": "1"})
    assert "Applied Hold import" in " ".join(messages_of(done))
    assert Hold.objects.filter(source=Hold.Source.HOLD_IMPORT, hold_import=hi).count() == 2
    applied = client.get(f"{URL}/{hi.pk}/preview/").content.decode()
    assert f"/staff/core/hold/?hold_import={hi.pk}&amp;status__exact=active" in applied
    holds = client.get(f"/staff/core/hold/?hold_import={hi.pk}&status__exact=active")
    assert holds.status_code == 200 and "Calculus" in holds.content.decode()


def test_full_list_box_reaches_the_service(client, offices, students, lib_reviewer):
    client.force_login(lib_reviewer)
    upload(client, offices["LIB"], full_list="on")
    assert HoldImport.objects.get().full_list is True


@pytest.mark.parametrize("mine, theirs", [("LIB", "HOS"), ("HOS", "LIB")])
def test_each_office_imports_into_its_own_only(client, offices, students, make_reviewer, mine, theirs):
    me, other = make_reviewer(mine), make_reviewer(theirs)
    client.force_login(other)
    upload(client, offices[theirs])
    theirs_import = HoldImport.objects.get()
    client.force_login(me)
    # a posted id of the other office: not one of the choices, nothing stored
    response = upload(client, offices[theirs])
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert HoldImport.objects.count() == 1
    # the other office's import by URL: not in the list, refused on every page and action
    assert f"{URL}/{theirs_import.pk}/" not in client.get(f"{URL}/").content.decode()
    for url in (f"{URL}/{theirs_import.pk}/change/", f"{URL}/{theirs_import.pk}/preview/"):
        assert client.get(url).status_code == 403
    assert client.post(f"{URL}/{theirs_import.pk}/preview/", {"_confirm": "1", "skip_errors": "1"}).status_code == 403
    assert client.post(f"{URL}/{theirs_import.pk}/preview/", {"_cancel": "1"}).status_code == 403
    assert HoldImport.objects.get().status == HoldImport.Status.PREVIEWED and not Hold.objects.exists()
    assert client.get(f"/staff/files/hold-import/{theirs_import.pk}/").status_code == 404
    # their own: listed and downloadable
    client.force_login(other)
    assert f"{URL}/{theirs_import.pk}/" in client.get(f"{URL}/").content.decode()
    download = client.get(f"/staff/files/hold-import/{theirs_import.pk}/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content).startswith(b"Reg No,Book Title")


def test_the_download_is_refused_on_other_sites_and_to_other_roles(client, offices, students, lib_reviewer,
                                                                   finance_user, superuser):
    client.force_login(lib_reviewer)
    upload(client, offices["LIB"])
    hi = HoldImport.objects.get()
    client.force_login(finance_user)          # reviews FIN only, and /finance/ serves no hold lists
    assert client.get(f"/staff/files/hold-import/{hi.pk}/").status_code == 404
    assert client.get(f"/finance/files/hold-import/{hi.pk}/").status_code == 404
    client.force_login(superuser)
    assert client.get(f"/admin/files/hold-import/{hi.pk}/").status_code == 200


def test_a_clerk_of_no_office_may_not_import(client, offices, make_user):
    from core.permissions import STAFF
    client.force_login(make_user(STAFF))
    assert client.get(f"{URL}/import/").status_code == 403


@pytest.mark.parametrize("path", ["/import/", "/abc/preview/", "/999999999999999999999/preview/", "/-1/change/",
                                  "/?status__exact=%00", "/?department=x", "/?hold_import=%F0"])
def test_no_5xx_on_junk(client, offices, lib_reviewer, path):
    client.force_login(lib_reviewer)
    assert client.get(f"{URL}{path}").status_code < 500
    assert client.post(f"{URL}{path}", {"department": "junk", "_confirm": "1"}).status_code < 500
    assert client.get("/staff/core/hold/?hold_import=junk").status_code < 500


@pytest.mark.parametrize("content", [b"", b"\x00\x01binary", b"PK\x03\x04broken zip", "Reg No,Balance\nX,1\n".encode()])
def test_bad_files_are_form_errors(client, offices, lib_reviewer, content):
    client.force_login(lib_reviewer)
    response = client.post(f"{URL}/import/", {"department": offices["LIB"].pk,
                                              "file": SimpleUploadedFile("list.csv", content)})
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode() or "error" in response.content.decode()
    assert not HoldImport.objects.exists()


def test_the_preview_makes_no_query_per_row(client, offices, lib_reviewer, django_assert_max_num_queries):
    students = [student_with_reg(f"SCE/CS/{i:04d}/2022") for i in range(1, 121)]
    text = "Reg No,Title,Fine\n" + "".join(f"{s.registration_number},Book {i},{i}\n" for i, s in enumerate(students))
    client.force_login(lib_reviewer)
    upload(client, offices["LIB"], text=text)
    hi = HoldImport.objects.get()
    assert hi.placed_count == 120
    with django_assert_max_num_queries(20):
        page = client.get(f"{URL}/{hi.pk}/preview/")
    assert page.status_code == 200 and "Book 119" in page.content.decode()
    with django_assert_max_num_queries(25):
        client.get(f"{URL}/")
