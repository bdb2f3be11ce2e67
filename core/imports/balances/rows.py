"""From a sheet's cells to checked balance rows.

A row below the header is data, an error, or not data at all. Not data — skipped and counted,
never an error: blank rows, sub-totals and totals, signature and footer lines (“Prepared by:”,
“Checked by”, “Date printed”), captions between blocks (“SCHOOL OF EDUCATION”), the header
repeated on each printed page. A row whose registration number cell holds anything with a digit
in it is data, and an error if it fails. A blank amount next to a registration number is read as
0, as spreadsheet programs write a zero shown as blank, with a warning for that row.

Amounts the cell alone cannot decide (`12.500`: twelve thousand five hundred, or twelve and a
half?) are decided by the column: the separator its other amounts use for decimals. A column that
uses both is refused row by row for those cells, never guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from . import grid
from .cells import (CENT, COMMA, POINT, REG_NUMBER_SHAPE, ZERO, Ambiguous, CellProblem, ImportFileError, RowError,
                    amount_limit_error, blank, normalize_reg, parse_yes_no, read_amount)
from .headers import EXPECTED, HEADER_SCAN_ROWS, REG_HEADERS, Header, find_header, header_key

TOTAL = re.compile(r"^(?:sub[\s\-]*|grand[\s\-]*)?totals?\b|^sum\b|^(?:balance|total)s?\s+c/?f\b", re.IGNORECASE)
FOOTER = re.compile(r"^(?:(?:prepared|checked|approved|verified|authori[sz]ed|certified|reviewed|compiled|printed"
                    r"|generated|signed|received|confirmed)\s*(?:by|on|at)?\b|signature|sign\b|date\s*printed"
                    r"|print(?:ed)?\s*date|run\s*date|date\s*[:.]|page\s*\d|end\s+of\s+report|report\s+"
                    r"(?:generated|printed|run)|confidential|note[s]?\s*[:.]|source\s*:)", re.IGNORECASE)
SHOW_ROWS = 10                  # row numbers named in a warning before "…"


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
    rows_read: int = 0            # data rows: not blank, not a total, footer or caption
    skipped_total_rows: int = 0   # sub-totals and totals among the skipped rows
    duplicate_rows: int = 0       # identical repeats counted once
    skipped_rows: list[int] = field(default_factory=list)     # rows that are not data
    row_warnings: list[RowError] = field(default_factory=list)  # read, but the officer should look
    warnings: list[str] = field(default_factory=list)         # about the file: sheets, columns

    def preview_warnings(self) -> list:
        """What the preview shows before anything is applied: sentences about the file, then one
        {"row", "column", "reason", "value"} per row read with a doubt (a blank amount read as 0)."""
        out = list(self.warnings)
        if self.duplicate_rows:
            out.append(f"{self.duplicate_rows} row(s) repeat another row exactly and were counted once.")
        if self.skipped_rows:
            n = len(self.skipped_rows)
            shown = ", ".join(str(r) for r in self.skipped_rows[:SHOW_ROWS]) + (", …" if n > SHOW_ROWS else "")
            out.append(f"Skipped: {n} row{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not data "
                       f"(totals, signature or title lines, blank rows): row{'s' if n != 1 else ''} {shown}.")
        if self.row_warnings:
            n = len(self.row_warnings)
            out.append(f"{n} row{'s' if n != 1 else ''} with a registration number but no amount "
                       f"{'are' if n != 1 else 'is'} read as KES 0.00 (listed below): check them before confirming.")
        out.extend(w.as_dict() for w in self.row_warnings)
        return out


def _cell(row, index):
    if index is None or index >= len(row):
        return None
    return row[index]


def _marks_not_data(text) -> bool:
    return isinstance(text, str) and bool(TOTAL.match(text.strip()) or FOOTER.match(text.strip()))


def _not_data(row, reg_value, reg: str, bal_blank: bool) -> str | None:
    """"total", "footer", "header" or "title" when the row is not a student's; None when it is."""
    if isinstance(reg_value, str):
        text = reg_value.strip()
        if TOTAL.match(text):
            return "total"
        if FOOTER.match(text):
            return "footer"
        if header_key(text) in REG_HEADERS:
            return "header"                       # the header again, as printed at the top of each page
    if reg and any(ch.isdigit() for ch in reg):
        return None                               # shaped like a registration number: data, or an error
    for cell in row:
        if cell is not reg_value and _marks_not_data(cell):
            return "total" if TOTAL.match(cell.strip()) else "footer"
    if bal_blank and not isinstance(reg_value, CellProblem):
        return "title"                            # a caption between blocks, a name without a number
    return None


