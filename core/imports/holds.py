"""Reading an office's list of holds (DESIGN.md, `import_holds`): the library's overdue list, the
hostels' damage list — a registration number, what is held (a book's title, the damage) and, if
the office charges one, an amount.

The same file rules as the balances (core/imports/balances): any of the formats and encodings the
grid reads, the header row found wherever it is, header names in other words, rows that are not
data skipped and counted, registration numbers and amounts in every spelling. What differs:
- the columns (`SPEC`): registration number and reason required, amount optional;
- a blank amount is no amount (the hold has none), not 0; a negative amount is an error;
- a student may have several rows: one hold per distinct reason (two books, two holds). Reasons
  are compared without regard to case and spacing (`reason_key`). The same reason twice with the
  same amount counts once; with different amounts the rows are errors (a correction, or a second
  copy? the office says, e.g. by writing "copy 2").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from .balances.cells import MAX_BALANCE, Ambiguous, CellProblem, RowError, blank
from .balances.headers import REG_COLUMN, Column, Columns, HeaderSpec, find_columns
from .balances.rows import (SHOW_ROWS, RowWalk, _cell, _Decimals, amount_in, decide_amounts, formulas_refused,
                            read_sheet)

REASON_MAX = 255            # Hold.reason's length

SPEC = HeaderSpec((
    REG_COLUMN,
    Column("reason", frozenset({
        "reason", "holdreason", "reasons", "title", "booktitle", "book", "books", "booktitles", "item", "items",
        "itemdescription", "itemname", "description", "details", "detail", "particulars", "damage", "damages",
        "damagedescription", "damagedetails", "damageditem", "holdfor", "overdueitem", "material"}),
        shown="a reason column (Reason, Title, Book, Item, Description, Details, Damage)"),
    Column("amount", frozenset({
        "amount", "amountdue", "amountowed", "fine", "fines", "fineamount", "charge", "charges", "cost",
        "replacementcost", "penalty", "value", "damagecost", "damagecharge", "amountcharged"}),
        required=False, shown="an amount column (Amount, Amount (KES), Fine, Charge, Cost)"),
))

# why a row is not data, as the preview says it
SKIPPED_WHY = {"blank": "blank row", "total": "a total or sub-total", "footer": "a signature, date or footer line",
               "header": "the header row repeated", "title": "a caption or title: no registration number"}

_SPACES = re.compile(r"\s+")


def reason_text(value) -> str:
    """The reason as the hold shows it: the cell's text with its spaces (any kind) collapsed."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACES.sub(" ", str(value)).strip()


def reason_key(reason: str) -> str:
    """What makes two reasons the same hold: case and spacing aside."""
    return _SPACES.sub(" ", reason).strip().casefold()


def hold_amount_error(amount: Decimal) -> str | None:
    if amount < 0:
        return f"KES {amount:,.2f} is negative; a hold's amount is what the student owes (leave it blank for none)"
    if amount > MAX_BALANCE:
        return f"KES {amount:,.2f} is more than any charge (limit {MAX_BALANCE:,.0f})"
    return None


@dataclass
class HoldRow:
    row: int
    registration_number: str
    reason: str
    amount: Decimal | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.registration_number, reason_key(self.reason)


@dataclass
class ParsedHolds:
    rows: list[HoldRow]
    errors: list[RowError]
    sheet: str
    columns: Columns
    rows_read: int = 0
    duplicate_rows: int = 0
    skipped_rows: list[int] = field(default_factory=list)       # not data: totals, captions, blank rows
    skipped_why: dict = field(default_factory=dict)             # skipped row → why (SKIPPED_WHY's keys)
    skipped_total_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    # students named in rows with errors: a full list does not release their holds (the row that
    # could not be read may be the one that keeps the hold)
    error_students: set[str] = field(default_factory=set)

    def preview_warnings(self) -> list[str]:
        out = list(self.warnings)
        if self.duplicate_rows:
            out.append(f"{self.duplicate_rows} row(s) repeat another row exactly (same student, same reason, same "
                       "amount) and were counted once.")
        if self.skipped_rows:
            n = len(self.skipped_rows)
            shown = ", ".join(str(r) for r in self.skipped_rows[:SHOW_ROWS]) + (", …" if n > SHOW_ROWS else "")
            out.append(f"Skipped: {n} row{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not data "
                       f"(totals, signature or title lines, blank rows): row{'s' if n != 1 else ''} {shown}.")
        return out


def find_hold_columns(rows):
    return find_columns(rows, SPEC)


