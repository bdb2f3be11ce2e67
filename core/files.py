"""Uploaded files: accepted by what they contain, stored under names nobody can guess.

A clerk attaches a scanned letter or a photo to a decision; a finance officer attaches a payment
receipt. Only PDF, PNG and JPEG are accepted, recognised by their first bytes (the name and the
browser's content type are the uploader's word, not the file's), up to `EVIDENCE_MAX_BYTES`. An
HTML page, an SVG image or a program renamed to `.pdf` is refused with a message that says what the
file really is, as far as we can tell.

Every stored file (evidence, students' response files, receipts, balance import files, M-PESA statements) gets a storage name made of its folder
and a random token (`StoredName`): nothing about the uploader's name, the date or the order of
uploads is in it. The uploader's name is kept in a field of the model, for the page and as the
download name (`download_name`), never as a path.
"""
from __future__ import annotations

import os
import re
import secrets
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

EVIDENCE_MAX_BYTES = 5 * 1024 * 1024

# kind → (magic prefixes, extensions that may carry it)
EVIDENCE_KINDS: dict[str, tuple[tuple[bytes, ...], tuple[str, ...]]] = {
    "PDF document": ((b"%PDF-",), (".pdf",)),
    "PNG image": ((b"\x89PNG\r\n\x1a\n",), (".png",)),
    "JPEG image": ((b"\xff\xd8\xff",), (".jpg", ".jpeg")),
}
ALLOWED_EXTENSIONS = tuple(ext for _, exts in EVIDENCE_KINDS.values() for ext in exts)
CONTENT_TYPES = {"PDF document": "application/pdf", "PNG image": "image/png", "JPEG image": "image/jpeg"}
OCTET_STREAM = "application/octet-stream"

SPREADSHEET_EXTENSIONS = (".xlsx", ".xls", ".ods", ".csv")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODS_TYPE = "application/vnd.oasis.opendocument.spreadsheet"
XLS_TYPE = "application/vnd.ms-excel"

# What a refused file most likely is, to say so in the message (the first match wins).
_KNOWN_OTHERS: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"PK\x03\x04", "a ZIP archive or an Office document"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"<", "a web page or XML"),
    (b"#!", "a script"),
)


def _head(upload, size: int = 2048) -> bytes:
    pos = upload.tell() if hasattr(upload, "tell") else 0
    upload.seek(0)
    head = upload.read(size) or b""
    upload.seek(pos)
    return head if isinstance(head, bytes) else head.encode()


def sniff_kind(head: bytes) -> str | None:
    """The evidence kind these first bytes belong to, or None."""
    for kind, (magics, _) in EVIDENCE_KINDS.items():
        if any(head.startswith(m) for m in magics):
            return kind
    return None


def _describe_other(head: bytes) -> str:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] == b"<" and b"<svg" in head.lower():
        # an SVG is a web page as far as a browser is concerned: it runs its scripts
        return "an SVG image (a web page or XML, which can carry scripts)"
    for magic, what in _KNOWN_OTHERS:
        if stripped[:len(magic)].lower() == magic.lower():
            return what
    return "not a PDF, PNG or JPEG file"