class _Decimals:
    """The decimal separator a column writes, from its amounts that show it unambiguously."""

    def __init__(self):
        self.first: dict[str, tuple[int, str]] = {}      # separator → (row, text) where first seen

    def saw(self, decimal: str, row: int, text) -> None:
        if decimal not in self.first:
            self.first[decimal] = (row, str(text).strip())

    def read(self, amb: Ambiguous) -> Decimal:
        """Raises ValueError(reason) when the column does not tell."""
        if len(self.first) == 1:
            return amb.reading(next(iter(self.first)))
        if not self.first and amb.sep == COMMA:
            return amb.reading(POINT)             # only thousands separators in this column: 12,500
        if self.first:
            (r1, t1), (r2, t2) = self.first[POINT], self.first[COMMA]
            why = (f"this column writes decimals both with a point (“{t1}”, row {r1}) and with a comma "
                   f"(“{t2}”, row {r2})")
        else:
            why = "nothing else in this column shows whether the point separates thousands or decimals"
        raise ValueError(f"“{amb.text}” could be {amb.readings()}: {why}; write it without a thousands separator")


def _is_blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, str) and not value.strip())


def data_rows(rows: list[list], header_row: int) -> list[list]:
    """The rows below the header, refused when more than MAX_ROWS of them hold anything."""
    below = rows[header_row:]
    if len(below) > grid.MAX_ROWS:
        if any(not all(blank(c) for c in r) for r in below[grid.MAX_ROWS:]):
            raise ImportFileError(f"The file has more than {grid.MAX_ROWS:,} rows; split it into smaller files.",
                                  code="too_many_rows")
        below = below[:grid.MAX_ROWS]
    return below


class RowWalk:
    """The rows below a header, as every import reads them: iterating yields `(number, row, reg,
    ok)` for each data row — its number as the spreadsheet shows it, its cells, the registration
    number as stored ("" when it cannot be read) and whether it could be (when not, the error is in
    `errors` already). Rows that are not data (blank, totals, footers, captions, the header again)
    are left out and counted in `skipped`/`totals`; registration numbers that are formulas without
    a computed value are collected in `formulas` (the caller refuses the file with them, with its
    own columns' alongside). `values` are the columns that make a row with no registration number
    data rather than a caption: a row blank in the registration number and all of them is blank."""

    def __init__(self, rows: list[list], header_row: int, reg: int, reg_label: str, values: tuple[int, ...]):
        self.rows, self.header_row, self.reg, self.reg_label = rows, header_row, reg, reg_label
        self.values = tuple(v for v in values if v is not None)
        self.errors: list[RowError] = []
        self.skipped: list[int] = []
        self.why: dict[int, str] = {}             # skipped row → "blank", "total", "footer", "header" or "title"
        self.formulas: list[tuple[int, str]] = []
        self.rows_read = self.totals = 0

    def __iter__(self):
        reg_i, label_reg, values, errors = self.reg, self.reg_label, self.values, self.errors
        shape = REG_NUMBER_SHAPE.match
        blank_run = 0
        for offset, row in enumerate(data_rows(self.rows, self.header_row)):
            reg_value = row[reg_i] if reg_i < len(row) else None
            reg_blank = _is_blank(reg_value)
            values_blank = all(_is_blank(_cell(row, i)) for i in values)
            number = self.header_row + 1 + offset
            if reg_blank and values_blank:
                blank_run += 1                    # counted as skipped only if data follows: not the trailing ones
                continue
            if blank_run:
                blanks = range(number - blank_run, number)
                self.skipped.extend(blanks)
                self.why.update(dict.fromkeys(blanks, "blank"))
                blank_run = 0
            reg_problem = isinstance(reg_value, CellProblem)
            reg = "" if reg_blank or reg_problem else normalize_reg(reg_value)
            reg_ok = bool(reg) and shape(reg) is not None
            if not reg_ok:
                kind = _not_data(row, reg_value, reg, values_blank)
                if kind:
                    self.skipped.append(number)
                    self.why[number] = kind
                    self.totals += kind == "total"
                    continue
            self.rows_read += 1
            if reg_problem:
                if reg_value.kind == CellProblem.FORMULA:
                    self.formulas.append((number, label_reg))
                else:
                    errors.append(RowError(number, label_reg, reg_value.reason("a registration number"), reg_value))
            elif reg_blank:
                errors.append(RowError(number, label_reg, "no registration number", reg_value))
            elif not reg_ok:
                errors.append(RowError(number, label_reg, f"“{str(reg_value).strip()}” is not a registration "
                                                          "number of the form SCHOOL/DEPT/NNNN/YYYY", reg_value))
            yield number, row, (reg if reg_ok else ""), reg_ok


