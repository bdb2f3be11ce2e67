"""Reading a fee-balance spreadsheet (DESIGN.md, "Spreadsheet import of balances").

Finance systems export messy files and the office must not have to hand-edit them: the header row
is found (not assumed on line 1), header names vary, amounts come as numbers or as text in many
spellings, blank rows, totals rows and the phantom empty rows that Excel and LibreOffice leave are
skipped. What cannot be read at all raises `ImportFileError` with a message for the person who
uploaded it; what is wrong in a row becomes a `RowError` (row as the spreadsheet shows it, column as
headed in the file, reason) and the rest of the file is still read.

xlsx (and ods) are read with python-calamine, which reads about 14× faster than openpyxl and skips
empty cells, so a sheet with a million formatted empty rows costs only its XML parse. Before it
gets the file, the zip is checked entry by entry by actually inflating it with a byte budget, so a
zip bomb (or lying size headers) is refused without filling memory.
"""
from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError

MAX_FILE_BYTES = 20 * 1024 * 1024          # what we accept as an upload
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024     # total inflated size of an xlsx's parts
MAX_ZIP_RATIO = 200                        # deflate reaches ~1000:1 only on bombs; real sheets stay well below
MAX_ROWS = 200_000                         # data rows read; more is refused, not truncated
HEADER_SCAN_ROWS = 30
MAX_BALANCE = Decimal("10000000")
CENT = Decimal("0.01")
_INF = float("inf")


class ImportFileError(ValidationError):
    """The file cannot be read as a balances spreadsheet at all; the message says why and what to do."""

    def __init__(self, message: str, code: str = "unreadable"):
        super().__init__(message, code=code)

    def __str__(self):
        return self.messages[0]


# --- headers ----------------------------------------------------------------------------------

def _key(text) -> str:
    """`Reg. No.` → `regno`; `Balance (KES)` → `balance`: lower-case letters and digits, with any
    bracketed part and a trailing currency dropped."""
    s = str(text or "").lower()
    s = re.sub(r"\(.*?\)|\[.*?\]", "", s)
    s = re.sub(r"[^a-z0-9]", "", s)
    return re.sub(r"(kes|kshs|ksh)$", "", s) if len(s) > 4 else s


REG_HEADERS = {"registrationnumber", "registrationno", "registration", "regnumber", "regno", "regnos", "reg",
               "admno", "admnumber", "admissionno", "admissionnumber", "admission", "studentno",
               "studentnumber", "studentregno", "studentregistrationnumber", "studentregnumber", "regnoadmno"}
BALANCE_HEADERS = {"tuitionbalance", "balance", "feebalance", "feesbalance", "balancedue", "amountdue",
                   "outstanding", "outstandingbalance", "outstandingamount", "closingbalance", "tuitionfeebalance",
                   "amountowed", "arrears", "feearrears", "netbalance", "currentbalance"}
GRAD_HEADERS = {"graduationfeepaid", "gradfeepaid", "graduationfeestatus", "gradfeestatus", "graduationpaid",
                "gradfee", "graduationfee"}
NOTES_HEADERS = {"notes", "note", "remarks", "remark", "comments", "comment"}
EXPECTED = ("a registration number column (registration_number, Reg No, Reg. No., Registration Number, "
            "Adm No, Admission No, Student No) and a balance column (tuition_balance, Balance, "
            "Balance (KES), Fee Balance, Amount Due, Outstanding)")


@dataclass
class Header:
    row: int                      # 1-based, as the spreadsheet shows it
    reg: int                      # column indexes
    balance: int
    grad: int | None = None
    notes: int | None = None
    labels: dict = field(default_factory=dict)   # "reg" → header text as in the file


def find_header(rows: list[list]) -> Header | None:
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        keys = [_key(c) if isinstance(c, str) else "" for c in row]
        found = {}
        for col, k in enumerate(keys):
            if not k:
                continue
            for name, names in (("reg", REG_HEADERS), ("balance", BALANCE_HEADERS), ("grad", GRAD_HEADERS),
                                ("notes", NOTES_HEADERS)):
                if k in names and name not in found:
                    found[name] = col
        if "reg" in found and "balance" in found:
            return Header(row=index + 1, reg=found["reg"], balance=found["balance"], grad=found.get("grad"),
                          notes=found.get("notes"),
                          labels={name: str(row[col]).strip() for name, col in found.items()})
    return None


