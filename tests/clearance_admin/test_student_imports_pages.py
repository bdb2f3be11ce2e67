"""Graduand imports in /registry/ through the HTTP client: upload → preview → confirm or cancel, the
registry only (finance and staff refused on every page, by posted id and by typed URL, and on the
download), no 5xx on junk, and a preview page whose queries do not grow with the file."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import Student, StudentImport
from tests import factories
from tests.conftest import messages_of

pytestmark = pytest.mark.django_db

URL = "/registry/core/studentimport"
HEAD = "Graduands 2026\nAdm No,Student Name,Programme,School,Cohort,Email\n"
LIST = (HEAD + "SCE/CS/0001/2022,\"Achieng-Otieno, Ann\",BED-ECD,SED,2026,\n"
        "SCE/CS/0009/2022,CHEBET Cy Wambui,BSC-CS,SCE,2026,cy@x.test\n"
        "SCE/CS/0010/2022,Dee Duma,BSC-ASTRO,SCE,2026,\n"
        "SCE/CS/0011/2022,Eve Ekai,BSC-CS,SCE,2026,eve@@x\n"
        "Total,,,,,\n")


@pytest.fixture
def structure(db):
    cs = factories.ProgrammeFactory(code="BSC-CS", name="BSc Computer Science",
                                    academic_department=factories.AcademicDepartmentFactory(
                                        school=factories.SchoolFactory(code="SCE"), code="CS"))
    ecd = factories.ProgrammeFactory(code="BED-ECD", name="BEd Early Childhood",
                                     academic_department=factories.AcademicDepartmentFactory(
                                         school=factories.SchoolFactory(code="SED"), code="ECD"))
    ann = factories.StudentFactory(registration_number="SCE/CS/0001/2022", first_name="Ann", last_name="Achieng",
                                   school=cs.academic_department.school, academic_department=cs.academic_department,
                                   programme=cs, expected_graduation_year=2026)
    return {"cs": cs, "ecd": ecd, "ann": ann}


def upload(client, text=LIST, name="cohort2026.csv"):
    return client.post(f"{URL}/import/", {"file": SimpleUploadedFile(name, text.encode())})


def test_upload_preview_confirm(client, registry_user, structure):
    client.force_login(registry_user)
    index = client.get("/registry/").content.decode()
    assert "Graduand imports" in index and f"{URL}/" in index                    # the sidebar link
    form = client.get(f"{URL}/import/")
    assert form.status_code == 200 and "as the student records system exports it" in form.content.decode()
    response = upload(client)
    si = StudentImport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{URL}/{si.pk}/preview/"
    page = client.get(response["Location"]).content.decode()
    for text in ("New students (1)", "SCE/CS/0009/2022", "Cy Wambui CHEBET", "Changed (1)", "school: SCE → SED",
                 "programme: BSC-CS → BED-ECD", "surname: Achieng → Achieng-Otieno", "Errors (2)",
                 "no programme has the code or name “BSC-ASTRO”", "“eve@@x” is not an email address",
                 "Programme “BSC-ASTRO” — rows 5", "Rows skipped (1)", "a total or sub-total",
                 "Skip the 2 rows with errors"):
        assert text in page, text
    assert "new_count" not in page
    assert Student.objects.count() == 1
    refused = client.post(f"{URL}/{si.pk}/preview/", {"_confirm": "1"})
    assert "2 rows with errors" in " ".join(messages_of(refused))
    assert Student.objects.count() == 1
    done = client.post(f"{URL}/{si.pk}/preview/", {"_confirm": "1", "skip_errors": "1"})
    assert "Applied Graduand import" in " ".join(messages_of(done))
    assert Student.objects.get(registration_number="SCE/CS/0001/2022").school.code == "SED"
    assert Student.objects.get(registration_number="SCE/CS/0009/2022").last_name == "CHEBET"
    listing = client.get(f"{URL}/")
    assert listing.status_code == 200 and "cohort2026.csv" in listing.content.decode()
    detail = client.get(f"{URL}/{si.pk}/change/")
    assert detail.status_code == 200 and f"/registry/files/student-import/{si.pk}/" in detail.content.decode()
    download = client.get(f"/registry/files/student-import/{si.pk}/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content).startswith(b"Graduands 2026")


def test_cancel(client, registry_user, structure):
    client.force_login(registry_user)
    upload(client)
    si = StudentImport.objects.get()
    client.post(f"{URL}/{si.pk}/preview/", {"_cancel": "1"})
    si.refresh_from_db()
    assert si.status == StudentImport.Status.CANCELLED and Student.objects.count() == 1


def test_finance_and_staff_are_refused_everywhere(client, registry_user, finance_user, lib_reviewer, structure):
    client.force_login(registry_user)
    upload(client)
    si = StudentImport.objects.get()
    for user in (finance_user, lib_reviewer):
        client.force_login(user)
        for url in (f"{URL}/", f"{URL}/import/", f"{URL}/{si.pk}/change/", f"{URL}/{si.pk}/preview/"):
            assert client.get(url).status_code in (302, 403), (user, url)
        assert client.post(f"{URL}/{si.pk}/preview/", {"_confirm": "1", "skip_errors": "1"}).status_code in (302, 403)
        assert client.post(f"{URL}/{si.pk}/preview/", {"_cancel": "1"}).status_code in (302, 403)
        assert upload(client).status_code in (302, 403)
        for site in ("registry", "finance", "staff"):
            assert client.get(f"/{site}/files/student-import/{si.pk}/").status_code in (302, 403, 404)
    assert StudentImport.objects.count() == 1
    si.refresh_from_db()
    assert si.status == StudentImport.Status.PREVIEWED and Student.objects.count() == 1


def test_a_registry_user_who_lost_the_role_is_refused_by_the_service(client, registry_user, make_user, structure):
    """Another site's role: the page's own rule, not only the site gate, refuses (here a finance
    officer who is also registry staff without the import right is not possible; a registry user's
    model right removed stands for it)."""
    from django.contrib.auth.models import Permission
    client.force_login(registry_user)
    upload(client)
    si = StudentImport.objects.get()
    registry_user.groups.get().permissions.remove(Permission.objects.get(codename="add_studentimport"))
    assert client.get(f"{URL}/import/").status_code == 403
    assert client.post(f"{URL}/{si.pk}/preview/", {"_confirm": "1", "skip_errors": "1"}).status_code == 403
    assert Student.objects.count() == 1


@pytest.mark.parametrize("path", ["/import/", "/abc/preview/", "/999999999999999999999/preview/", "/-1/change/",
                                  "/?status__exact=%00", "/?q=%F0"])
def test_no_5xx_on_junk(client, registry_user, path):
    client.force_login(registry_user)
    assert client.get(f"{URL}{path}").status_code < 500
    assert client.post(f"{URL}{path}", {"file": "junk", "_confirm": "1"}).status_code < 500
    assert client.get("/registry/files/student-import/abc/").status_code < 500


@pytest.mark.parametrize("content", [b"", b"\x00\x01binary", b"PK\x03\x04broken zip", b"Reg No,Balance\nX,1\n",
                                     b"Reg No,Programme,School,Cohort\nSCE/CS/0001/2022,BSC-CS,SCE,2026\n"])
def test_bad_files_are_form_errors(client, registry_user, content):
    client.force_login(registry_user)
    response = client.post(f"{URL}/import/", {"file": SimpleUploadedFile("list.csv", content)})
    assert response.status_code == 200 and response.context["form"].errors["file"]
    assert not StudentImport.objects.exists()


def test_the_preview_makes_no_query_per_row(client, registry_user, structure, django_assert_num_queries):
    def page_queries(n):
        text = HEAD + "".join(f"SCE/CS/{i:04d}/2022,Name{i} Surname{i},BSC-CS,SCE,2026,\n" for i in range(100, 100 + n))
        upload(client, text=text)
        si = StudentImport.objects.latest("pk")
        assert si.new_count == n
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(f"{URL}/{si.pk}/preview/")
        assert page.status_code == 200 and f"Surname{99 + n}" in page.content.decode()
        return len(ctx.captured_queries)
    client.force_login(registry_user)
    page_queries(2)                                    # warm
    assert page_queries(3) == page_queries(120)


def test_a_stale_preview_is_refused_and_previewed_again(client, registry_user, structure):
    client.force_login(registry_user)
    upload(client)
    si = StudentImport.objects.get()
    ann = structure["ann"]
    ann.first_name = "Annette"
    ann.save()
    refused = client.post(f"{URL}/{si.pk}/preview/", {"_confirm": "1", "skip_errors": "1"})
    assert "changed since the preview" in " ".join(messages_of(refused))
    assert Student.objects.count() == 1
    page = client.get(f"{URL}/{si.pk}/preview/").content.decode()
    assert "Preview again" in page
    again = client.post(f"{URL}/{si.pk}/preview/", {"_preview_again": "1"})
    fresh = StudentImport.objects.latest("pk")
    assert fresh.pk != si.pk and again["Location"] == f"{URL}/{fresh.pk}/preview/"
    assert "other names: Annette → Ann" in client.get(again["Location"]).content.decode()