def amount_in(value, number: int, label: str, walk: RowWalk, decimals: _Decimals):
    """A cell that is not blank, read as an amount: (Decimal, or Ambiguous for the column to
    decide, True), or (None, False) with the error — or the formula without a computed value —
    recorded in `walk`. The separator it shows for decimals is noted in `decimals`."""
    if type(value) is float and value - value == 0:            # finite: not nan, not ±inf
        return Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP), True   # the common case, kept cheap
    if isinstance(value, CellProblem) and value.kind == CellProblem.FORMULA:
        walk.formulas.append((number, label))
        return None, False
    try:
        amount, decimal = read_amount(value)
    except ValueError as exc:
        walk.errors.append(RowError(number, label, str(exc), value))
        return None, False
    if decimal is not None:
        decimals.saw(decimal, number, value)
    return amount, True


def parse_rows(rows: list[list], header: Header, sheet: str) -> ParsedBalances:
    parsed: list[BalanceRow] = []
    row_warnings: list[RowError] = []
    ambiguous: list[tuple[BalanceRow | None, Ambiguous, int, object]] = []
    decimals = _Decimals()
    label_reg, label_balance = header.labels["reg"], header.labels["balance"]
    label_grad = header.labels.get("grad")
    bal_i, grad_i, notes_i = header.balance, header.grad, header.notes
    walk = RowWalk(rows, header.row, header.reg, label_reg, (bal_i,))
    errors, formulas = walk.errors, walk.formulas
    for number, row, reg, ok in walk:
        bal_value = row[bal_i] if bal_i < len(row) else None
        bal_blank = _is_blank(bal_value)
        amount = None
        if bal_blank:
            if ok:
                amount = ZERO
                row_warnings.append(RowError(number, label_balance, "no amount: read as KES 0.00 (a zero shown as "
                                                                    "blank is written as an empty cell)", ""))
        else:
            amount, read = amount_in(bal_value, number, label_balance, walk, decimals)
            ok = ok and read
        if amount is not None and not isinstance(amount, Ambiguous):
            absurd = amount_limit_error(amount)
            if absurd:
                errors.append(RowError(number, label_balance, absurd, bal_value))
                ok = False
        paid = None
        if grad_i is not None:
            grad_value = _cell(row, grad_i)
            if isinstance(grad_value, CellProblem) and grad_value.kind == CellProblem.FORMULA:
                formulas.append((number, label_grad))
                ok = False
            else:
                try:
                    paid = parse_yes_no(grad_value)
                except ValueError as exc:
                    errors.append(RowError(number, label_grad, str(exc), grad_value))
                    ok = False
        kept = None
        if ok:
            notes = _cell(row, notes_i) if notes_i is not None else None
            notes = "" if blank(notes) or isinstance(notes, CellProblem) else str(notes).strip()
            kept = BalanceRow(number, reg, amount, paid, notes)
            parsed.append(kept)
        if isinstance(amount, Ambiguous):
            ambiguous.append((kept, amount, number, bal_value))
    if formulas:
        raise formulas_refused(formulas)
    if ambiguous:
        parsed = decide_amounts(parsed, ambiguous, decimals, errors, label_balance)
    rows_out, duplicates = _dedupe(parsed, errors, label_reg)
    errors.sort(key=lambda e: (e.row, e.column))
    return ParsedBalances(rows=rows_out, errors=errors, sheet=sheet, header=header, rows_read=walk.rows_read,
                          skipped_total_rows=walk.totals, duplicate_rows=duplicates, skipped_rows=walk.skipped,
                          row_warnings=row_warnings, warnings=[header.note] if header.note else [])


