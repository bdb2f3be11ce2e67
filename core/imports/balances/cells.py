"""What one cell of a balances file says: an amount in any spelling accountants use, a
registration number, yes/no; and `CellProblem`, which the file readers put in the grid where a
cell's value cannot be trusted (a formula without a computed value, an error value, a percentage).

Amounts whose separators are ambiguous on their own (`12.500`, `12,500`: one separator before
exactly three digits) come back as `Ambiguous`; the column decides them (rows.py), never the cell.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError

MAX_BALANCE = Decimal("10000000")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
POINT, COMMA = ".", ","           # which separator a column writes its decimals with
_INF = float("inf")


class ImportFileError(ValidationError):
    """The file cannot be read as a balances spreadsheet at all; the message says why and what to do."""

    def __init__(self, message: str, code: str = "unreadable"):
        super().__init__(message, code=code)

    def __str__(self):
        return self.messages[0]


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


class CellProblem:
    """A cell whose value the file does not give reliably, put in the grid by the reader in place
    of what calamine returned ("" for a formula without a result or an error, 0.15 for 15%)."""
    FORMULA = "formula"        # a formula without a computed value, or one its writer did not compute
    ERROR = "error"            # #DIV/0!, #N/A, #VALUE! … (what the formula computed is an error)
    PERCENT = "percent"        # a number shown as a percentage
    __slots__ = ("kind", "shown", "formula")

    def __init__(self, kind: str, shown: str = "", formula: str = ""):
        self.kind, self.shown, self.formula = kind, shown, formula

    def reason(self, what: str) -> str:
        """Why this cell is not `what` ("an amount", "a registration number")."""
        if self.kind == self.ERROR:
            source = f" of the formula ={self.formula}" if self.formula else ""
            return f"“{self.shown}” is the error value{source}, not {what}"
        if self.kind == self.PERCENT:
            return f"a percentage ({self.shown}) where {what} belongs"
        return f"a formula (={self.formula}) without a computed value where {what} belongs"

    def __str__(self):
        return self.shown or (f"={self.formula}" if self.formula else "")

    def __repr__(self):
        return f"CellProblem({self.kind!r}, {self.shown!r}, {self.formula!r})"


# --- amounts ----------------------------------------------------------------------------------

_WS = re.compile(r"\s+")                 # every Unicode space: NBSP, thin and narrow spaces included
_NEG = "-\u2212\u2012\u2013"            # hyphen-minus, minus sign, figure dash, en dash
_NIL = {"", "-", "–", "—", "−", "NIL", "NONE", "0", "--", "---"}
_CUR_PREFIX = re.compile(r"^(?:KSHS|KSH|KES|SHS|SH)\.?")
_CUR_SUFFIX = re.compile(r"(?:KSHS|KSH|KES|SHS|/=|/-)\.?$")
_DRCR_PREFIX = re.compile(r"^(DR|CR)\.?")
_DRCR_SUFFIX = re.compile(r"(DR|CR)\.?$")
_FOREIGN = re.compile(r"^(USD|US\$|EUR|GBP|UGX|TZS|RWF|[$€£])|(USD|EUR|GBP|UGX|TZS|RWF|[$€£])$")
_DIGITS = re.compile(r"[0-9.,']*[0-9][0-9.,']*")
_GROUPED = {",": re.compile(r"\d{1,3}(?:,\d{3})+"), ".": re.compile(r"\d{1,3}(?:\.\d{3})+")}


class Ambiguous:
    """`12.500` or `12,500`: one separator before exactly three digits, thousands or decimals as
    the column writes them (its other cells tell)."""
    __slots__ = ("text", "sep", "whole", "part", "negative")

    def __init__(self, text: str, sep: str, whole: str, part: str, negative: bool):
        self.text, self.sep, self.whole, self.part, self.negative = text, sep, whole, part, negative

    def reading(self, decimal: str) -> Decimal:
        value = Decimal(f"{self.whole}.{self.part}" if decimal == self.sep else self.whole + self.part)
        value = value.quantize(CENT, ROUND_HALF_UP)
        return -value if self.negative else value

    def readings(self) -> str:
        as_thousands = self.reading(COMMA if self.sep == POINT else POINT)
        return f"KES {as_thousands:,.2f} or KES {self.reading(self.sep):,.2f}"


def _typed(value, what: str) -> ValueError:
    if isinstance(value, bool):
        return ValueError(f"a yes/no value ({'TRUE' if value else 'FALSE'}) where {what} belongs")
    if isinstance(value, datetime.datetime):
        shown = value.date().isoformat() if value.time() == datetime.time() else value.isoformat(" ")
        return ValueError(f"a date ({shown}) where {what} belongs")
    if isinstance(value, datetime.date):
        return ValueError(f"a date ({value.isoformat()}) where {what} belongs")
    if isinstance(value, datetime.time):
        return ValueError(f"a time of day ({value.isoformat()}) where {what} belongs")
    if isinstance(value, datetime.timedelta):
        return ValueError(f"a duration ({value}) where {what} belongs")
    if isinstance(value, CellProblem):
        return ValueError(value.reason(what))
    return ValueError(f"“{cell_text(value)}” is not {what}")


def read_amount(value) -> tuple[Decimal | Ambiguous, str | None]:
    """A balance as a cell has it → (Decimal KES, negative = credit, or `Ambiguous`; the decimal
    separator the cell shows, if it shows one). Raises ValueError(reason) for what is not an
    amount: text, a date, a yes/no, a percentage, another currency."""
    if type(value) is float:
        if value != value or value in (_INF, -_INF):
            raise ValueError("not a number")
        return Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP), None
    if type(value) is int:
        return Decimal(value).quantize(CENT), None
    if not isinstance(value, str):
        raise _typed(value, "an amount")
    text = _WS.sub("", value).upper()
    if text in _NIL:
        return ZERO, None
    if "%" in text:
        raise ValueError(f"a percentage (“{value.strip()}”) where an amount belongs")
    negative = credit = debit = False
    for _ in range(4):                   # "-KES 1,200", "KES (1,200.00)", "(1,200.00) CR" alike
        before = text
        if text[:1] == "(" and text[-1:] == ")":
            negative, text = True, text[1:-1]
        if text[:1] in _NEG:
            negative, text = True, text[1:]
        elif text[:1] == "+":
            text = text[1:]
        text = _CUR_SUFFIX.sub("", _CUR_PREFIX.sub("", text))      # before the trailing minus: "12,500/-"
        if text[-1:] in _NEG:            # "1,200.00-" (some ledgers)
            negative, text = True, text[:-1]
        mark = _DRCR_SUFFIX.search(text) or _DRCR_PREFIX.match(text)
        if mark:
            credit, debit = credit or mark.group(1) == "CR", debit or mark.group(1) == "DR"
            text = text[:mark.start()] + text[mark.end():]
        if text == before:
            break
    if debit and (credit or negative):
        raise ValueError(f"“{value.strip()}” is marked both as a debit (DR) and as a credit")
    negative = negative or credit
    if not text:
        raise ValueError(f"“{value.strip()}” has no amount")
    if text in _NIL:
        return ZERO, None
    if _FOREIGN.search(text):
        raise ValueError(f"“{value.strip()}” is not in KES")
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"“{value.strip()}” is not an amount")
    text = text.replace("'", "")                          # 1'250.00
    amount, decimal = _separated(text, value)
    if isinstance(amount, Ambiguous):
        amount.negative = negative
        return amount, None
    try:
        amount = Decimal(amount).quantize(CENT, ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"“{value.strip()}” is not an amount") from None
    return (-amount if negative else amount), decimal


def _separated(text: str, value: str) -> tuple[str | Ambiguous, str | None]:
    """Digits with `,` and `.` → (plain digits for Decimal, or Ambiguous; the decimal separator shown)."""
    commas, points = text.count(","), text.count(".")
    if not commas and not points:
        return text, None
    wrong = ValueError(f"“{value.strip()}” is not an amount (separators in the wrong places)")
    if commas and points:                                 # the last one is the decimal separator
        decimal = COMMA if text.rfind(",") > text.rfind(".") else POINT
        thousands = POINT if decimal == COMMA else COMMA
        whole, _, part = text.rpartition(decimal)
        if decimal in whole or not part or not _GROUPED[thousands].fullmatch(whole):
            raise wrong
        return whole.replace(thousands, "") + "." + part, decimal
    sep = COMMA if commas else POINT
    other = POINT if sep == COMMA else COMMA
    if commas + points > 1:                               # 1,250,000 / 1.250.000: thousands
        if not _GROUPED[sep].fullmatch(text):
            raise wrong
        return text.replace(sep, ""), other
    whole, _, part = text.partition(sep)
    if not part:
        raise wrong
    if len(part) == 3 and 1 <= len(whole) <= 3 and whole[0] != "0":
        return Ambiguous(value.strip(), sep, whole, part, False), None
    if sep == COMMA and len(part) > 3:                    # 12,5000: neither decimals nor thousands
        raise wrong
    return (whole or "0") + "." + part, sep


def parse_amount(value, decimal: str | None = None) -> Decimal:
    """A balance as written in a cell → Decimal KES (negative = credit). Raises ValueError(reason).
    `decimal`: the decimal separator of the column, when known. Without it a lone `12,500` is
    twelve thousand five hundred (a comma before three digits groups thousands as Kenyan ledgers
    write them) and `12.500` is refused as ambiguous."""
    amount, _ = read_amount(value)
    if isinstance(amount, Ambiguous):
        if decimal is None and amount.sep == COMMA:
            decimal = POINT
        if decimal is None:
            raise ValueError(f"“{amount.text}” could be {amount.readings()}; write it without a thousands "
                             "separator")
        return amount.reading(decimal)
    return amount


def amount_limit_error(amount: Decimal) -> str | None:
    if amount > MAX_BALANCE or amount < -MAX_BALANCE:
        return f"KES {amount:,.2f} is absurd for a fee balance (limit ±{MAX_BALANCE:,.0f})"
    return None


# --- registration numbers, yes/no, display -----------------------------------------------------

REG_NUMBER_SHAPE = re.compile(r"^[A-Z0-9]{1,10}(?:/[A-Z0-9]{1,10}){2,5}$")
_INVISIBLE = str.maketrans("", "", "\u200b\u200c\u200d\u2060\ufeff\u00ad")
_QUOTES = "'‘’`\""


def normalize_reg(value) -> str:
    """As stored: upper case, no spaces of any kind (split() knows every Unicode space), without
    the apostrophe Excel users type to keep a value as text (`'SED/ECD/0007/2021`), nor `="…"`."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    reg = "".join(str(value).split()).upper()
    if not reg.isascii():
        reg = reg.translate(_INVISIBLE)
    if reg[:1] in _QUOTES or reg[:2] == '="':
        reg = reg.removeprefix("=").strip(_QUOTES)
    return reg


_YES = {"YES", "Y", "TRUE", "1", "PAID", "1.0", "X", "✓"}
_NO = {"NO", "N", "FALSE", "0", "UNPAID", "NOTPAID", "0.0", ""}


def parse_yes_no(value) -> bool | None:
    """Graduation fee paid: Yes/No/Y/N/True/False/1/0/Paid/Unpaid; blank → None (leave as is)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (CellProblem, datetime.date, datetime.time, datetime.timedelta)):
        raise _typed(value, "yes or no")
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


def blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the column as the spreadsheet heads it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
