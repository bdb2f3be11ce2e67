"""Reading an M-PESA organisation (Pay Bill) statement, as exported from the M-PESA portal in CSV.

The columns that matter: `Receipt No.` (the M-PESA code), `Completion Time`, `Paid In` (the amount
received), `A/C No.` (the account the payer typed, meant to be the registration number; payers
mistype it) and, when present, `Transaction Status` (only completed lines count). The header row is
found, not assumed on line 1 (the portal writes a few lines about the account above it); lines
that pay nothing in (charges, withdrawals) are skipped. What cannot be read at all raises
`ImportFileError`; a line with a bad code, time or amount becomes a `RowError` and the rest of the
file is still read.

Which student a line's `A/C No.` names is decided by `AccountIndex.match`, by the rule in
`ACCOUNT_RULE` (shown on the reconcile page as it is written here).
"""
from __future__ import annotations

import csv
import datetime
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

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
PHONE_RE = re.compile(r"^(\+?[0-9][0-9*]{8,14})\b")
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

    @property
    def phone(self) -> str:
        """The payer's phone as the statement shows it (`Other Party Info`, else `Details`:
        "2547… - NAME"); empty when neither starts with one. Masked digits (2547****123) are kept
        as shown."""
        for text in (self.other_party, self.details.removeprefix("Pay Bill from ")):
            match = PHONE_RE.match(text.strip())
            if match:
                return match.group(1)[:20]
        return ""


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


# --- which student an A/C No. names -------------------------------------------------------------

ACCOUNT_RULE = (
    "The A/C No. the payer typed is compared with registration numbers after dropping case, spaces, the "
    "separators / - . \\ _ and a leading apostrophe (so “'sce cs 0042-2022” reads SCECS00422022). It is the "
    "student's when it is exactly one student's number; or when it differs from exactly one student's number by "
    "one wrong character or two neighbouring characters swapped, and no other student's number is within one "
    "edit of it (a wrong, swapped, missing or extra character). When two or more numbers are that close it is "
    "ambiguous: the candidates are listed and none is proposed. Anything further is no match.")

ACCOUNT_SEPARATORS = re.compile(r"[\s/\-.\\_]+")
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def account_key(text) -> str:
    """`'sce/cs 0042-2022` → `SCECS00422022`: what is compared (see ACCOUNT_RULE)."""
    text = str(text or "").strip().lstrip("'’`")
    return ACCOUNT_SEPARATORS.sub("", text).upper()


def substitutions_and_swaps(key: str) -> Iterable[str]:
    """Every key one wrong character or one swap of two neighbouring characters away from `key`."""
    for i, c in enumerate(key):
        head, tail = key[:i], key[i + 1:]
        for other in KEY_ALPHABET:
            if other != c:
                yield head + other + tail
    for i in range(len(key) - 1):
        if key[i] != key[i + 1]:
            yield key[:i] + key[i + 1] + key[i] + key[i + 2:]


def insertions_and_deletions(key: str) -> Iterable[str]:
    """Every key one missing or one extra character away from `key`."""
    for i in range(len(key)):
        yield key[:i] + key[i + 1:]
    for i in range(len(key) + 1):
        for other in KEY_ALPHABET:
            yield key[:i] + other + key[i:]


@dataclass(frozen=True)
class AccountMatch:
    kind: str                         # "exact", "typo", "ambiguous" or "none"
    student_ids: tuple[int, ...] = ()  # the student (exact, typo) or the candidates (ambiguous)
    how: str = ""                     # for a typo: what differs, in words

    @property
    def student_id(self) -> int | None:
        return self.student_ids[0] if self.kind in ("exact", "typo") else None


NO_MATCH = AccountMatch("none")


class AccountIndex:
    """Registration numbers by their key (`account_key`), to match many A/C Nos. against once."""

    def __init__(self, students: Iterable[tuple[int, str]]):
        self.by_key: dict[str, list[int]] = {}
        for pk, registration_number in students:
            self.by_key.setdefault(account_key(registration_number), []).append(pk)
        self._memo: dict[str, AccountMatch] = {}

    def _ids(self, keys: Iterable[str]) -> dict[int, str]:
        found = {}
        for k in keys:
            for pk in self.by_key.get(k, ()):
                found.setdefault(pk, k)
        return found

    def match(self, account: str) -> AccountMatch:
        """The student the A/C No. names, by ACCOUNT_RULE."""
        key = account_key(account)
        if not key:
            return NO_MATCH
        if key not in self._memo:
            self._memo[key] = self._match(key)
        return self._memo[key]

    def _match(self, key: str) -> AccountMatch:
        exact = self.by_key.get(key, [])
        if len(exact) == 1:
            return AccountMatch("exact", (exact[0],))
        if exact:       # two numbers that differ only in separators: the payer's text cannot tell them apart
            return AccountMatch("ambiguous", tuple(sorted(exact)))
        typo = self._ids(substitutions_and_swaps(key))
        if not typo:
            return NO_MATCH
        near = {**self._ids(insertions_and_deletions(key)), **typo}
        if len(near) > 1:
            return AccountMatch("ambiguous", tuple(sorted(near)))
        (pk, other), = typo.items()
        return AccountMatch("typo", (pk,), how=_difference(key, other))


def _difference(typed: str, number: str) -> str:
    at = [i for i, (a, b) in enumerate(zip(typed, number)) if a != b]
    if len(at) == 2:
        return f"“{typed[at[0]:at[1] + 1]}” typed for “{number[at[0]:at[1] + 1]}” (two characters swapped)"
    return f"“{typed[at[0]]}” typed for “{number[at[0]]}” (one character wrong)"
