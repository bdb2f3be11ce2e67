"""The certificate PDF (core/certificates_pdf.py): what it prints, read back with pypdf, and its QR
code decoded with zxing-cpp from the image embedded in the file."""
from __future__ import annotations

import io

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
import zxingcpp
from pypdf import PdfReader

from core.certificates_pdf import certificate_pdf, verify_url
from core.selectors.clearance import certificate_for_document
from core.services.approvals import approvals_waive
from core.services.certificates import certificate_issue
from core.services.requests import request_revoke
from tests.conftest import approval_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(clearance, complete_request, registry_user, superuser, settings):
    settings.PUBLIC_URL = "https://clearance.example.ac.ke"
    settings.UNIVERSITY_NAME = "Kilimanjaro University of Technology"
    approvals_waive(approval_ids=[approval_of(clearance, "SPT").pk], acting_user=superuser,
                    reason="No sports kit issued").raise_if_refused()
    return certificate_issue(request=complete_request(clearance), acting_user=registry_user)


def _pdf(certificate) -> PdfReader:
    return PdfReader(io.BytesIO(certificate_pdf(certificate_for_document(certificate.pk))))


def _text(reader: PdfReader) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_the_pdf_prints_the_student_the_code_and_every_offices_decision(issued, student, superuser):
    reader = _pdf(issued)
    text = _text(reader)
    assert len(reader.pages) == 1
    assert "Kilimanjaro University of Technology" in text
    assert student.full_name in text and student.registration_number in text
    assert student.programme.name in text and f"cohort {student.expected_graduation_year}" in text
    assert issued.code in text
    assert "https://clearance.example.ac.ke/verify/" in text
    for code in ("FIN", "LIB", "SCH", "SPT", "GOWN", "REG"):
        assert f"({code})" in text
    assert "Waived" in text and "Approved" in text and str(superuser) in text
    assert "HOS" not in text  # the student lives out: no hostel office on their clearance
    assert "REVOKED" not in text


def test_the_qr_code_decodes_to_the_verify_url(issued):
    page = _pdf(issued).pages[0]
    decoded = [r.text for image in page.images for r in zxingcpp.read_barcodes(image.image.convert("L"))
               if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert decoded == [f"https://clearance.example.ac.ke/verify/{issued.code}/"]
    assert decoded[0] == verify_url(issued.code)


# revoked late in the evening UTC: already the next day in Nairobi, the date people read
@time_machine.travel(dt.datetime(2026, 12, 4, 22, 30, tzinfo=dt.timezone.utc), tick=True)
def test_a_revoked_certificate_is_stamped_revoked_with_the_date(issued, clearance, registry_user):
    request_revoke(request=clearance, acting_user=registry_user, reason="Fee found unpaid")
    issued.refresh_from_db()
    text = _text(_pdf(issued))
    assert "REVOKED" in text and f"on {timezone.localtime(issued.revoked_at):%d %b %Y}" in text
    assert "Fee found unpaid" not in text  # the reason stays with the registry


def test_names_beyond_latin_1_print_as_written(issued, student):
    student.first_name, student.last_name = "Wanjirũ", "Łukasz-Ōtieno"
    student.save()
    assert "Wanjirũ Łukasz-Ōtieno" in _text(_pdf(issued))


def test_the_crest_is_the_configured_image(issued, settings, tmp_path):
    from PIL import Image
    crest = tmp_path / "crest.png"
    Image.new("RGB", (50, 80), (200, 30, 30)).save(crest)
    settings.CERTIFICATE_CREST = crest
    sizes = {(image.image.width, image.image.height) for image in _pdf(issued).pages[0].images}
    assert (50, 80) in sizes
