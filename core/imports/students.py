"""Reading the registry's list of graduands exported by the student records system: one row per
student — registration number, names, programme, school, expected graduation year and, when the
export has them, year of study, hostel resident, email and phone.

The same file rules as the balances (core/imports/balances): any of the formats and encodings the
grid reads, the header row found wherever it is, hidden sheets never read, header names in other
words (`SPEC`), rows that are not data (blank, totals, footers, captions such as "SCHOOL OF
EDUCATION") skipped and counted, registration numbers in every spelling. What differs:
- names come either as two columns (Surname / Last Name, and Other Names / First Name / Given
  Names) or as one (Name, Student Name, Full Name), split by `split_name`;
- programme and school are written as a code or a name; which programme or school they are is the
  service's to say (it knows the ones in the database): here they are only read as text;
- a registration number may appear once: every row of a number that appears twice is an error
  (which of them is right is for the registry to say, not for the reader to guess);
- optional cells left blank mean "as the student has it" for a student already in the system.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from ..models import REGISTRATION_NUMBER_RE
from .balances.cells import CellProblem, ImportFileError, RowError, blank
from .balances.headers import REG_COLUMN, Column, Columns, HeaderSpec, find_columns
from .balances.rows import SHOW_ROWS, RowWalk, _cell, formulas_refused, read_sheet

NAME_MAX = 100              # Student.first_name / last_name
PHONE_MAX = 20              # Student.phone
EMAIL_MAX = 254             # Student.email
FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_YEAR_OF_STUDY = 8

SPEC = HeaderSpec((
    REG_COLUMN,
    Column("surname", frozenset({"surname", "lastname", "familyname", "sirname"}), required=False,
           shown="a surname column (Surname, Last Name)"),
    Column("other_names", frozenset({"othernames", "othername", "firstname", "firstnames", "givennames", "givenname",
                                     "forenames", "forename", "middlename"}), required=False,
           shown="an other names column (Other Names, First Name, Given Names)"),
    Column("name", frozenset({"name", "names", "studentname", "studentnames", "fullname", "fullnames",
                              "nameofstudent", "studentfullname"}), required=False,
           shown="or one name column (Name, Student Name)"),
    Column("programme", frozenset({"programme", "program", "programmecode", "programcode", "programmename",
                                   "programname", "course", "coursecode", "coursename", "degree",
                                   "degreeprogramme", "programmeofstudy", "courseofstudy"}),
           shown="a programme column (Programme, Program, Course: its code or name)"),
    Column("school", frozenset({"school", "schoolcode", "schoolname", "faculty", "facultycode", "facultyname"}),
           shown="a school column (School, Faculty: its code or name)"),
    Column("graduation", frozenset({"expectedgraduation", "expectedgraduationyear", "graduationyear", "gradyear",
                                    "cohort", "yearofgraduation", "expectedgradyear", "graduation",
                                    "expectedyearofgraduation", "expectedcompletion", "completionyear"}),
           shown="an expected graduation column (Expected Graduation, Graduation Year, Cohort)"),
    Column("year_of_study", frozenset({"yearofstudy", "studyyear", "yos", "currentyear", "yearlevel", "levelofstudy"}),
           required=False, shown="a year of study column"),
    Column("resident", frozenset({"hostel", "resident", "isresident", "hostelresident", "residence", "residential",
                                  "boarder", "inhostel", "livesinhostel", "residentstatus", "residency"}),
           required=False, shown="a hostel column (Hostel, Resident: yes/no)"),
    Column("email", frozenset({"email", "emailaddress", "studentemail", "mail", "emailid", "studentemailaddress"}),
           required=False, shown="an email column"),
    Column("phone", frozenset({"phone", "phonenumber", "phoneno", "mobile", "mobileno", "mobilenumber", "tel",
                               "telephone", "telephoneno", "cellphone", "phonemobile", "contact", "contactphone"}),
           required=False, shown="a phone column"),
))
NAMES_EXPECTED = ("either a surname column (Surname, Last Name) and an other names column (Other Names, First Name, "
                  "Given Names), or one name column (Name, Student Name)")

SKIPPED_WHY = {"blank": "blank row", "total": "a total or sub-total", "footer": "a signature, date or footer line",
               "header": "the header row repeated", "title": "a caption or title: no registration number"}

_SPACES = re.compile(r"\s+")
_REG = re.compile(REGISTRATION_NUMBER_RE)
_YEAR = re.compile(r"^(?:(?:class\s+of|cohort|year)\s*)?(\d+)(?:\.0+)?$", re.IGNORECASE)
_YEAR_OF_STUDY = re.compile(r"^(?:year\s*)?(\d{1,2})(?:st|nd|rd|th)?(?:\s*year)?$", re.IGNORECASE)
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_RESIDENT_YES = {"YES", "Y", "TRUE", "1", "RESIDENT", "R", "HOSTEL", "BOARDER", "INHOSTEL"}
_RESIDENT_NO = {"NO", "N", "FALSE", "0", "NONRESIDENT", "NR", "NONE", "DAY", "DAYSCHOLAR", "OFFCAMPUS", "-"}


@dataclass
class StudentRow:
    row: int
    registration_number: str
    last_name: str
    first_name: str
    programme: str                  # as written: a code or a name (the service resolves it)
    school: str
    graduation_year: int
    year_of_study: int | None = None
    is_resident: bool | None = None     # None: not given (a new student is not resident; others keep theirs)
    email: str | None = None
    phone: str | None = None


@dataclass
class ParsedStudents:
    rows: list[StudentRow]
    errors: list[RowError]
    sheet: str
    columns: Columns
    rows_read: int = 0
    skipped_rows: list[int] = field(default_factory=list)
    skipped_why: dict = field(default_factory=dict)
    skipped_total_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    error_students: set[str] = field(default_factory=set)      # registration numbers in rows with errors

    def preview_warnings(self) -> list[str]:
        out = list(self.warnings)
        if self.skipped_rows:
            n = len(self.skipped_rows)
            shown = ", ".join(str(r) for r in self.skipped_rows[:SHOW_ROWS]) + (", …" if n > SHOW_ROWS else "")
            out.append(f"Skipped: {n} row{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not data "
                       f"(totals, signature or title lines, blank rows): row{'s' if n != 1 else ''} {shown}.")
        return out


# --- one cell ---------------------------------------------------------------------------------

def _typed_problem(value, what: str) -> str | None:
    if isinstance(value, CellProblem):
        return value.reason(what)
    if isinstance(value, bool):
        return f"a yes/no value ({'TRUE' if value else 'FALSE'}) where {what} belongs"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a date ({value.isoformat()[:10]}) where {what} belongs"
    if isinstance(value, (datetime.time, datetime.timedelta)):
        return f"a time ({value}) where {what} belongs"
    return None


def text_of(value, what: str) -> str:
    """A text cell with its spaces (any kind) collapsed; ValueError(reason) for a cell that is not text."""
    problem = _typed_problem(value, what)
    if problem:
        raise ValueError(problem)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACES.sub(" ", str(value)).strip()


def split_name(full: str) -> tuple[str, str]:
    """(surname, other names) of one name cell. The rule, in order:
    1. a comma separates the surname from the other names: "Otieno, Mary Akinyi";
    2. a first word written in capitals before words that are not is the surname, as records
       systems print it: "OTIENO Mary Akinyi";
    3. otherwise the last word is the surname: "Mary Akinyi Otieno".
    ValueError when there are not two names."""
    if "," in full:
        surname, _, others = full.partition(",")
        surname, others = surname.strip(), others.strip().strip(",").strip()
    else:
        words = full.split()
        if len(words) < 2:
            raise ValueError(f"“{full}” is one name; write the surname and the other names")
        first, rest = words[0], words[1:]
        if first.isupper() and len(first) > 1 and not all(w.isupper() for w in rest):
            surname, others = first, " ".join(rest)
        else:
            surname, others = words[-1], " ".join(words[:-1])
    if not surname or not others:
        raise ValueError(f"“{full}” does not give both a surname and other names")
    return surname, others


def parse_year(value) -> int:
    """An expected graduation year: 2026, 2026.0, "2026", "Class of 2026"; ValueError otherwise."""
    problem = _typed_problem(value, "a year")
    if problem:
        raise ValueError(problem)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"“{value}” is not a year")
        year = int(value)
    else:
        match = _YEAR.match(_SPACES.sub(" ", str(value)).strip())
        if match is None:
            raise ValueError(f"“{str(value).strip()}” is not a year (write it as 2026)")
        year = int(match.group(1))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{year} is not a graduation year ({FIRST_YEAR} to {LAST_YEAR})")
    return year


def parse_year_of_study(value) -> int:
    problem = _typed_problem(value, "a year of study")
    if problem:
        raise ValueError(problem)
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    match = _YEAR_OF_STUDY.match(text)
    if match is None or not 1 <= int(match.group(1)) <= MAX_YEAR_OF_STUDY:
        raise ValueError(f"“{text}” is not a year of study (1 to {MAX_YEAR_OF_STUDY})")
    return int(match.group(1))


def parse_resident(value) -> bool | None:
    """Lives in a hostel: Yes/No/Y/N/True/False/1/0/Resident/Non-resident/Day scholar; blank → None."""
    if blank(value):
        return None
    if isinstance(value, bool):
        return value
    problem = _typed_problem(value, "yes or no")
    if problem:
        raise ValueError(problem)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = re.sub(r"[\s\-_]", "", str(value)).upper()
    if key in _RESIDENT_YES:
        return True
    if key in _RESIDENT_NO:
        return False
    raise ValueError(f"“{str(value).strip()}” is not yes or no (resident in a hostel)")


def parse_email(value) -> str:
    text = text_of(value, "an email address").lower()
    if len(text) > EMAIL_MAX:
        raise ValueError(f"an email address of {len(text)} characters; at most {EMAIL_MAX}")
    try:
        validate_email(text)
    except ValidationError:
        raise ValueError(f"“{text}” is not an email address") from None
    return text


def parse_phone(value) -> str:
    """Digits with an optional leading +; a Kenyan number whose leading 0 the spreadsheet dropped
    (712345678) gets it back."""
    problem = _typed_problem(value, "a phone number")
    if problem:
        raise ValueError(problem)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _PHONE_SEPARATORS.sub("", str(value).strip()).lstrip("'")
    digits = text[1:] if text.startswith("+") else text
    if not digits.isdigit() or not 9 <= len(digits) <= 15 or len(text) > PHONE_MAX:
        raise ValueError(f"“{str(value).strip()}” is not a phone number")
    if not text.startswith("+") and len(digits) == 9 and digits[0] in "17":
        text = "0" + digits
    return text


# --- the rows -----------------------------------------------------------------------------------

def find_student_columns(rows):
    return find_columns(rows, SPEC)


def _names(row, columns: Columns, number: int, errors: list[RowError]) -> tuple[str, str] | None:
    labels = columns.labels
    if columns.get("surname") is not None and columns.get("other_names") is not None:
        out = []
        for name, what in (("surname", "a surname"), ("other_names", "the other names")):
            value = _cell(row, columns.get(name))
            try:
                text = "" if blank(value) else text_of(value, what)
            except ValueError as exc:
                errors.append(RowError(number, labels[name], str(exc), value))
                return None
            if not text:
                errors.append(RowError(number, labels[name], f"no {what.removeprefix('a ').removeprefix('the ')}",
                                       ""))
                return None
            out.append(text)
        surname, others = out
    else:
        value = _cell(row, columns.get("name"))
        try:
            text = "" if blank(value) else text_of(value, "a name")
            if not text:
                raise ValueError("no name")
            surname, others = split_name(text)
        except ValueError as exc:
            errors.append(RowError(number, labels["name"], str(exc), value))
            return None
    label = labels.get("surname") or labels["name"]
    for part in (surname, others):
        if len(part) > NAME_MAX:
            errors.append(RowError(number, label, f"a name of {len(part)} characters; at most {NAME_MAX}", part))
            return None
    return surname, others


def _required_text(row, columns, name, what, number, errors) -> str | None:
    value = _cell(row, columns.get(name))
    try:
        text = "" if blank(value) else text_of(value, what)
    except ValueError as exc:
        errors.append(RowError(number, columns.labels[name], str(exc), value))
        return None
    if not text:
        errors.append(RowError(number, columns.labels[name], f"no {what.removeprefix('a ')}", ""))
        return None
    return text


def _optional(row, columns, name, parse, number, errors):
    """(value or None, ok)."""
    index = columns.get(name)
    if index is None:
        return None, True
    value = _cell(row, index)
    if blank(value):
        return None, True
    try:
        return parse(value), True
    except ValueError as exc:
        errors.append(RowError(number, columns.labels[name], str(exc), value))
        return None, False


def parse_student_rows(rows: list[list], columns: Columns, sheet: str) -> ParsedStudents:
    index = columns.get
    value_columns = tuple(index(n) for n in ("surname", "other_names", "name", "programme", "school", "graduation"))
    walk = RowWalk(rows, columns.row, index("reg"), columns.labels["reg"], value_columns)
    errors = walk.errors
    parsed: list[StudentRow] = []
    error_rows: dict[str, list[int]] = {}          # registration number → its rows with errors
    for number, row, reg, ok in walk:
        if ok and not _REG.match(reg):
            errors.append(RowError(number, columns.labels["reg"], f"“{reg}” is not a registration number of the form "
                                                                  "SCHOOL/DEPT/NNNN/YYYY (e.g. SCE/CS/0001/2022)",
                                   _cell(row, index("reg"))))
            ok = False
        names = _names(row, columns, number, errors)
        programme = _required_text(row, columns, "programme", "a programme", number, errors)
        school = _required_text(row, columns, "school", "a school", number, errors)
        graduation_value = _cell(row, index("graduation"))
        graduation = None
        if blank(graduation_value):
            errors.append(RowError(number, columns.labels["graduation"], "no expected graduation year", ""))
        else:
            try:
                graduation = parse_year(graduation_value)
            except ValueError as exc:
                errors.append(RowError(number, columns.labels["graduation"], str(exc), graduation_value))
            else:
                admitted = int(reg[-4:]) if ok else None
                if admitted is not None and graduation < admitted:
                    errors.append(RowError(number, columns.labels["graduation"],
                                           f"graduates in {graduation}, before being admitted in {admitted}",
                                           graduation_value))
                    graduation = None
        year_of_study, ok_year = _optional(row, columns, "year_of_study", parse_year_of_study, number, errors)
        resident, ok_resident = _optional(row, columns, "resident", parse_resident, number, errors)
        email, ok_email = _optional(row, columns, "email", parse_email, number, errors)
        phone, ok_phone = _optional(row, columns, "phone", parse_phone, number, errors)
        if (ok and names is not None and programme is not None and school is not None and graduation is not None
                and ok_year and ok_resident and ok_email and ok_phone):
            parsed.append(StudentRow(number, reg, names[0], names[1], programme, school, graduation,
                                     year_of_study, resident, email, phone))
        elif reg:
            error_rows.setdefault(reg, []).append(number)
    if walk.formulas:
        raise formulas_refused(walk.formulas)
    rows_out = _refuse_duplicates(parsed, errors, columns.labels["reg"], error_rows)
    errors.sort(key=lambda e: (e.row, e.column))
    return ParsedStudents(rows=rows_out, errors=errors, sheet=sheet, columns=columns, rows_read=walk.rows_read,
                          skipped_rows=walk.skipped, skipped_why=walk.why, skipped_total_rows=walk.totals,
                          warnings=list(columns.notes), error_students=set(error_rows))


def _refuse_duplicates(parsed: list[StudentRow], errors: list[RowError], label_reg: str,
                       error_rows: dict[str, list[int]]) -> list[StudentRow]:
    """A registration number in two rows (or in a good row and a row with errors): every such row
    is an error, even when they agree — one student, one row. The numbers end in `error_rows`."""
    rows_of: dict[str, list[int]] = {}
    for r in parsed:
        rows_of.setdefault(r.registration_number, []).append(r.row)
    bad = {reg for reg, rows in rows_of.items() if len(rows) + len(error_rows.get(reg, ())) > 1}
    if not bad:
        return parsed
    out = []
    for r in parsed:
        reg = r.registration_number
        if reg not in bad:
            out.append(r)
            continue
        others = sorted(n for n in [*rows_of[reg], *error_rows.get(reg, ())] if n != r.row)
        errors.append(RowError(r.row, label_reg, f"{reg} is also in row{'s' if len(others) > 1 else ''} "
                                                 f"{', '.join(map(str, others))}; a student is listed once (keep one "
                                                 "row)", reg))
    for reg in bad:
        error_rows.setdefault(reg, [])
    return out


def parse_students(data: bytes) -> ParsedStudents:
    """Read and check a list of graduands. Raises ImportFileError (a ValidationError) when the file
    cannot be read at all, has no header row with the required columns, names its students neither
    by surname and other names nor by one name column, holds its list only on a hidden sheet, or has
    registration numbers that are formulas without computed values."""
    sheet, rows, columns, warnings = read_sheet(data, find_student_columns, what="graduands",
                                                expected=SPEC.expected)
    two = columns.get("surname") is not None and columns.get("other_names") is not None
    if not two and columns.get("name") is None:
        raise ImportFileError(f"The header row (row {columns.row}) has no names: expected {NAMES_EXPECTED}.",
                              code="no_names")
    if two and columns.get("name") is not None:
        warnings.append(f"The names are read from “{columns.labels['surname']}” and “{columns.labels['other_names']}”; "
                        f"“{columns.labels['name']}” not read.")
    parsed = parse_student_rows(rows, columns, sheet.name)
    parsed.warnings.extend(warnings)
    return parsed
