"""The second factor in Chromium: a finance officer sets up an authenticator from the QR page (the
test is the phone: it computes the code from the key the page shows), keeps the recovery codes,
reaches the dashboard; signs out and in again and gives the code; a wrong code is refused."""
from __future__ import annotations

import os
import time
from base64 import b32decode
from pathlib import Path

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from .conftest import login

# the README's picture, retaken with UPDATE_SCREENSHOTS=1 (otherwise into the test's tmp_path, so a
# test run leaves the work tree as it was: the key, and so the QR code, differ every run)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "otp-enrol.png"


def code_from_key(text: str) -> str:
    key = b32decode("".join(text.split()) + "=" * (-len("".join(text.split())) % 8))
    return f"{totp(key):06d}"


def next_step_code(text: str, after: str) -> str:
    # a code is accepted once; the next sign-in waits for the app's next code, as a person would
    while (code := code_from_key(text)) == after:
        time.sleep(1)
    return code


def test_finance_officer_sets_up_and_then_gives_a_second_factor(page, settings, tmp_path):
    settings.OTP_REQUIRED = True
    page.set_viewport_size({"width": 1440, "height": 1000})
    login(page, "finance", "finance@clearance.test")
    assert "/finance/second-factor/" in page.url
    assert page.locator("#otp-enrol svg").is_visible()
    secret = page.inner_text("#otp-secret")
    device = TOTPDevice.objects.get(user__email="finance@clearance.test")
    assert b32decode("".join(secret.split()) + "=" * (-len("".join(secret.split())) % 8)) == device.bin_key
    page.screenshot(path=str(SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / SCREENSHOT.name),
                    full_page=True)

    first = code_from_key(secret)
    page.fill("input[name=token]", first)
    page.click("#otp-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/finance/second-factor/recovery-codes/" in page.url
    codes = page.locator("#otp-codes li").all_inner_texts()
    assert len(codes) == 10
    page.click("a:has-text('continue')")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/finance/")
    assert page.get_by_text("Finance records").first.is_visible()

    # the form's navigation must finish before the next goto, or Chromium aborts one of the two
    with page.expect_navigation():
        page.evaluate("document.getElementById('logout-form').submit()")
    page.wait_for_load_state("networkidle")
    login(page, "finance", "finance@clearance.test")
    assert "/finance/second-factor/" in page.url
    assert page.locator("#otp-verify").is_visible()
    page.fill("input[name=token]", "000000" if first != "000000" else "111111")
    page.click("#otp-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "That code is not right" in page.inner_text("body")
    assert "/finance/second-factor/" in page.url
    time.sleep(2.1)   # a wrong code slows the device down for a second or two
    page.fill("input[name=token]", next_step_code(secret, after=first))
    page.click("#otp-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/finance/")
    assert page.get_by_text("Finance records").first.is_visible()
