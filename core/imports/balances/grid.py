"""Turning the uploaded bytes into sheets of cells, by content (never by the file's name).

xlsx/xlsm, xls and ods are read with python-calamine, which reads about 14× faster than openpyxl
and skips empty cells, so a sheet with a million formatted empty rows costs only its XML parse.
Before it gets a zip, every part is inflated with a byte budget, so a zip bomb (or lying size
headers) is refused without filling memory; that pass also notes, at no extra cost, whether a
sheet has formulas, error values or percentage formats. Only then is the sheet's XML looked at
again, for those cells alone, because calamine returns "" for a formula without a result or an
error value (#DIV/0!), the stale 0 that libraries (openpyxl, xlsxwriter) write for every formula,
and 0.15 for a cell shown as 15%. Those cells become `CellProblem`s in the grid.

Text files: UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text") or Windows-1252; comma,
semicolon, tab or bar separated; any line ending (CR LF, LF, or the CR alone of old Macs).
"""
from __future__ import annotations

import csv
import html
import io
import os
import pickle
import re
import resource
import select
import signal
import time
import zipfile
import zlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .cells import CellProblem, ImportFileError
from .headers import HEADER_SCAN_ROWS, find_header

MAX_FILE_BYTES = 20 * 1024 * 1024          # what we accept as an upload
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024     # total inflated size of an xlsx's parts
MAX_ZIP_RATIO = 200                        # deflate reaches ~1000:1 only on bombs; real sheets stay well below
MAX_ROWS = 200_000                         # data rows read; more is refused, not truncated
SMALL_PARTS = ("xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml", "meta.xml")
XLSX_MARKS = (b"<f>", b"<f ", b't="e"')
ODS_MARKS = (b"table:formula=", b'value-type="percentage"', b'value-type="error"', b'value-type="boolean"')
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# What the reader reads, by the names people give such files; the upload form accepts exactly these.
READABLE_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".tsv", ".txt")
READABLE_KINDS = "xlsx, xlsm, xls, ods, csv, tsv or txt (tab-separated “Unicode text”)"


@dataclass
class Sheet:
    name: str
    hidden: bool
    load: object                     # () → rows (list of lists), or None when the sheet is damaged
    kind: str = "workbook"


@dataclass
class _Zip:
    parts: dict = field(default_factory=dict)        # small parts kept: name → bytes
    marks: dict = field(default_factory=dict)        # sheet part → set of marks found in it
    archive: zipfile.ZipFile | None = None


# --- what is not a spreadsheet ------------------------------------------------------------------

