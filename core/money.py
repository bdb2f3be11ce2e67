"""The one way an amount of money reads, in pages, messages, history and files' text: `KES 2,500.00`.

Negative amounts (credits) read `-KES 1,200.00`; no amount reads as the caller decides (`blank`)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation


def kes(amount, blank: str = "") -> str:
    """`KES 2,500.00` for 2500, `-KES 1,200.00` for -1200; `blank` for None or what is not a number."""
    if amount is None or amount == "":
        return blank
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        return blank
    if not value.is_finite():
        return blank
    sign = "-" if value < 0 else ""
    return f"{sign}KES {abs(value):,.2f}"