# --- cell values ------------------------------------------------------------------------------

REG_NUMBER_SHAPE = re.compile(r"^[A-Z0-9]{1,10}(?:/[A-Z0-9]{1,10}){2,5}$")
TOTAL_LABELS = {"TOTAL", "TOTALS", "GRANDTOTAL", "SUBTOTAL", "TOTALKES", "SUM"}
_WS = re.compile(r"\s+")
_CURRENCY = re.compile(r"^(?:KES|KSHS|KSH|SHS|SH)\.?|(?:KES|KSHS|KSH|/=|/-)$", re.IGNORECASE)
_NIL = {"", "-", "–", "—", "NIL", "NONE", "0", "--"}


def normalize_reg(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "".join(str(value).split()).upper()      # split() knows every Unicode space, NBSP included


def parse_amount(value) -> Decimal:
    """A balance as written in a cell → Decimal KES (negative = credit). Raises ValueError(reason)."""
    if type(value) is float:
        if value != value or value in (_INF, -_INF):
            raise ValueError("not a number")
        return Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP)
    if isinstance(value, bool):
        raise ValueError("a yes/no value where an amount belongs")
    if isinstance(value, int):
        return Decimal(value).quantize(CENT)
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        raise ValueError(f"a date ({value}) where an amount belongs")
    text = _WS.sub("", str(value))
    if text.upper() in _NIL:
        return Decimal("0.00")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    for _ in range(2):                                   # "-KES 1,200" and "KES -1,200" alike
        if text[:1] in "-−":
            negative, text = not negative, text[1:]
        text = _CURRENCY.sub("", text)
    if text.upper().endswith("CR"):                      # "1,200.00 CR" is a credit
        negative, text = True, text[:-2]
    if text.endswith("-"):                               # "1,200.00-" (some ledgers)
        negative, text = True, text[:-1]
    if not text:
        raise ValueError(f"“{value}” has no amount")
    if text.upper() in _NIL:
        return Decimal("0.00")
    if not re.fullmatch(r"[0-9.,']+", text) or not re.search(r"[0-9]", text):
        raise ValueError(f"“{value}” is not an amount")
    text = text.replace("'", "")
    if "," in text and "." in text:                      # the last one is the decimal separator
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        if re.fullmatch(r"\d{1,3}(,\d{3})+", text):
            text = text.replace(",", "")               # 12,500
        elif re.fullmatch(r"\d+,\d{1,2}", text):
            text = text.replace(",", ".")              # 250,00 and 4500,5 (decimal comma)
        else:
            raise ValueError(f"“{value}” is not an amount (commas in the wrong places)")
    elif re.fullmatch(r"\d{1,3}(\.\d{3}){2,}", text):
        text = text.replace(".", "")                   # 1.234.567
    try:
        amount = Decimal(text).quantize(CENT, ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"“{value}” is not an amount") from None
    return -amount if negative else amount


_YES = {"YES", "Y", "TRUE", "1", "PAID", "1.0", "X", "✓"}
_NO = {"NO", "N", "FALSE", "0", "UNPAID", "NOTPAID", "0.0", ""}


def parse_yes_no(value) -> bool | None:
    """Graduation fee paid: Yes/No/Y/N/True/False/1/0/Paid/Unpaid; blank → None (leave as is)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return value
    text = _WS.sub("", str(value)).upper()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"“{value}” is not yes or no")


def cell_text(value) -> str:
    """A cell's value as the officer would read it in the sheet (for error reports)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()[:200]


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- results ----------------------------------------------------------------------------------

@dataclass
class RowError:
    row: int
    column: str
    reason: str
    value: object = None        # the cell as the file has it, so the officer finds it in the sheet

    def as_dict(self):
        return {"row": self.row, "column": self.column, "reason": self.reason, "value": cell_text(self.value)}

    def __str__(self):
        return f"row {self.row}, {self.column}: {self.reason}"


