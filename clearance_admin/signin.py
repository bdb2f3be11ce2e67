"""Pieces of the second-factor pages the sites show (clearance_admin.sites): the code form and the
QR code of an authenticator's secret, drawn inline as SVG (no image file, nothing leaves the page)."""
from __future__ import annotations

import re
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django import forms
from django.utils.safestring import mark_safe
from unfold.widgets import UnfoldAdminTextInputWidget


class CodeForm(forms.Form):
    token = forms.CharField(
        label="Code", max_length=32, strip=True,
        widget=UnfoldAdminTextInputWidget(attrs={
            "autocomplete": "one-time-code", "inputmode": "text", "autofocus": True,
            "autocapitalize": "off", "spellcheck": "false", "placeholder": "123456"}))


def secret_text(device) -> str:
    """The key as people type it into an app by hand: base32 in groups of four."""
    key = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(key[i:i + 4] for i in range(0, len(key), 4))


def qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    svg = image.to_string(encoding="unicode")
    # sized by the page (CSS), not in millimetres; dark modules on a white square in either theme
    svg = re.sub(r'^<svg width="[^"]+" height="[^"]+"', '<svg role="img" aria-label="QR code of the key" '
                 'class="bg-white p-2 rounded-default" style="width: 13rem; height: 13rem"', svg, count=1)
    return mark_safe(svg)
