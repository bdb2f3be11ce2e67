"""Evidence and receipts are accepted by what they contain; every stored file gets a name nobody can
guess; downloads are named and typed by what the bytes are (core/files.py)."""
from __future__ import annotations

import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from core.files import (EVIDENCE_MAX_BYTES, ODS_TYPE, XLSX_TYPE, StoredName, document_type, download_name,
                        evidence_name, import_name, receipt_name, sniff_kind, spreadsheet_type, validate_evidence,
                        validate_receipt)

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


# --- receipts ------------------------------------------------------------------------------------

HTML = b"<!DOCTYPE html><html><body><script>fetch('/admin/core/user/1/change/')</script></body></html>"
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
       b'<script>alert(document.cookie)</script></svg>')


@pytest.mark.parametrize("name, content, what", [
    ("receipt.html", HTML, "receipt.html is a web page or XML"),
    ("receipt.pdf", HTML, "receipt.pdf is a web page or XML"),
    ("receipt.svg", SVG, "receipt.svg is an SVG image"),
    ("receipt.png", b"<svg onload='x'/>", "receipt.png is an SVG image"),
])
def test_a_web_page_or_svg_receipt_is_refused_naming_the_file_and_what_it_is(name, content, what):
    with pytest.raises(ValidationError) as exc:
        validate_receipt(SimpleUploadedFile(name, content, content_type="image/png"))
    assert what in " ".join(exc.value.messages)
    assert "Attach a PDF, PNG or JPEG file" in " ".join(exc.value.messages)
    assert exc.value.error_list[0].code == "bad_content"


def test_a_receipt_is_checked_like_evidence():
    assert validate_receipt(upload("mpesa.jpg", JPEG)) == "JPEG image"
    with pytest.raises(ValidationError, match=r"is 6\.0 MB; a receipt may be at most 5 MB"):
        validate_receipt(upload("big.pdf", PDF + b"0" * (6 * 1024 * 1024 - len(PDF))))
    with pytest.raises(ValidationError, match="named .pdf but is a PNG image"):
        validate_receipt(upload("scan.pdf", PNG))


# --- stored names --------------------------------------------------------------------------------

@pytest.mark.parametrize("stored_name, folder", [(evidence_name, "evidence"), (receipt_name, "receipts"),
                                                 (import_name, "imports")])
def test_stored_names_are_random_and_say_nothing_of_the_upload(stored_name, folder):
    names = {stored_name(None, "Kamau Mwangi receipt.pdf" if folder != "imports" else "fees 2026.xlsx")
             for _ in range(50)}
    assert len(names) == 50                                 # never the same twice
    for name in names:
        token = re.fullmatch(rf"{folder}/([A-Za-z0-9_-]{{22}})(\.pdf|\.xlsx)", name)
        assert token, name                                  # no date folder, no uploader's name
        assert "Kamau" not in name and "fees" not in name and "2026" not in name.split("/")[0]


def test_a_stored_name_keeps_only_an_allowed_extension():
    assert evidence_name(None, "photo.JPEG").endswith(".jpeg")
    assert re.fullmatch(r"evidence/[A-Za-z0-9_-]{22}", evidence_name(None, "page.html"))
    assert re.fullmatch(r"imports/[A-Za-z0-9_-]{22}\.csv", import_name(None, "../../etc/x.csv"))
    assert StoredName("evidence", (".pdf",)) == StoredName("evidence", (".pdf",))    # migrations see no change


# --- download names and types --------------------------------------------------------------------

@pytest.mark.parametrize("name, extensions, expected", [
    ("letter.pdf", (".pdf",), "letter.pdf"),
    ("photo.jpeg", (".jpg", ".jpeg"), "photo.jpeg"),
    ('x"; filename="evil.html', (".pdf",), "x_ filename=_evil.html.pdf"),
    ("../../etc/passwd", (".pdf",), "passwd.pdf"),
    ("C:\\Users\\me\\scan.png", (".png",), "scan.png"),
    ("receipt.html", (), "receipt"),                       # bytes of unknown kind never arrive as .html
    ("line\r\nSet-Cookie: a=b.pdf", (".pdf",), "line_Set-Cookie_ a=b.pdf"),
    ("", (".pdf",), "evidence-7.pdf"),
])
def test_download_names_are_safe(name, extensions, expected):
    assert download_name(name, default="evidence-7", extensions=extensions) == expected


def test_download_names_are_not_too_long():
    assert len(download_name("a" * 300 + ".pdf", default="x", extensions=(".pdf",))) == 120


def test_types_come_from_the_bytes():
    assert document_type(PDF) == ("application/pdf", (".pdf",))
    assert document_type(JPEG)[0] == "image/jpeg"
    assert document_type(HTML) == ("application/octet-stream", ())   # e.g. stored before the checks
    assert spreadsheet_type(b"PK\x03\x04" + b"\x00" * 26 + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet")[0] \
        == ODS_TYPE
    assert spreadsheet_type(b"PK\x03\x04rest")[0] == XLSX_TYPE
    assert spreadsheet_type(b"Reg No,Balance\r\nSCE/1,100\r\n")[0] == "text/csv"
    assert spreadsheet_type(b"<html><script>")[0] == "application/octet-stream"