def validate_document(upload, *, what: str = "evidence") -> str:
    """Refuse anything but a real PDF, PNG or JPEG of at most 5 MB whose name matches its content.
    `what` names the file in the size message ("evidence", "a receipt"). Returns the kind found
    (e.g. "PDF document")."""
    name = getattr(upload, "name", "") or "the file"
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, os.SEEK_END)
        size = upload.tell()
        upload.seek(0)
    if size == 0:
        raise ValidationError("%(name)s is empty.", params={"name": name}, code="empty")
    if size > EVIDENCE_MAX_BYTES:
        raise ValidationError(
            "%(name)s is %(size).1f MB; %(what)s may be at most %(max)d MB.",
            params={"name": name, "size": size / 1024 / 1024, "what": what,
                    "max": EVIDENCE_MAX_BYTES // 1024 // 1024},
            code="too_large")
    head = _head(upload)
    kind = sniff_kind(head)
    if kind is None:
        raise ValidationError(
            "%(name)s is %(what)s. Attach a PDF, PNG or JPEG file.",
            params={"name": name, "what": _describe_other(head)}, code="bad_content")
    ext = os.path.splitext(name)[1].lower()
    if ext not in EVIDENCE_KINDS[kind][1]:
        raise ValidationError(
            "%(name)s is named %(ext)s but is a %(kind)s; rename it to %(right)s or attach the right file.",
            params={"name": name, "ext": ext or "without an extension", "kind": kind,
                    "right": EVIDENCE_KINDS[kind][1][0]}, code="name_mismatch")
    return kind


def validate_evidence(upload) -> str:
    """An office's evidence: see validate_document."""
    return validate_document(upload, what="evidence")


def validate_response_file(upload) -> str:
    """The file a student sends with a re-submission: checked exactly like evidence."""
    return validate_document(upload, what="the file you send")


def validate_receipt(upload) -> str:
    """A payment receipt: checked exactly like evidence (see validate_document)."""
    return validate_document(upload, what="a receipt")


# --- stored names -------------------------------------------------------------------------------

@deconstructible
class StoredName:
    """`upload_to` of every stored file: `<folder>/<22 random characters><ext>`. The extension is
    kept only when it is one the folder's check allows (the checks make it match the content), so
    the name says nothing an attacker could guess: not the uploader's name, not the date."""

    def __init__(self, folder: str, extensions: tuple[str, ...] = ()):
        self.folder = folder
        self.extensions = tuple(extensions)

    def __call__(self, instance, filename: str) -> str:
        ext = os.path.splitext(filename or "")[1].lower()
        return f"{self.folder}/{secrets.token_urlsafe(16)}{ext if ext in self.extensions else ''}"

    def __eq__(self, other):
        return isinstance(other, StoredName) and (self.folder, self.extensions) == (other.folder, other.extensions)

    def __hash__(self):
        return hash((self.folder, self.extensions))


evidence_name = StoredName("evidence", ALLOWED_EXTENSIONS)
receipt_name = StoredName("receipts", ALLOWED_EXTENSIONS)
response_name = StoredName("responses", ALLOWED_EXTENSIONS)
import_name = StoredName("imports", SPREADSHEET_EXTENSIONS)
export_name = StoredName("exports", (".xlsx", ".csv"))
statement_name = StoredName("statements", (".csv",))


def original_name(upload, default: str = "") -> str:
    """The uploader's file name as a display name: its last path part, at most 255 characters."""
    return os.path.basename((getattr(upload, "name", "") or default).replace("\\", "/"))[-255:]


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


def download_name(name: str, *, default: str, extensions: tuple[str, ...] = ()) -> str:
    """A file name safe to put in Content-Disposition: no path, no control or quoting characters,
    at most 120 characters, ending in one of `extensions` (those of what the content really is; the
    first is added when the name has none of them). No extensions: whatever the name has is dropped,
    so bytes of unknown kind never arrive named `.html`."""
    name = unicodedata.normalize("NFC", os.path.basename((name or "").replace("\\", "/")))
    name = _UNSAFE.sub("_", name).strip(" ._") or default
    stem, current = os.path.splitext(name)
    if current.lower() in extensions:
        ext = current
    else:
        stem, ext = (name if extensions else stem) or default, (extensions[0] if extensions else "")
    return f"{stem[:120 - len(ext)]}{ext}"


# --- content types of what is stored ------------------------------------------------------------

def document_type(head: bytes) -> tuple[str, tuple[str, ...]]:
    """(content type, its extensions) of stored evidence or a receipt, from its first bytes. A file
    stored before the checks existed that is not a PDF, PNG or JPEG is served as bytes."""
    kind = sniff_kind(head)
    if kind is None:
        return OCTET_STREAM, ()
    return CONTENT_TYPES[kind], EVIDENCE_KINDS[kind][1]


def spreadsheet_type(head: bytes) -> tuple[str, tuple[str, ...]]:
    """(content type, its extensions) of a stored balance import file, from its first bytes."""
    if head.startswith(b"PK\x03\x04"):
        if b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet" in head:
            return ODS_TYPE, (".ods",)
        return XLSX_TYPE, (".xlsx",)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return XLS_TYPE, (".xls",)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # cut in the middle of a character, or another encoding: still text if nothing is binary
        text = head.decode("latin-1")
    if "\x00" not in text and not text.lstrip("\ufeff \t\r\n").startswith("<"):
        return "text/csv", (".csv",)
    return OCTET_STREAM, ()