def _describe_binary(head: bytes) -> str | None:
    for magic, what in ((b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                        (b"GIF8", "a GIF image"), (b"MZ", "a Windows program"), (b"\x7fELF", "a program"),
                        (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
                        (b"{\\rtf", "a Word (RTF) document"), (b"<", "a web page or XML file")):
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(magic):
            return f"This file is {what}, not a spreadsheet. Upload the balances as {READABLE_KINDS}."
    return None


# --- zip workbooks (xlsx, xlsm, ods) ------------------------------------------------------------

def _check_zip(data: bytes) -> _Zip:
    """Refuse a zip bomb before calamine inflates anything: declared sizes and ratios first, then
    inflate each part with a byte budget (declared sizes can lie). Keeps the small parts that say
    how to read the sheets and notes which sheets have formulas, error values or percentages."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):      # "zip file version 20.7" too
        raise ImportFileError("This file looks like a ZIP archive but is damaged; save the workbook again as "
                              ".xlsx and upload it again.", code="damaged") from None
    names = {i.filename for i in infos}
    if "xl/workbook.bin" in names:
        raise ImportFileError("This is an Excel binary workbook (.xlsb); save it as .xlsx (Excel Workbook) and "
                              "upload it again.", code="not_spreadsheet")
    if "xl/workbook.xml" not in names and "content.xml" not in names:
        raise ImportFileError(f"This is a ZIP archive, not an Excel workbook; upload the balances as {READABLE_KINDS}.",
                              code="not_spreadsheet")
    if len(infos) > 10_000:
        raise ImportFileError("This workbook has too many parts to be a balances report.", code="too_big")
    bomb = ImportFileError("This workbook unpacks to far more data than a balances report holds (it may be a "
                           "“zip bomb”); it was not read.", code="zip_bomb")
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise bomb
    found = _Zip(archive=archive)
    budget = MAX_UNZIPPED_BYTES
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise bomb
        name = info.filename
        marks = (XLSX_MARKS if name.startswith("xl/worksheets/") else ODS_MARKS if name == "content.xml" else ())
        keep = name in SMALL_PARTS and info.file_size < 4 * 1024 * 1024
        seen, kept, tail = set(), [], b""
        try:
            with archive.open(info) as part:
                read = 0
                while chunk := part.read(1024 * 1024):
                    read += len(chunk)
                    budget -= len(chunk)
                    if budget < 0 or read > max(info.file_size, 1024 * 1024) * 2:
                        raise bomb
                    if keep:
                        kept.append(chunk)
                    if marks and len(seen) < len(marks):
                        window = tail + chunk
                        seen.update(m for m in marks if m in window)
                        tail = chunk[-32:]
        except ImportFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as exc:
            if "encrypted" in str(exc).lower() or "password" in str(exc).lower():
                raise ImportFileError("This workbook is password-protected; save it as .xlsx without a password "
                                      "and upload it again.", code="password") from None
            raise ImportFileError("This workbook is damaged and cannot be read; open it, save it again as .xlsx and "
                                  "upload it again.", code="damaged") from None
        if keep:
            found.parts[name] = b"".join(kept)
        if seen:
            found.marks[name] = seen
    return found


def _column_index(letters: bytes) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ch - 64
    return index - 1


def _put(rows: list, r: int, c: int, value) -> None:
    while len(rows) <= r:
        rows.append([])
    row = rows[r]
    if len(row) <= c:
        row.extend([""] * (c + 1 - len(row)))
    row[c] = value


def _xlsx_sheet_parts(parts: dict) -> dict[str, str]:
    """Sheet name → its part (xl/worksheets/sheetN.xml), from workbook.xml and its relationships."""
    try:
        rels = {rel.get("Id"): rel.get("Target", "") for rel in ET.fromstring(parts["xl/_rels/workbook.xml.rels"])}
        ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
        out = {}
        for sheet in ET.fromstring(parts["xl/workbook.xml"]).iter("{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheet"):
            target = rels.get(sheet.get(ns), "")
            target = target.lstrip("/") if target.startswith("/") else "xl/" + target
            out[sheet.get("name")] = re.sub(r"[^/]+/\.\./", "", target)
        return out
    except (KeyError, ET.ParseError):
        return {}


def _xlsx_percent_styles(styles: bytes | None) -> list[bytes]:
    """Indexes (as in a cell's s="…") of the cell formats that show a number as a percentage."""
    if not styles:
        return []
    custom = {m.group(1): html.unescape(m.group(2).decode("utf-8", "replace"))
              for m in re.finditer(rb'<numFmt\b[^>]*?numFmtId="(\d+)"[^>]*?formatCode="([^"]*)"', styles)}
    block = re.search(rb"<cellXfs\b[^>]*>(.*?)</cellXfs>", styles, re.DOTALL)
    if not block:
        return []
    out = []
    for index, xf in enumerate(re.finditer(rb"<xf\b([^>]*)", block.group(1))):
        fmt = re.search(rb'numFmtId="(\d+)"', xf.group(1))
        fmt = fmt.group(1) if fmt else b"0"
        code = re.sub(r'"[^"]*"|\\.', "", custom.get(fmt, ""))
        if fmt in (b"9", b"10") or "%" in code:
            out.append(str(index).encode())
    return out


_FORMULA_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]+)"([^>]*)><f\b[^>]*?(?:/>|>([^<]*)</f>)(?:<v>([^<]*)</v>)?')
_ERROR_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]+)"[^>]*?\bt="e"[^>]*><v>([^<]*)</v>')


