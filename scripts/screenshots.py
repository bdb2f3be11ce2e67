"""Screenshots of each site's dashboard and main list as its demo user sees them.

    make run   # in another terminal (or any server with seed_demo data)
    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000] [--password clearance2026] [--sites student …]

Writes docs/screenshots/<site>-dashboard.png and <site>-list.png with Debian's Chromium.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SHOTS = [
    # site, user, main list path
    ("staff", "lib@clearance.test", "/staff/core/clearanceapproval/"),
    ("finance", "finance@clearance.test", "/finance/core/payment/"),
    ("registry", "registry@clearance.test", "/registry/core/clearancerequest/"),
    ("student", "student@clearance.test", "/student/core/notification/"),
    ("admin", "admin@clearance.test", "/admin/core/user/"),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--password", default="clearance2026")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--sites", nargs="*", default=[s for s, *_ in SHOTS], help="retake only these sites' images")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        for site, email, list_path in SHOTS:
            if site not in args.sites:
                continue
            context = browser.new_context(viewport={"width": 1440, "height": 960}, base_url=args.base)
            page = context.new_page()
            page.goto(f"/{site}/login/")
            page.fill("input[name=username]", email)
            page.fill("input[name=password]", args.password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"{site}-dashboard.png"), full_page=False)
            page.goto(list_path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"{site}-list.png"), full_page=False)
            print(f"{site}: {OUT / f'{site}-dashboard.png'}, {OUT / f'{site}-list.png'}")
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
