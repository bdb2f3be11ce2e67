"""Evidence files are accepted by what they contain (core/files.py)."""
from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from core.files import EVIDENCE_MAX_BYTES, sniff_kind, validate_evidence

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20


def upload(name, content):
    return SimpleUploadedFile(name, content, content_type="application/pdf")


@pytest.mark.parametrize("name, content, kind", [
    ("letter.pdf", PDF, "PDF document"),
    ("LETTER.PDF", PDF, "PDF document"),
    ("receipt.png", PNG, "PNG image"),
    ("photo.jpg", JPEG, "JPEG image"),
    ("photo.jpeg", JPEG, "JPEG image"),
])
def test_real_files_are_accepted(name, content, kind):
    assert validate_evidence(upload(name, content)) == kind


@pytest.mark.parametrize("name, content, message", [
    ("letter.pdf", b"<!DOCTYPE html><html><body>hi</body></html>", "letter.pdf is a web page or XML"),
    ("letter.pdf", b"\xef\xbb\xbf  <html><script>x</script>", "is a web page or XML"),
    ("setup.pdf", b"MZ\x90\x00\x03" + b"\x00" * 60, "setup.pdf is a Windows program"),
    ("run.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 60, "is a Linux program"),
    ("doc.pdf", b"PK\x03\x04" + b"\x00" * 60, "is a ZIP archive or an Office document"),
    ("notes.pdf", b"just some text", "is not a PDF, PNG or JPEG file"),
    ("empty.pdf", b"", "empty.pdf is empty"),
])
def test_disguised_files_are_refused_saying_what_they_are(name, content, message):
    with pytest.raises(ValidationError) as exc:
        validate_evidence(upload(name, content))
    assert message in " ".join(exc.value.messages)


def test_name_must_match_content():
    with pytest.raises(ValidationError, match="named .pdf but is a PNG image; rename it to .png"):
        validate_evidence(upload("receipt.pdf", PNG))
    with pytest.raises(ValidationError, match="named without an extension"):
        validate_evidence(upload("receipt", PDF))


def test_size_limit_is_5_mb():
    assert validate_evidence(upload("max.pdf", PDF + b"0" * (EVIDENCE_MAX_BYTES - len(PDF)))) == "PDF document"
    with pytest.raises(ValidationError, match=r"is 6\.0 MB; evidence may be at most 5 MB"):
        validate_evidence(upload("big.pdf", PDF + b"0" * (6 * 1024 * 1024 - len(PDF))))


def test_reading_the_head_leaves_the_file_where_it_was():
    f = upload("letter.pdf", PDF)
    f.seek(3)
    validate_evidence(f)
    assert f.tell() == 3


def test_a_plain_file_object_without_a_size_works():
    f = io.BytesIO(PNG)
    f.name = "scan.png"
    assert validate_evidence(f) == "PNG image"


def test_sniff_kind():
    assert sniff_kind(PDF) == "PDF document"
    assert sniff_kind(b"GIF89a") is None