def _patch_xlsx(rows: list, found: _Zip, part: str, percent: list[bytes]) -> None:
    """Put a CellProblem where the sheet has a formula whose value cannot be trusted, an error
    value or a percentage. A formula's stored result is trusted only when it is there and the
    workbook was not written asking to be recalculated when opened (fullCalcOnLoad: what
    openpyxl and xlsxwriter write, having computed nothing)."""
    marks = found.marks.get(part, set())
    if not marks and not percent:
        return
    stale = bool(re.search(rb'fullCalcOnLoad="(?:1|true)"', found.parts.get("xl/workbook.xml", b"")))
    try:
        xml = found.archive.read(part)
    except (KeyError, zipfile.BadZipFile, zlib.error, OSError, ValueError, NotImplementedError, RuntimeError):
        return                                        # read by calamine already: it would have said so
    if b"<f>" in marks or b"<f " in marks:
        for m in _FORMULA_CELL.finditer(xml):
            letters, number, attrs, formula, value = m.groups()
            formula = html.unescape((formula or b"").decode("utf-8", "replace")) or "(shared formula)"
            if b't="e"' in attrs and value and not stale:
                problem = CellProblem(CellProblem.ERROR, html.unescape(value.decode("utf-8", "replace")), formula)
            elif value is None or not value.strip() or stale:
                problem = CellProblem(CellProblem.FORMULA, "", formula)
            else:
                continue
            _put(rows, int(number) - 1, _column_index(letters), problem)
    if b't="e"' in marks:
        for m in _ERROR_CELL.finditer(xml):
            letters, number, value = m.groups()
            r, c = int(number) - 1, _column_index(letters)
            if r < len(rows) and c < len(rows[r]) and isinstance(rows[r][c], CellProblem):
                continue                                  # a formula's, seen above
            _put(rows, r, c, CellProblem(CellProblem.ERROR, html.unescape(value.decode("utf-8", "replace"))))
    if percent:
        pattern = re.compile(rb'<c r="([A-Z]{1,3})([0-9]+)"[^>]*?\bs="(?:' + b"|".join(percent) + rb')"')
        for m in pattern.finditer(xml):
            r, c = int(m.group(2)) - 1, _column_index(m.group(1))
            if r < len(rows) and c < len(rows[r]):
                value = rows[r][c]
                if type(value) in (float, int):
                    _put(rows, r, c, CellProblem(CellProblem.PERCENT, f"{value * 100:g}%"))


_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_CALCEXT = "{urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0}"
_SPREADSHEET_PROGRAMS = ("libreoffice", "openoffice", "microsoft", "google", "gnumeric", "calligra", "wps")


def _ods_problems(found: _Zip) -> dict[str, list]:
    """Table name → [(row, column, CellProblem or bool)] from content.xml: percentages, error
    values, formulas without a value (or written by a program that does not compute them), and
    TRUE/FALSE, which calamine gives as 1.0/0.0."""
    meta = found.parts.get("meta.xml", b"").lower()
    generator = re.search(rb"<meta:generator>([^<]*)", meta)
    computed = bool(generator) and any(p.encode() in generator.group(1) for p in _SPREADSHEET_PROGRAMS)
    out: dict[str, list] = {}
    table, problems, r, c = None, None, 0, 0
    try:
        with found.archive.open("content.xml") as fh:
            for event, el in ET.iterparse(fh, events=("start", "end")):
                tag = el.tag
                if tag == _TABLE + "table":
                    if event == "start":
                        table, r = el.get(_TABLE + "name", ""), 0
                        problems = out.setdefault(table, [])
                    continue
                if table is None:
                    continue
                if tag == _TABLE + "table-row":
                    if event == "start":
                        c = 0
                    else:
                        r += int(el.get(_TABLE + "number-rows-repeated", "1") or 1)
                        el.clear()
                elif tag in (_TABLE + "table-cell", _TABLE + "covered-table-cell") and event == "end":
                    repeat = int(el.get(_TABLE + "number-columns-repeated", "1") or 1)
                    vtype, formula = el.get(_OFFICE + "value-type"), el.get(_TABLE + "formula")
                    shown = "".join(el.itertext()).strip()
                    problem = None
                    if el.get(_CALCEXT + "value-type") == "error":
                        problem = CellProblem(CellProblem.ERROR, shown, (formula or "").removeprefix("of:="))
                    elif formula and (vtype is None or not computed):
                        problem = CellProblem(CellProblem.FORMULA, "", formula.removeprefix("of:="))
                    elif vtype == "percentage":
                        problem = CellProblem(CellProblem.PERCENT, shown)
                    elif vtype == "boolean":              # calamine reads an ods TRUE as 1.0
                        problem = el.get(_OFFICE + "boolean-value") == "true"
                    if problem is not None and repeat < 1000:
                        problems.extend((r, c + i, problem) for i in range(repeat))
                    c += repeat
                    el.clear()
    except (ET.ParseError, KeyError, ValueError, zipfile.BadZipFile, zlib.error, OSError, NotImplementedError,
            RuntimeError):
        return {}
    return out


