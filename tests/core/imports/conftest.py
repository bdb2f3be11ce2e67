"""Spreadsheets written by the programs people really use: LibreOffice headless (soffice, a Debian
package CI installs: .ci/system-packages), xlsxwriter and openpyxl. Tests that need soffice skip
when it is missing on this machine; CI has it."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest


def openpyxl_bytes(build) -> bytes:
    """build(workbook) fills a new openpyxl workbook (its first sheet is `workbook.active`)."""
    wb = openpyxl.Workbook()
    build(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def xlsxwriter_bytes(build) -> bytes:
    import xlsxwriter
    out = io.BytesIO()
    wb = xlsxwriter.Workbook(out, {"in_memory": True})
    build(wb)
    wb.close()
    return out.getvalue()


class LibreOffice:
    """soffice --headless --convert-to, with its own profile folder (two runs at once, or another
    user's LibreOffice, would otherwise share one and fail)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.profile = (folder / "profile").as_uri()

    def convert(self, name: str, data: bytes, to: str) -> bytes:
        """`data` saved as `name`, opened by LibreOffice and saved as `to` ("xlsx", "ods", "xls", or a
        filter string such as 'txt:Text - txt - csv (StarCalc):9,34,65535')."""
        work = self.folder / f"job{len(list(self.folder.glob('job*')))}"
        work.mkdir()
        source = work / name
        source.write_bytes(data)
        out = work / "out"
        subprocess.run(["soffice", f"-env:UserInstallation={self.profile}", "--headless", "--convert-to", to,
                        "--outdir", str(out), str(source)], check=True, timeout=180, capture_output=True)
        made = list(out.iterdir())
        assert len(made) == 1, made
        return made[0].read_bytes()


@pytest.fixture(scope="session")
def libreoffice(tmp_path_factory):
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice (soffice) is not installed here; CI installs it (.ci/system-packages)")
    return LibreOffice(tmp_path_factory.mktemp("libreoffice"))
