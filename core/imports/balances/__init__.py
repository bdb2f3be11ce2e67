"""Reading a fee-balance spreadsheet (DESIGN.md, "Spreadsheet import of balances").

Finance systems export messy files and the office must not have to hand-edit them: the sheet and
the header row are found (visible sheets first; a hidden sheet is never read), header names vary,
amounts come as numbers or as text in every spelling accountants use, and rows that are not data
(blank, totals, signature lines, captions) are skipped and counted. What cannot be read at all, or
only by guessing, raises `ImportFileError` with a message for the person who uploaded it; what is
wrong in a row becomes a `RowError` (row as the spreadsheet shows it, column as headed in the file,
reason) and the rest of the file is still read.

    grid.py     bytes → sheets of cells (xlsx/xlsm, xls, ods, csv/tsv/txt), with the zip checks
    headers.py  the header row, and which column is the balance
    cells.py    one cell: amounts, registration numbers, yes/no
    rows.py     the rows: data, errors, skipped; the whole file's result
"""
from .cells import (MAX_BALANCE, Ambiguous, CellProblem, ImportFileError, RowError, cell_text, normalize_reg,
                    parse_amount, parse_yes_no, read_amount)
from .grid import (MAX_FILE_BYTES, MAX_ROWS, READABLE_EXTENSIONS, READABLE_KINDS, estimate_rows, read_grid)
from .headers import EXPECTED, HEADER_SCAN_ROWS, Header, find_header
from .rows import BalanceRow, ParsedBalances, parse_balances, parse_rows

__all__ = ["MAX_BALANCE", "MAX_FILE_BYTES", "MAX_ROWS", "HEADER_SCAN_ROWS", "EXPECTED", "READABLE_EXTENSIONS",
           "READABLE_KINDS", "Ambiguous", "BalanceRow", "CellProblem", "Header", "ImportFileError", "ParsedBalances",
           "RowError", "cell_text", "estimate_rows", "find_header", "normalize_reg", "parse_amount", "parse_balances",
           "parse_rows", "parse_yes_no", "read_amount", "read_grid"]