@dataclass
class BalanceRow:
    row: int
    registration_number: str
    balance: Decimal
    graduation_fee_paid: bool | None = None
    notes: str = ""


@dataclass
class ParsedBalances:
    rows: list[BalanceRow]
    errors: list[RowError]
    sheet: str
    header: Header
    rows_read: int = 0            # data rows that were not blank and not a total
    skipped_total_rows: int = 0
    duplicate_rows: int = 0       # identical repeats counted once


# --- reading the grid -------------------------------------------------------------------------

def _describe_binary(head: bytes) -> str | None:
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return ("This workbook is password-protected or an old .xls file; save it as .xlsx (Excel "
                "Workbook) without a password and upload it again.")
    for magic, what in ((b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                        (b"GIF8", "a GIF image"), (b"MZ", "a Windows program"), (b"\x7fELF", "a program"),
                        (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
                        (b"{\\rtf", "a Word (RTF) document"), (b"<", "a web page or XML file")):
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(magic):
            return f"This file is {what}, not a spreadsheet. Upload the balances as .xlsx or .csv."
    return None


def _check_zip(data: bytes) -> None:
    """Refuse a zip bomb before calamine inflates anything: declared sizes and ratios first, then
    inflate each part with a byte budget (declared sizes can lie)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportFileError("This file looks like a ZIP archive but is damaged; save the workbook again as "
                              ".xlsx and upload it again.", code="damaged") from None
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names and "content.xml" not in names:
        raise ImportFileError("This is a ZIP archive, not an Excel workbook; upload the balances as .xlsx or .csv.",
                              code="not_spreadsheet")
    if len(infos) > 10_000:
        raise ImportFileError("This workbook has too many parts to be a balances report.", code="too_big")
    bomb = ImportFileError("This workbook unpacks to far more data than a balances report holds (it may be a "
                           "“zip bomb”); it was not read.", code="zip_bomb")
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise bomb
    budget = MAX_UNZIPPED_BYTES
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise bomb
        try:
            with archive.open(info) as part:
                read = 0
                while chunk := part.read(1024 * 1024):
                    read += len(chunk)
                    budget -= len(chunk)
                    if budget < 0 or read > max(info.file_size, 1024 * 1024) * 2:
                        raise bomb
        except ImportFileError:
            raise
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as exc:
            if "encrypted" in str(exc).lower() or "password" in str(exc).lower():
                raise ImportFileError("This workbook is password-protected; save it as .xlsx without a password "
                                      "and upload it again.", code="password") from None
            raise ImportFileError("This workbook is damaged and cannot be read; open it, save it again as .xlsx and "
                                  "upload it again.", code="damaged") from None


def _sheets_from_workbook(data: bytes):
    from python_calamine import CalamineWorkbook
    _check_zip(data)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises its own error types for every kind of damage
        if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
            raise ImportFileError("This workbook is password-protected; save it as .xlsx without a password.",
                                  code="password") from None
        raise ImportFileError("This workbook cannot be read (it may be damaged); open it, save it again as .xlsx "
                              "and upload it again.", code="damaged") from None
    for meta in workbook.sheets_metadata:
        if getattr(meta.typ, "name", "WorkSheet") != "WorkSheet":
            continue                                     # chart sheets, macro sheets
        try:
            sheet = workbook.get_sheet_by_name(meta.name)
            # keep leading empty rows so row numbers are the spreadsheet's; stop reading after the cap
            rows = sheet.to_python(skip_empty_area=False, nrows=MAX_ROWS + HEADER_SCAN_ROWS + 2)
        except Exception:
            rows = None                                  # a damaged sheet: said so if no other sheet has balances
        yield meta.name, rows


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            try:
                return data.decode("utf-16")
            except UnicodeDecodeError:
                pass
        raise ImportFileError("This file is not a spreadsheet (it holds binary data). Upload the balances as "
                              ".xlsx or .csv.", code="not_spreadsheet")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")   # "CSV (Windows)" from Excel
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t")
    if controls > 8 or text[:4096].count("\ufffd") > 8:
        raise ImportFileError("This file is not a spreadsheet (it holds binary data). Upload the balances as "
                              ".xlsx or .csv.", code="not_spreadsheet")
    return text


def _sheets_from_csv(data: bytes):
    text = _decode_text(data)
    best = None
    for delimiter in (";", ",", "\t", "|"):
        head = list(csv.reader(io.StringIO(text[:64 * 1024]), delimiter=delimiter))[:HEADER_SCAN_ROWS]
        header = find_header(head)
        if header and (best is None or len(head[header.row - 1]) > best[1]):
            best = (delimiter, len(head[header.row - 1]))
    delimiter = best[0] if best else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    for row in reader:
        rows.append(row)
        if len(rows) > MAX_ROWS + HEADER_SCAN_ROWS + 1:
            break
    yield "CSV", rows


def read_grid(data: bytes):
    """(sheet name, rows) for each sheet of the file, after the checks every upload gets."""
    if not data:
        raise ImportFileError("The file is empty.", code="empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"The file is {len(data) / 1024 / 1024:.1f} MB; the limit is "
                              f"{MAX_FILE_BYTES // 1024 // 1024} MB. Split it or remove extra sheets.", code="too_big")
    head = data[:16]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _sheets_from_workbook(data)
    described = _describe_binary(data[:64])
    if described:
        raise ImportFileError(described, code="not_spreadsheet")
    return _sheets_from_csv(data)


# --- rows -------------------------------------------------------------------------------------

def _cell(row, index):
    if index is None or index >= len(row):
        return None
    return row[index]


def _is_total(row, reg_value) -> bool:
    if isinstance(reg_value, str) and _WS.sub("", reg_value).upper().rstrip(":") in TOTAL_LABELS:
        return True
    if _blank(reg_value):
        return any(isinstance(c, str) and re.sub(r"[\s\-:]", "", c).upper() in TOTAL_LABELS for c in row)
    return False


def parse_rows(rows: list[list], header: Header, sheet: str) -> ParsedBalances:
    errors: list[RowError] = []
    parsed: list[BalanceRow] = []
    label_reg, label_balance = header.labels["reg"], header.labels["balance"]
    label_grad = header.labels.get("grad")
    reg_i, bal_i, grad_i, notes_i = header.reg, header.balance, header.grad, header.notes
    rows_read = totals = 0
    shape = REG_NUMBER_SHAPE.match
    data_rows = rows[header.row:]
    if len(data_rows) > MAX_ROWS:
        tail = data_rows[MAX_ROWS:]
        if any(not all(_blank(c) for c in r) for r in tail):
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.",
                                  code="too_many_rows")
        data_rows = data_rows[:MAX_ROWS]
    width = max(reg_i, bal_i) + 1
    for offset, row in enumerate(data_rows):
        if len(row) >= width:
            reg_value, bal_value = row[reg_i], row[bal_i]
        else:
            reg_value, bal_value = _cell(row, reg_i), _cell(row, bal_i)
        reg_blank = reg_value is None or reg_value == "" or (isinstance(reg_value, str) and not reg_value.strip())
        bal_blank = bal_value is None or bal_value == "" or (isinstance(bal_value, str) and not bal_value.strip())
        if reg_blank and bal_blank:
            continue                                     # blank row, or a caption row between blocks
        number = header.row + 1 + offset
        reg = "" if reg_blank else normalize_reg(reg_value)
        if (reg.rstrip(":") in TOTAL_LABELS) or (reg_blank and _is_total(row, reg_value)):
            totals += 1
            continue
        rows_read += 1
        ok = True
        if reg_blank:
            errors.append(RowError(number, label_reg, "no registration number", reg_value))
            ok = False
        elif not shape(reg):
            errors.append(RowError(number, label_reg, f"“{str(reg_value).strip()}” is not a registration "
                                                      "number of the form SCHOOL/DEPT/NNNN/YYYY", reg_value))
            ok = False
        amount = None
        if bal_blank:
            errors.append(RowError(number, label_balance, "no balance (write 0 or - for nil)", bal_value))
            ok = False
        else:
            try:
                amount = parse_amount(bal_value)
            except ValueError as exc:
                errors.append(RowError(number, label_balance, str(exc), bal_value))
                ok = False
            else:
                if amount > MAX_BALANCE or amount < -MAX_BALANCE:
                    errors.append(RowError(number, label_balance, f"KES {amount:,.2f} is absurd for a fee balance "
                                                                  f"(limit ±{MAX_BALANCE:,.0f})", bal_value))
                    ok = False
        paid = None
        if grad_i is not None:
            grad_value = _cell(row, grad_i)
            try:
                paid = parse_yes_no(grad_value)
            except ValueError as exc:
                errors.append(RowError(number, label_grad, str(exc), grad_value))
                ok = False
        if ok:
            notes = _cell(row, notes_i) if notes_i is not None else None
            parsed.append(BalanceRow(number, reg, amount, paid, "" if _blank(notes) else str(notes).strip()))
    rows_out, duplicates = _dedupe(parsed, errors, label_reg)
    errors.sort(key=lambda e: (e.row, e.column))
    return ParsedBalances(rows=rows_out, errors=errors, sheet=sheet, header=header, rows_read=rows_read,
                          skipped_total_rows=totals, duplicate_rows=duplicates)


def _dedupe(parsed: list[BalanceRow], errors: list[RowError], label_reg: str):
    """Identical repeats of a registration number count once; repeats that differ are all errors."""
    first: dict[str, BalanceRow] = {}
    clashes: dict[str, list[BalanceRow]] = {}
    duplicates = 0
    for r in parsed:
        seen = first.get(r.registration_number)
        if seen is None:
            first[r.registration_number] = r
            continue
        group = clashes.setdefault(r.registration_number, [seen])
        group.append(r)
    out = []
    bad = set()
    for reg, group in clashes.items():
        values = {(g.balance, g.graduation_fee_paid, g.notes) for g in group}
        if len(values) == 1:
            duplicates += len(group) - 1
            continue
        bad.add(reg)
        rows_text = ", ".join(str(g.row) for g in group)
        for g in group:
            errors.append(RowError(g.row, label_reg, f"{reg} appears in rows {rows_text} with different amounts "
                                                     f"(here KES {g.balance:,.2f}); keep one row", reg))
    for reg, r in first.items():
        if reg not in bad:
            out.append(r)
    return out, duplicates


def parse_balances(data: bytes) -> ParsedBalances:
    """Read and check a balances file. Raises ImportFileError when it cannot be read at all."""
    tried, damaged = [], []
    for sheet, rows in read_grid(data):
        if rows is None:
            damaged.append(sheet)
            continue
        header = find_header(rows)
        if header is not None:
            return parse_rows(rows, header, sheet)
        tried.append(sheet)
    if damaged:
        raise ImportFileError(f"The sheet {', '.join(damaged)} is damaged and cannot be read; open the workbook, "
                              "save it again as .xlsx and upload it again.", code="damaged")
    where = f" (sheets looked at: {', '.join(tried)})" if len(tried) > 1 else ""
    if not tried:
        raise ImportFileError("The workbook has no sheets with data.", code="no_header")
    raise ImportFileError(f"No header row found in the first {HEADER_SCAN_ROWS} rows{where}: expected {EXPECTED}.",
                          code="no_header")


def estimate_rows(data: bytes) -> int:
    """A quick upper bound on the data rows, to decide between running now and in the background,
    without parsing: lines for csv, the sheets' declared dimensions (or their size) for xlsx."""
    if data[:4] != b"PK\x03\x04":
        return data.count(b"\n")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        total = 0
        for info in archive.infolist():
            if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                with archive.open(info) as part:
                    head = part.read(4096).decode("utf-8", "replace")
                match = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
                total += int(match.group(1)) if match else info.file_size // 60
        return total
    except Exception:
        return len(data) // 30