def decide_amounts(parsed: list, ambiguous, decimals: _Decimals, errors: list[RowError], label: str, *,
                   attr: str = "balance", limit=amount_limit_error) -> list:
    """The amounts only the column could decide, now that it has been read to the end:
    `ambiguous` holds (kept row or None, Ambiguous, row number, cell); each decided amount is set
    as the kept row's `attr`, or — when the column does not tell, or `limit(amount)` names a
    problem — an error, and the row is dropped."""
    dropped = set()
    for kept, amb, number, value in ambiguous:
        try:
            amount = decimals.read(amb)
            reason = limit(amount)
        except ValueError as exc:
            reason = str(exc)
        if reason:
            errors.append(RowError(number, label, reason, value))
            if kept is not None:
                dropped.add(id(kept))
        elif kept is not None:
            setattr(kept, attr, amount)
    return [r for r in parsed if id(r) not in dropped] if dropped else parsed


def _spans(numbers: list[int]) -> str:
    """[2, 3, 4, 9] → "2–4, 9" (at most a few spans)."""
    spans, start, prev = [], None, None
    for n in sorted(set(numbers)):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            spans.append((start, prev))
            start = prev = n
    if start is not None:
        spans.append((start, prev))
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in spans[:6])
    return text + (", …" if len(spans) > 6 else "")


def formulas_refused(formulas: list[tuple[int, str]]) -> ImportFileError:
    by_column: dict[str, list[int]] = {}
    for number, column in formulas:
        by_column.setdefault(column, []).append(number)
    where = "; ".join(f"column “{column}”, row{'s' if len(rows) > 1 else ''} {_spans(rows)}"
                      for column, rows in by_column.items())
    return ImportFileError(f"The amounts are formulas without computed values ({where}): the program that wrote "
                           "the file did not calculate them. Open and save the file in Excel or LibreOffice, then "
                           "upload it again.", code="formulas")


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


def read_sheet(data: bytes, find, *, what: str, expected: str):
    """(sheet, rows, header, warnings): the first visible sheet where `find(rows)` finds a header,
    read from `data`; `warnings` name the sheets not read. Raises ImportFileError when it cannot be
    read at all, or when reading it would mean guessing: the data only on a hidden sheet (`what`
    names it: "balances", "holds"), no header row on any sheet (`expected` says what one heads)."""
    tried, damaged = [], []
    sheets = grid.read_grid(data, find)
    for index, sheet in enumerate(sheets):
        if sheet.hidden:
            break
        rows = sheet.load()
        if rows is None:
            damaged.append(sheet.name)
            continue
        header = find(rows)
        if header is None:
            tried.append(sheet.name)
            continue
        warnings = []
        unread = [s for s in sheets[index + 1:] if not s.hidden]
        hidden = [s for s in sheets if s.hidden]
        if unread:
            warnings.append(f"Read the sheet “{sheet.name}”; the other sheet{'s' if len(unread) > 1 else ''} "
                            + ", ".join(f"“{s.name}”" for s in unread) + " not read.")
        if hidden:
            warnings.append("Hidden sheet" + ("s " if len(hidden) > 1 else " ")
                            + ", ".join(f"“{s.name}”" for s in hidden) + " not read.")
        return sheet, rows, header, warnings
    for sheet in (s for s in sheets if s.hidden):
        rows = sheet.load()
        if rows is not None and find(rows) is not None:
            raise ImportFileError(
                f"The {what} are on the hidden sheet “{sheet.name}”, and hidden sheets are not read (they often "
                f"hold last term's figures). If it holds this term's {what}, unhide it (right-click a sheet tab → "
                "Unhide, or Show Sheet), save the file and upload it again.", code="hidden_sheet")
    if damaged:
        raise ImportFileError(f"The sheet {', '.join(damaged)} is damaged and cannot be read; open the workbook, "
                              "save it again as .xlsx and upload it again.", code="damaged")
    if not tried:
        raise ImportFileError("The workbook has no sheets with data.", code="no_header")
    where = f" (sheets looked at: {', '.join(tried)})" if len(tried) > 1 else ""
    raise ImportFileError(f"No header row found in the first {HEADER_SCAN_ROWS} rows{where}: expected {expected}.",
                          code="no_header")


def parse_balances(data: bytes) -> ParsedBalances:
    """Read and check a balances file. Raises ImportFileError when it cannot be read at all, or
    when reading it would mean guessing: balances only on a hidden sheet, no way to tell which of
    two columns is the balance, formulas without computed values."""
    sheet, rows, header, warnings = read_sheet(data, find_header, what="balances", expected=EXPECTED)
    if header.problem:
        raise ImportFileError(header.problem, code="columns")
    parsed = parse_rows(rows, header, sheet.name)
    parsed.warnings.extend(warnings)
    return parsed
