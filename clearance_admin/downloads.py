"""Stored files reach people only here: one download view per site, behind the site's own gate
(`RoleSite.admin_view`: anonymous → login, another role → refused) and the object's rule in
core/permissions.py (`may_download`, with the site's role). An object the user may not see is a 404,
whether or not it exists, so ids reveal nothing.

The file is streamed from whatever storage holds it (a local folder or an S3 bucket), as an
attachment, with the content type its first bytes show (never the uploader's), `nosniff` and a
sandboxing CSP, so even a file stored before the checks existed cannot run in the app's origin.
"""
from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from core import files, permissions
from core.certificates_pdf import certificate_filename, certificate_pdf
from core.models import (BalanceImport, ClearanceApproval, ExportFile, HoldImport, Payment, StatementReconciliation,
                         StudentImport)
from core.selectors.clearance import certificate_for_document

SANDBOX_CSP = "sandbox; default-src 'none'"

# kind in the URL → (model, file field, display-name field, content type from the head, default name)
KINDS = {
    "evidence": (ClearanceApproval, "evidence", "evidence_name", files.document_type, "evidence"),
    # the file a student sent with a re-submission (permissions.may_download_response_file)
    "response": (ClearanceApproval, "response_file", "response_file_name", files.document_type, "response"),
    "receipt": (Payment, "receipt", "receipt_name", files.document_type, "receipt"),
    "import": (BalanceImport, "file", "original_name", files.spreadsheet_type, "balances"),
    "hold-import": (HoldImport, "file", "original_name", files.spreadsheet_type, "holds"),
    "student-import": (StudentImport, "file", "original_name", files.spreadsheet_type, "graduands"),
    "export": (ExportFile, "file", "file_name", files.spreadsheet_type, "export"),
    "statement": (StatementReconciliation, "file", "original_name", files.spreadsheet_type, "statement"),
}
# the first kind of each model is its main file ("evidence" for an approval)
KIND_OF = {}
for _kind, (_model, *_) in KINDS.items():
    KIND_OF.setdefault(_model, _kind)
SELECT_RELATED = {"evidence": ("request__student",), "response": ("request__student",), "receipt": ("student",), "import": (), "hold-import": (),
                  "student-import": (), "export": (), "statement": ()}


def download_view(request, kind: str, pk: int, *, site):
    """GET the stored file of object `pk` of `kind`, if the site's role may have it; 404 otherwise."""
    if kind not in KINDS:
        raise Http404("No such file.")
    model, field, name_field, content_type_of, default = KINDS[kind]
    obj = model._default_manager.select_related(*SELECT_RELATED[kind]).filter(pk=pk).first()
    stored = getattr(obj, field, None) if obj is not None else None
    if not stored or not permissions.may_download(request.user, obj, as_role=site.role, field=field):
        raise Http404("No such file.")
    try:
        handle = stored.storage.open(stored.name, "rb")
        head = handle.read(2048)
        handle.seek(0)
    except OSError:             # FileNotFoundError locally and from django-storages' S3 backend
        raise Http404("The file is no longer stored.")
    content_type, extensions = content_type_of(head)
    name = files.download_name(getattr(obj, name_field, "") or stored.name, default=f"{default}-{obj.pk}",
                               extensions=extensions)
    return protect(FileResponse(handle, as_attachment=True, filename=name, content_type=content_type))


def certificate_view(request, pk: int, *, site):
    """GET the PDF of certificate `pk`, made now from the database, if the site's role may have it
    (`permissions.may_download_certificate`); 404 otherwise, whether or not it exists."""
    document = certificate_for_document(pk)
    if document is None or not permissions.may_download_certificate(request.user, document.certificate,
                                                                    as_role=site.role):
        raise Http404("No such certificate.")
    response = HttpResponse(certificate_pdf(document), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{certificate_filename(document.certificate)}"'
    return protect(response)


def certificate_url(site_name: str, certificate) -> str | None:
    """The site's download URL of a certificate's PDF (None on a site without one)."""
    try:
        return reverse(f"{site_name}:certificate_pdf", args=[certificate.pk])
    except NoReverseMatch:
        return None


def protect(response):
    """Headers every stored or generated file is served with: the browser must not guess a type,
    and whatever it shows runs sandboxed, with nothing allowed."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX_CSP
    response["Cache-Control"] = "private, no-store"
    return response


def file_url(site_name: str, obj, kind: str | None = None) -> str | None:
    """The site's download URL of `obj`'s stored file of `kind` (its main file by default; None
    when there is none)."""
    kind = kind or KIND_OF.get(type(obj))
    if kind not in KINDS or not isinstance(obj, KINDS[kind][0]) or not getattr(obj, KINDS[kind][1], None):
        return None
    try:
        return reverse(f"{site_name}:file_download", args=[kind, obj.pk])
    except NoReverseMatch:
        return None


def display_name(obj, kind: str | None = None) -> str:
    kind = kind or KIND_OF[type(obj)]
    _, field, name_field, _, default = KINDS[kind]
    return getattr(obj, name_field, "") or files.original_name(getattr(obj, field), default)


def file_link(site_name: str, obj, empty: str = "—", kind: str | None = None):
    """A link to `obj`'s stored file (of `kind`) through the site's download view, named as uploaded."""
    url = file_url(site_name, obj, kind)
    if url is None:
        return empty
    return format_html('<a class="text-primary-600 underline" href="{}" download>{}</a>', url,
                       display_name(obj, kind))