def parse_hold_rows(rows: list[list], columns: Columns, sheet: str) -> ParsedHolds:
    reg_i, reason_i, amount_i = columns.get("reg"), columns.get("reason"), columns.get("amount")
    label_reg, label_reason = columns.labels["reg"], columns.labels["reason"]
    label_amount = columns.labels.get("amount", "")
    walk = RowWalk(rows, columns.row, reg_i, label_reg, (reason_i, amount_i))
    errors = walk.errors
    decimals = _Decimals()
    parsed: list[HoldRow] = []
    ambiguous = []
    error_regs: set[str] = set()
    for number, row, reg, ok in walk:
        reason_value = _cell(row, reason_i)
        reason = ""
        if isinstance(reason_value, CellProblem):
            if reason_value.kind == CellProblem.FORMULA:
                walk.formulas.append((number, label_reason))
            else:
                errors.append(RowError(number, label_reason, reason_value.reason("a reason"), reason_value))
            ok = False
        elif blank(reason_value):
            errors.append(RowError(number, label_reason, "no reason: say what is held (the book's title, the damage)",
                                   ""))
            ok = False
        else:
            reason = reason_text(reason_value)
            if len(reason) > REASON_MAX:
                errors.append(RowError(number, label_reason, f"the reason is {len(reason)} characters long; a hold's "
                                                             f"reason may have at most {REASON_MAX}", reason_value))
                ok = False
        amount = None
        amount_value = _cell(row, amount_i) if amount_i is not None else None
        if not blank(amount_value):
            amount, read = amount_in(amount_value, number, label_amount, walk, decimals)
            if read and not isinstance(amount, Ambiguous):
                problem = hold_amount_error(amount)
                if problem:
                    errors.append(RowError(number, label_amount, problem, amount_value))
                    read = False
            ok = ok and read
        kept = None
        if ok:
            kept = HoldRow(number, reg, reason, amount)
            parsed.append(kept)
        elif reg:
            error_regs.add(reg)
        if isinstance(amount, Ambiguous):
            ambiguous.append((kept, amount, number, amount_value))
    if walk.formulas:
        raise formulas_refused(walk.formulas)
    if ambiguous:
        before = {id(r) for r in parsed}
        parsed = decide_amounts(parsed, ambiguous, decimals, errors, label_amount, attr="amount",
                                limit=hold_amount_error)
        kept_now = {id(r) for r in parsed}
        error_regs |= {kept.registration_number for kept, *_ in ambiguous
                       if kept is not None and id(kept) in before - kept_now}
    rows_out, duplicates = _merge(parsed, errors, label_reason, error_regs)
    errors.sort(key=lambda e: (e.row, e.column))
    return ParsedHolds(rows=rows_out, errors=errors, sheet=sheet, columns=columns, rows_read=walk.rows_read,
                       duplicate_rows=duplicates, skipped_rows=walk.skipped, skipped_why=walk.why,
                       skipped_total_rows=walk.totals,
                       warnings=list(columns.notes), error_students=error_regs)


def _merge(parsed: list[HoldRow], errors: list[RowError], label_reason: str, error_regs: set[str]):
    """One hold per student and distinct reason: identical repeats count once, repeats with
    different amounts are all errors."""
    groups: dict[tuple[str, str], list[HoldRow]] = {}
    for r in parsed:
        groups.setdefault(r.key, []).append(r)
    out, duplicates = [], 0
    for group in groups.values():
        if len({g.amount for g in group}) == 1:
            out.append(group[0])
            duplicates += len(group) - 1
            continue
        rows_text = ", ".join(str(g.row) for g in group)
        error_regs.add(group[0].registration_number)
        for g in group:
            shown = f"KES {g.amount:,.2f}" if g.amount is not None else "no amount"
            errors.append(RowError(g.row, label_reason, f"{g.registration_number} is held for “{g.reason}” in rows "
                                                        f"{rows_text} with different amounts (here {shown}); keep one "
                                                        "row, or tell the items apart in the reason", g.reason))
    out.sort(key=lambda r: r.row)
    return out, duplicates


def parse_holds(data: bytes) -> ParsedHolds:
    """Read and check an office's list of holds. Raises ImportFileError (a ValidationError) when
    the file cannot be read at all, has no header row with a registration number and a reason
    column, holds its list only on a hidden sheet, or has formulas without computed values."""
    sheet, rows, columns, warnings = read_sheet(data, find_hold_columns, what="holds", expected=SPEC.expected)
    parsed = parse_hold_rows(rows, columns, sheet.name)
    parsed.warnings.extend(warnings)
    return parsed