def _reraise_interrupts(exc: BaseException) -> None:
    """calamine's Rust panics on some damaged files arrive as pyo3's PanicException, a
    BaseException: those are a damaged file; a Ctrl-C or a worker's timeout are not."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc


def _sheets_from_workbook(data: bytes, found: _Zip | None):
    from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        metadata = workbook.sheets_metadata
    except BaseException as exc:  # calamine raises its own error types for every kind of damage, and panics
        _reraise_interrupts(exc)
        if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
            raise ImportFileError("This workbook is password-protected; save it without a password (as .xlsx) and "
                                  "upload it again.", code="password") from None
        if found is None:
            raise ImportFileError("This file cannot be read as an Excel 97-2003 (.xls) workbook: it is damaged or "
                                  "password-protected. Open it, save it without a password as .xlsx and upload it "
                                  "again.", code="damaged") from None
        raise ImportFileError("This workbook cannot be read (it may be damaged); open it, save it again as .xlsx "
                              "and upload it again.", code="damaged") from None
    parts = _xlsx_sheet_parts(found.parts) if found is not None else {}
    ods = found is not None and "content.xml" in found.marks
    percent = _xlsx_percent_styles(found.parts.get("xl/styles.xml")) if parts else []
    ods_problems = {}

    def loader(name):
        def load():
            try:
                sheet = workbook.get_sheet_by_name(name)
                # keep leading empty rows so row numbers are the spreadsheet's; stop reading after the cap
                rows = sheet.to_python(skip_empty_area=False, nrows=MAX_ROWS + HEADER_SCAN_ROWS + 2)
            except BaseException as exc:                 # pyo3's PanicException is no Exception
                _reraise_interrupts(exc)
                return None                              # a damaged sheet: said so if no other sheet has balances
            if name in parts:
                _patch_xlsx(rows, found, parts[name], percent)
            elif ods:
                if not ods_problems:
                    ods_problems.update(_ods_problems(found) or {"": []})
                for r, c, problem in ods_problems.get(name, ()):
                    if r < MAX_ROWS + HEADER_SCAN_ROWS + 2:
                        _put(rows, r, c, problem)
            return rows
        return load

    sheets = []
    for meta in metadata:
        if meta.typ != SheetTypeEnum.WorkSheet:
            continue                                     # chart sheets, macro sheets
        hidden = meta.visible != SheetVisibleEnum.Visible    # Hidden, or VeryHidden (only a macro shows it)
        sheets.append(Sheet(meta.name, hidden, loader(meta.name)))
    return sorted(sheets, key=lambda s: s.hidden)        # visible sheets first, each group in the workbook's order


# --- legacy .xls ---------------------------------------------------------------------------------

def _check_ole2(data: bytes) -> None:
    """An OLE2 container is an .xls workbook, or an encrypted (password-protected) xlsx, or a
    Word/PowerPoint/Outlook file: only the first is read."""
    def named(name: str) -> bool:
        return name.encode("utf-16-le") in data
    if named("EncryptedPackage") or named("EncryptionInfo"):
        raise ImportFileError("This workbook is password-protected; save it without a password (as .xlsx) and "
                              "upload it again.", code="password")
    for stream, what in (("WordDocument", "a Word document"), ("PowerPoint Document", "a PowerPoint presentation"),
                         ("__substg1.0_", "an Outlook message")):
        if named(stream):
            raise ImportFileError(f"This file is {what}, not a spreadsheet. Upload the balances as {READABLE_KINDS}.",
                                  code="not_spreadsheet")


XLS_SECONDS = 60
XLS_MEMORY = 1024 * 1024 * 1024


def _sheets_from_xls(data: bytes) -> list[Sheet]:
    """A legacy .xls is read by calamine in a child process with a memory limit: on some damaged
    BIFF records calamine asks for hundreds of gigabytes and Rust aborts the whole process, which
    here would be the web server's worker. The child hands back every sheet's cells (an .xls holds
    at most 65,536 rows a sheet and the upload at most 20 MB)."""
    damaged = ImportFileError("This file cannot be read as an Excel 97-2003 (.xls) workbook: it is damaged or "
                              "password-protected. Open it, save it without a password as .xlsx and upload it "
                              "again.", code="damaged")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                         # the child: read, send, and leave without cleanup
        status = 1
        try:
            os.close(read_end)
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            used = _address_space()
            if used:
                resource.setrlimit(resource.RLIMIT_AS, (used + XLS_MEMORY, hard))
            try:
                out = ("ok", [(s.name, s.hidden, s.load()) for s in _sheets_from_workbook(data, None)])
            except ImportFileError as exc:
                out = ("refused", (str(exc), exc.code))
            with os.fdopen(write_end, "wb") as fh:
                pickle.dump(out, fh, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + XLS_SECONDS
    with os.fdopen(read_end, "rb") as fh:
        while True:
            ready, _, _ = select.select([fh], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(fh.fileno(), 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise damaged
    try:
        kind, payload = pickle.loads(b"".join(chunks))  # our own child's bytes, not the upload's
    except Exception:
        raise damaged from None
    if kind == "refused":
        raise ImportFileError(*payload)
    return [Sheet(name, hidden, (lambda rows=rows: rows)) for name, hidden, rows in payload]


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


# --- text files --------------------------------------------------------------------------------

def _decode_text(data: bytes) -> str:
    head = data[:4096]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (b"\x00" in head and _looks_utf16(head)):
        encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be")
        try:
            return data.decode(encoding).removeprefix("\ufeff")
        except UnicodeDecodeError:
            pass
    if b"\x00" in head:
        raise ImportFileError(f"This file is not a spreadsheet (it holds binary data). Upload the balances as "
                              f"{READABLE_KINDS}.", code="not_spreadsheet")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")   # "CSV (Windows)" from Excel
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t")
    if controls > 8 or text[:4096].count("\ufffd") > 8:
        raise ImportFileError(f"This file is not a spreadsheet (it holds binary data). Upload the balances as "
                              f"{READABLE_KINDS}.", code="not_spreadsheet")
    return text


def _looks_utf16(head: bytes) -> bool:
    """Text in UTF-16 without a BOM: one of each pair of bytes is zero nearly everywhere."""
    even, odd = head[0::2], head[1::2]
    return max(even.count(0), odd.count(0)) > 0.4 * len(head) / 2


def _csv_rows(text: str, delimiter: str, limit: int) -> list[list[str]]:
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)   # newline="": \r, \n and \r\n alike
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > limit:
                break
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num} of the file cannot be read as CSV ({exc}); save it again "
                              "from the spreadsheet program and upload it again.", code="damaged") from None
    return rows


def _sheets_from_csv(data: bytes, find=find_header):
    text = _decode_text(data)
    best = None
    head_text = text[:64 * 1024]
    for delimiter in (";", ",", "\t", "|"):
        try:
            head = _csv_rows(head_text, delimiter, HEADER_SCAN_ROWS)
        except ImportFileError:
            continue                                     # cut in the middle of a quoted field: not this one
        header = find(head)
        if header and (best is None or len(head[header.row - 1]) > best[1]):
            best = (delimiter, len(head[header.row - 1]))
    delimiter = best[0] if best else ","
    rows = _csv_rows(text, delimiter, MAX_ROWS + HEADER_SCAN_ROWS + 1)
    return [Sheet("CSV", False, lambda: rows, kind="text")]


def read_grid(data: bytes, find=find_header) -> list[Sheet]:
    """The sheets of the file, visible ones first, after the checks every upload gets. A sheet's
    cells are read when its `load()` is called. `find(rows)` finds the header row of the kind of
    file expected (the balances' by default): a text file's separator is the one under which it
    finds the widest header."""
    if not data:
        raise ImportFileError("The file is empty.", code="empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"The file is {len(data) / 1024 / 1024:.1f} MB; the limit is "
                              f"{MAX_FILE_BYTES // 1024 // 1024} MB. Split it or remove extra sheets.", code="too_big")
    head = data[:16]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _sheets_from_workbook(data, _check_zip(data))
    if head.startswith(OLE2):
        _check_ole2(data)
        return _sheets_from_xls(data)
    described = _describe_binary(data[:64])
    if described:
        raise ImportFileError(described, code="not_spreadsheet")
    return _sheets_from_csv(data, find)


def estimate_rows(data: bytes) -> int:
    """A quick upper bound on the data rows, to decide between running now and in the background,
    without parsing: lines for text, the sheets' declared dimensions (or their size) for xlsx."""
    if data[:8] == OLE2:
        return len(data) // 20
    if data[:4] != b"PK\x03\x04":
        return max(data.count(b"\n"), data.count(b"\r"))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        total = 0
        for info in archive.infolist():
            if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                with archive.open(info) as part:
                    head = part.read(4096).decode("utf-8", "replace")
                match = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
                total += int(match.group(1)) if match else info.file_size // 60
            elif info.filename == "content.xml":
                total += info.file_size // 300
        return total
    except Exception:
        return len(data) // 30
