"""Uploaded evidence files: accepted by what they contain, not by what they are called.

A clerk attaches a scanned letter or a photo of a receipt to a decision. Only PDF, PNG and JPEG
are accepted, recognised by their first bytes (the name and the browser's content type are the
uploader's word, not the file's), up to `EVIDENCE_MAX_BYTES`. An HTML page or a program renamed
to `.pdf` is refused with a message that says what the file really is, as far as we can tell.
"""
from __future__ import annotations

import os

from django.core.exceptions import ValidationError

EVIDENCE_MAX_BYTES = 5 * 1024 * 1024

# kind → (magic prefixes, extensions that may carry it)
EVIDENCE_KINDS: dict[str, tuple[tuple[bytes, ...], tuple[str, ...]]] = {
    "PDF document": ((b"%PDF-",), (".pdf",)),
    "PNG image": ((b"\x89PNG\r\n\x1a\n",), (".png",)),
    "JPEG image": ((b"\xff\xd8\xff",), (".jpg", ".jpeg")),
}
ALLOWED_EXTENSIONS = tuple(ext for _, exts in EVIDENCE_KINDS.values() for ext in exts)

# What a refused file most likely is, to say so in the message.
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
    for magic, what in _KNOWN_OTHERS:
        if stripped[:len(magic)].lower() == magic.lower():
            return what
    return "not a PDF, PNG or JPEG file"


def validate_evidence(upload) -> str:
    """Refuse anything but a real PDF, PNG or JPEG of at most 5 MB whose name matches its content.
    Returns the kind found (e.g. "PDF document")."""
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
            "%(name)s is %(size).1f MB; evidence may be at most %(max)d MB.",
            params={"name": name, "size": size / 1024 / 1024, "max": EVIDENCE_MAX_BYTES // 1024 // 1024},
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
