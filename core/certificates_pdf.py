"""The clearance certificate as a PDF (reportlab): the university's name and crest, the student,
programme and cohort, every office's decision with who and when, the issue date, the verification
code and a QR code to `<PUBLIC_URL>/verify/<code>/`. A revoked certificate is stamped REVOKED with
the date across the page (only the registry and administrators can still download it).

Text is set in DejaVu Sans when the system has it (Debian's fonts-dejavu-core, which .ci/system-packages
installs) so names such as "Wanjirũ" print as written; otherwise in Helvetica (Latin-1 only). The QR
code is an image of its own in the PDF, so it can be scanned from print or extracted from the file."""
from __future__ import annotations

import io
from pathlib import Path

import qrcode
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, Table, TableStyle

from .selectors.clearance import CertificateDocument

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
NAVY = colors.HexColor("#162e5e")
GREY = colors.HexColor("#4b5563")


def verify_url(code: str) -> str:
    """The public address that checks this code (settings.PUBLIC_URL, no trailing slash)."""
    return settings.PUBLIC_URL + reverse("verify_certificate", args=[code])


def _fonts() -> tuple[str, str]:
    """(regular, bold) font names, registered once."""
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "Helvetica", "Helvetica-Bold"
    if "ClearanceSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("ClearanceSans", str(regular)))
        pdfmetrics.registerFont(TTFont("ClearanceSans-Bold", str(bold)))
    return "ClearanceSans", "ClearanceSans-Bold"


def qr_image(url: str):
    """The QR code of `url` as a greyscale PIL image (error correction M, a 4-module quiet zone)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(url)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("L")


def _decider(approval) -> str:
    if approval.decided_by is not None:
        return str(approval.decided_by)
    if approval.decided_by_import_id:
        return f"Balance import #{approval.decided_by_import_id}"
    return "Clearance system (no hold)" if approval.decided_at else "—"


def _date(value, fmt="%d %b %Y") -> str:
    return f"{timezone.localtime(value):{fmt}}" if value else "—"


def certificate_pdf(document: CertificateDocument) -> bytes:
    """The PDF of one certificate (core.selectors.clearance.certificate_for_document), one A4 page."""
    certificate, decisions = document.certificate, document.decisions
    request = certificate.request
    student = request.student
    regular, bold = _fonts()
    buffer = io.BytesIO()
    width, height = A4
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"Clearance certificate — {student.full_name} ({student.registration_number})")
    pdf.setAuthor(settings.UNIVERSITY_NAME)
    pdf.setSubject(f"Verification code {certificate.code}")

    # border
    pdf.setStrokeColor(NAVY)
    pdf.setLineWidth(2)
    pdf.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)

    # crest, university, title
    top = height - 20 * mm
    crest = ImageReader(str(settings.CERTIFICATE_CREST))
    crest_w, crest_h = crest.getSize()
    shown_h = 30 * mm
    shown_w = shown_h * crest_w / crest_h
    pdf.drawImage(crest, (width - shown_w) / 2, top - shown_h, shown_w, shown_h, mask="auto")
    y = top - shown_h - 9 * mm
    pdf.setFillColor(NAVY)
    _centred(pdf, settings.UNIVERSITY_NAME, bold, 18, y, width)
    y -= 9 * mm
    pdf.setFont(regular, 14)
    pdf.drawCentredString(width / 2, y, "Certificate of Clearance")

    # the student
    y -= 14 * mm
    pdf.setFillColor(colors.black)
    pdf.setFont(regular, 11)
    pdf.drawCentredString(width / 2, y, "This certifies that")
    y -= 10 * mm
    _centred(pdf, student.full_name, bold, 20, y, width)
    y -= 8 * mm
    pdf.setFont(regular, 11)
    lines = [f"Registration number {student.registration_number}",
             f"{student.programme.name} · cohort {student.expected_graduation_year}",
             f"was cleared by every office for {request.get_reason_display().lower()} ({request.cycle.name})"
             + (f" on {_date(request.completed_at)}." if request.completed_at else ".")]
    for line in lines:
        _centred(pdf, line, regular, 11, y, width)
        y -= 6 * mm

    # every office's decision
    cell = ParagraphStyle("cell", fontName=regular, fontSize=9, leading=11)
    head = ParagraphStyle("head", parent=cell, fontName=bold, textColor=colors.white)
    rows = [[Paragraph(t, head) for t in ("Office", "Decision", "By", "On")]]
    rows += [[Paragraph(_escape(f"{a.department.name} ({a.department.code})"), cell),
              Paragraph(_escape(a.get_status_display()), cell),
              Paragraph(_escape(_decider(a)), cell),
              Paragraph(_date(a.decided_at, "%d %b %Y %H:%M"), cell)] for a in decisions]
    table = Table(rows, colWidths=[52 * mm, 22 * mm, 60 * mm, 38 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), NAVY),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4f6")]),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d1d5db")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    y -= 4 * mm
    _, table_h = table.wrapOn(pdf, width - 38 * mm, y - 70 * mm)
    table.drawOn(pdf, 19 * mm, y - table_h)

    # issue date, code, QR
    url = verify_url(certificate.code)
    qr_size = 38 * mm
    qr_x, qr_y = width - 19 * mm - qr_size, 20 * mm
    pdf.drawImage(ImageReader(qr_image(url)), qr_x, qr_y, qr_size, qr_size)
    pdf.setFont(regular, 10)
    pdf.setFillColor(colors.black)
    text_y = qr_y + qr_size - 5 * mm
    issued_by = f" by {certificate.issued_by}" if certificate.issued_by else ""
    pdf.drawString(19 * mm, text_y, f"Issued {_date(certificate.issued_at)}{issued_by}")
    pdf.setFont(bold, 10)
    pdf.drawString(19 * mm, text_y - 7 * mm, "Verification code")
    pdf.setFont("Courier", 9)
    pdf.drawString(19 * mm, text_y - 12 * mm, certificate.code)
    pdf.setFont(regular, 8)
    pdf.setFillColor(GREY)
    pdf.drawString(19 * mm, text_y - 19 * mm, "Check this certificate by scanning the code or at")
    pdf.drawString(19 * mm, text_y - 23 * mm, url)

    if certificate.revoked_at:
        _stamp_revoked(pdf, bold, width, height, certificate)

    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _centred(pdf, text, font, size, y, page_width) -> None:
    """Centred on the page, the font made smaller until the text fits between the margins."""
    room = page_width - 40 * mm
    while size > 7 and pdfmetrics.stringWidth(text, font, size) > room:
        size -= 0.5
    pdf.setFont(font, size)
    pdf.drawCentredString(page_width / 2, y, text)


def _stamp_revoked(pdf, bold, width, height, certificate) -> None:
    pdf.saveState()
    pdf.setFillColor(colors.Color(0.75, 0.1, 0.1, alpha=0.35))
    pdf.translate(width / 2, height / 2)
    pdf.rotate(35)
    pdf.setFont(bold, 90)
    pdf.drawCentredString(0, 0, "REVOKED")
    pdf.setFont(bold, 16)
    pdf.drawCentredString(0, -14 * mm, f"on {_date(certificate.revoked_at)}")
    pdf.restoreState()


def _escape(text: str) -> str:
    # Paragraph reads a small markup language: names and reasons are text, never markup
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def certificate_filename(certificate) -> str:
    """certificate-SCE-CS-0001-2022.pdf: the registration number with its slashes as dashes."""
    registration = certificate.request.student.registration_number
    safe = "".join(c if c.isalnum() else "-" for c in registration)
    return f"certificate-{safe}.pdf"
