"""Reading an M-PESA organisation (Pay Bill) statement, as exported from the M-PESA portal in CSV.

The columns that matter: `Receipt No.` (the M-PESA code), `Completion Time`, `Paid In` (the amount
received), `A/C No.` (the account the payer typed, meant to be the registration number; payers
mistype it) and, when present, `Transaction Status` (only completed lines count). The header row is
found, not assumed on line 1 (the portal writes a few lines about the account above it); lines
that pay nothing in (charges, withdrawals) are skipped. What cannot be read at all raises
`ImportFileError`; a line with a bad code, time or amount becomes a `RowError` and the rest of the
file is still read.
"""
from __future__ import annotations

import csv
import datetime
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from .balances import ImportFileError, RowError, parse_amount

MAX_STATEMENT_BYTES = 10 * 1024 * 1024
MAX_LINES = 100_000
HEADER_SCAN_ROWS = 30
CODE_RE = re.compile(r"^[A-Z0-9]{10}$")
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
                "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d.%m.%Y %H:%M:%S")


def _key(text) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


COLUMNS = {
    "receipt": {"receiptno", "receiptnumber", "receipt", "transactionid", "mpesacode", "transactioncode"},
    "time": {"completiontime", "completedtime", "transactiontime", "time", "date"},
    "paid_in": {"paidin", "amountpaidin", "credit", "amount"},
    "account": {"acno", "accountno", "accountnumber", "account", "billrefnumber", "billreference"},
    "status": {"transactionstatus", "status"},
    "details": {"details", "description"},
    "other_party": {"otherpartyinfo", "otherparty"},
}
REQUIRED = ("receipt", "time", "paid_in", "account")
LABELS = {"receipt": "Receipt No.", "time": "Completion Time", "paid_in": "Paid In", "account": "A/C No."}


@dataclass
class StatementLine:
    row: int                        # 1-based, as a spreadsheet would show it
    receipt: str                    # upper-case, no spaces
    completed_at: datetime.datetime  # aware
    amount: Decimal
    account: str                    # as the payer typed it
    details: str = ""
    other_party: str = ""


@dataclass
class ParsedStatement:
    lines: list[StatementLine]
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0                # not completed, or nothing paid in

    @property
    def period(self) -> tuple[datetime.datetime, datetime.datetime] | None:
        if not self.lines:
            return None
        return min(x.completed_at for x in self.lines), max(x.completed_at for x in self.lines)


def _decode(data: bytes) -> str:
    if not data:
        raise ImportFileError("The file is empty.", code="empty")
    if data[:4] == b"PK\x03\x04" or b"\x00" in data[:4096]:
        raise ImportFileError("This is not a CSV file. In the M-PESA portal export the statement as CSV and upload "
                              "that.", code="not_csv")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _header(rows: list[list[str]]) -> tuple[int, dict[str, int]] | None:
    for i, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        keys = [_key(c) for c in row]
        found = {}
        for name, names in COLUMNS.items():
            for j, k in enumerate(keys):
                if k in names and name not in found:
                    found[name] = j
                    break
        if all(name in found for name in REQUIRED):
            return i, found
    return None


def parse_time(value: str) -> datetime.datetime:
    text = " ".join((value or "").split())
    for fmt in TIME_FORMATS:
        try:
            naive = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return timezone.make_aware(naive)
    raise ValueError(f"“{value}” is not a date and time")


def parse_mpesa_statement(data: bytes) -> ParsedStatement:
    if len(data) > MAX_STATEMENT_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_STATEMENT_BYTES // 1024 // 1024} MB; export a shorter "
                              "period.", code="too_big")
    text = _decode(data)
    best = None
    for delimiter in (",", ";", "\t"):
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        header = _header(rows)
        if header is not None:
            best = (rows, header)
            break
    if best is None:
        raise ImportFileError("No header row with Receipt No., Completion Time, Paid In and A/C No. was found: this "
                              "does not look like an M-PESA Pay Bill statement.", code="no_header")
    rows, (header_index, cols) = best
    parsed = ParsedStatement(lines=[])
    seen: set[str] = set()

    def cell(row, name):
        j = cols.get(name)
        return row[j].strip() if j is not None and j < len(row) else ""

    for index, row in enumerate(rows[header_index + 1:], start=header_index + 2):
        if not any(c.strip() for c in row):
            continue
        if len(parsed.lines) >= MAX_LINES:
            raise ImportFileError(f"The statement has more than {MAX_LINES:,} lines; export a shorter period.",
                                  code="too_many_rows")
        status = cell(row, "status")
        if status and status.lower() != "completed":
            parsed.skipped += 1
            continue
        paid_in = cell(row, "paid_in")
        if not paid_in or paid_in in ("-", "0", "0.00"):
            parsed.skipped += 1               # a charge or a withdrawal: nothing was paid in
            continue
        receipt = "".join(cell(row, "receipt").split()).upper()
        if not CODE_RE.match(receipt):
            parsed.errors.append(RowError(index, LABELS["receipt"],
                                          f"“{cell(row, 'receipt')}” is not an M-PESA code (10 letters or digits)"))
            continue
        if receipt in seen:
            parsed.skipped += 1
            continue
        try:
            completed_at = parse_time(cell(row, "time"))
        except ValueError as exc:
            parsed.errors.append(RowError(index, LABELS["time"], str(exc)))
            continue
        try:
            amount = parse_amount(paid_in)
        except ValueError as exc:
            parsed.errors.append(RowError(index, LABELS["paid_in"], str(exc)))
            continue
        if amount <= 0:
            parsed.skipped += 1
            continue
        seen.add(receipt)
        parsed.lines.append(StatementLine(row=index, receipt=receipt, completed_at=completed_at, amount=amount,
                                          account=cell(row, "account"), details=cell(row, "details"),
                                          other_party=cell(row, "other_party")))
    if not parsed.lines and not parsed.errors:
        raise ImportFileError("The statement has no completed payments in it.", code="no_lines")
    return parsed
