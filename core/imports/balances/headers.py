"""Finding the header row and which column is which.

Header names vary (`Reg. No.`, `Adm No`; `Balance (KES)`, `Fee Balance`, `Outstanding`). When more
than one column could be the balance, one rule decides: a column marked as the closing balance
(c/f, carried forward, closing, current, as at …, to date) wins over the others, and a column
marked as the opening balance (b/f, brought forward, opening, previous) is never the balance.
Anything else (two closing columns, two plain ones) is refused naming the columns: a wrong choice
would write last term's figures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .cells import column_letter

HEADER_SCAN_ROWS = 30


def header_key(text) -> str:
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
                   "amountowed", "arrears", "feearrears", "netbalance", "currentbalance", "balancekes"}
GRAD_HEADERS = {"graduationfeepaid", "gradfeepaid", "graduationfeestatus", "gradfeestatus", "graduationpaid",
                "gradfee", "graduationfee"}
NOTES_HEADERS = {"notes", "note", "remarks", "remark", "comments", "comment"}
EXPECTED = ("a registration number column (registration_number, Reg No, Reg. No., Registration Number, "
            "Adm No, Admission No, Student No) and a balance column (tuition_balance, Balance, "
            "Balance (KES), Fee Balance, Amount Due, Outstanding)")

_B = r"(?<![a-z])"
_E = r"(?![a-z])"
CLOSING = re.compile(_B + r"(?:c\s*/\s*[fd]|c\.\s*[fd]\b\.?|cf|carried\s*(?:forward|fwd|down|over)|closing|current"
                     r"|as\s+(?:at|of|on)|to\s+date|now|ending)" + _E, re.IGNORECASE)
OPENING = re.compile(_B + r"(?:b\s*/\s*[fd]|b\.\s*[fd]\b\.?|bf|brought\s*(?:forward|fwd|down|over)|opening"
                     r"|previous|prior|last\s+(?:term|year|semester|month)|beginning)" + _E, re.IGNORECASE)
_AS_AT = re.compile(r"\bas\s+(?:at|of|on)\b.*$", re.IGNORECASE | re.DOTALL)


def _balance_role(text: str) -> str | None:
    """"closing", "opening" or "plain" for a header that names a balance; None for any other."""
    closing, opening = bool(CLOSING.search(text)), bool(OPENING.search(text))
    bare = OPENING.sub(" ", CLOSING.sub(" ", _AS_AT.sub(" ", text)))
    key = header_key(bare)
    if key not in BALANCE_HEADERS and header_key(text) not in BALANCE_HEADERS:
        return None
    if closing and opening:
        return "both"
    return "closing" if closing else "opening" if opening else "plain"


@dataclass
class Header:
    row: int                      # 1-based, as the spreadsheet shows it
    reg: int                      # column indexes
    balance: int | None
    grad: int | None = None
    notes: int | None = None
    labels: dict = field(default_factory=dict)   # "reg" → header text as in the file
    note: str = ""                # which balance column was chosen over which, for the preview
    problem: str = ""             # why no balance column can be chosen: the file is refused with it


def _named(row, col) -> str:
    return f"“{str(row[col]).strip()}” (column {column_letter(col)})"


def _choose_balance(row, candidates: list[tuple[int, str]]) -> tuple[int | None, str, str]:
    """(column, note, problem) among the columns whose header names a balance."""
    closing = [c for c, role in candidates if role == "closing"]
    plain = [c for c, role in candidates if role == "plain"]
    others = [c for c, _ in candidates]
    if len(closing) == 1:
        chosen, why = closing[0], "it is marked as the closing balance"
    elif len(closing) > 1:
        return None, "", ("More than one column is marked as the closing balance: " +
                          " and ".join(_named(row, c) for c in closing) +
                          ". Keep one of them (or rename the others) and upload the file again.")
    elif len(plain) == 1:
        chosen, why = plain[0], "the others are marked as opening balances (brought forward)"
    elif len(plain) > 1:
        return None, "", ("Two columns could be the balance: " + " and ".join(_named(row, c) for c in plain) +
                          ". Mark the closing one (e.g. “Balance (c/f)” or “Closing balance”), or remove the "
                          "other, and upload the file again.")
    else:
        return None, "", ("The only balance column" + ("s are " if len(others) > 1 else " is ") +
                          " and ".join(_named(row, c) for c in others) + ", marked as the opening balance "
                          "(brought forward), not what is owed now. Add the closing balance (e.g. “Balance "
                          "(c/f)”) and upload the file again.")
    rest = [c for c in others if c != chosen]
    note = ""
    if rest:
        note = (f"The balance is read from {_named(row, chosen)} because {why}; " +
                " and ".join(_named(row, c) for c in rest) + " not read.")
    return chosen, note, ""


def find_header(rows: list[list]) -> Header | None:
    """The first of the first HEADER_SCAN_ROWS rows that heads a registration number column and
    at least one balance column; `problem` says why it is unusable when no balance column can be
    chosen."""
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        found, candidates = {}, []
        for col, cell in enumerate(row):
            if not isinstance(cell, str) or not cell.strip():
                continue
            key = header_key(cell)
            role = _balance_role(cell)
            if role is not None:
                if role != "both":
                    candidates.append((col, role))
                continue
            for name, names in (("reg", REG_HEADERS), ("grad", GRAD_HEADERS), ("notes", NOTES_HEADERS)):
                if key in names and name not in found:
                    found[name] = col
        if "reg" in found and candidates:
            balance, note, problem = _choose_balance(row, candidates)
            if balance is not None:
                found["balance"] = balance
            return Header(row=index + 1, reg=found["reg"], balance=balance, grad=found.get("grad"),
                          notes=found.get("notes"), note=note, problem=problem,
                          labels={name: str(row[col]).strip() for name, col in found.items()})
    return None


# --- any other kind of file: a spec of named columns ------------------------------------------
# The balances' header has its own rule for choosing among balance columns (above). Other imports
# (an office's holds, the student records system's graduands) say which columns they read as a
# `HeaderSpec`; `find_columns` finds the header row by it, with the same key folding and scan.

@dataclass(frozen=True)
class Column:
    name: str                       # the reader's own name for it ("reg", "reason", "amount")
    keys: frozenset                 # the header_key()s that head it
    required: bool = True
    shown: str = ""                 # how the "expected …" message names it, with examples


@dataclass(frozen=True)
class HeaderSpec:
    columns: tuple[Column, ...]

    @property
    def expected(self) -> str:
        """The columns a header row must have, for the "No header row found" message."""
        need = [c.shown or c.name for c in self.columns if c.required]
        optional = [c.shown or c.name for c in self.columns if not c.required]
        text = " and ".join(need)
        return text + (f"; optionally {' and '.join(optional)}" if optional else "")


@dataclass
class Columns:
    """The header row found by a HeaderSpec: where each of its columns is."""
    row: int                                       # 1-based, as the spreadsheet shows it
    index: dict = field(default_factory=dict)      # column name → 0-based index
    labels: dict = field(default_factory=dict)     # column name → header text as in the file
    notes: list = field(default_factory=list)      # columns that could have been read and were not

    def get(self, name: str) -> int | None:
        return self.index.get(name)


REG_COLUMN = Column("reg", frozenset(REG_HEADERS), shown="a registration number column (Reg No, Reg. No., "
                    "Registration Number, Adm No, Admission No, Student No)")


def find_columns(rows: list[list], spec: HeaderSpec) -> Columns | None:
    """The first of the first HEADER_SCAN_ROWS rows that heads every required column of `spec`.
    Where two columns of the row could be the same one, the leftmost is read and the other is named
    in `notes`, for the preview."""
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        found: dict[str, int] = {}
        extra: dict[str, list[int]] = {}
        for col, cell in enumerate(row):
            if not isinstance(cell, str) or not cell.strip():
                continue
            key = header_key(cell)
            for column in spec.columns:
                if key in column.keys:
                    if column.name in found:
                        extra.setdefault(column.name, []).append(col)
                    else:
                        found[column.name] = col
                    break
        if all(c.name in found for c in spec.columns if c.required):
            notes = [f"The {name} is read from {_named(row, found[name])}; " + " and ".join(_named(row, c) for c in cols)
                     + " not read." for name, cols in extra.items()]
            return Columns(row=index + 1, index=found, notes=notes,
                           labels={name: str(row[col]).strip() for name, col in found.items()})
    return None
