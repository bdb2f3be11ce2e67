"""The graduand reader (core/imports/students.py): the records system's export in its many shapes,
with the balance reader's file rules."""
from __future__ import annotations

import pytest

from core.imports.balances import ImportFileError
from core.imports.students import parse_resident, parse_students, parse_year, split_name

from .conftest import openpyxl_bytes

HEAD = "Adm No,Surname,Other Names,Programme,School,Graduation Year"


def parse(*lines, head=HEAD):
    return parse_students("\n".join([head, *lines]).encode())


def errors_of(parsed):
    return [(e.row, e.column, e.reason) for e in parsed.errors]


@pytest.mark.parametrize("head", [
    "Adm No,Surname,Other Names,Programme,School,Expected Graduation",
    "Reg. No.,Last Name,First Name,Program,Faculty,Cohort",
    "REGISTRATION NUMBER,SURNAME,GIVEN NAMES,PROGRAMME CODE,SCHOOL CODE,GRADUATION YEAR",
])
def test_header_names_in_other_words_and_below_a_title(head):
    parsed = parse_students(f"Student records system\nGraduands 2026\n{head}\n sce/cs/0001/2022 ,Otieno,Mary,"
                            "BSC-CS,SCE,2026\n".encode())
    (row,) = parsed.rows
    assert (row.row, row.registration_number, row.last_name, row.first_name, row.programme, row.school,
            row.graduation_year) == (4, "SCE/CS/0001/2022", "Otieno", "Mary", "BSC-CS", "SCE", 2026)
    assert (row.is_resident, row.email, row.phone, row.year_of_study) == (None, None, None, None)


@pytest.mark.parametrize("full, expected", [
    ("Otieno, Mary Akinyi", ("Otieno", "Mary Akinyi")),            # a comma: the surname before it
    ("OTIENO Mary Akinyi", ("OTIENO", "Mary Akinyi")),              # a first word in capitals
    ("Mary Akinyi Otieno", ("Otieno", "Mary Akinyi")),              # otherwise the last word
    ("MARY AKINYI OTIENO", ("OTIENO", "MARY AKINYI")),              # all capitals: the last word
])
def test_one_name_column_is_split_by_the_rule(full, expected):
    assert split_name(full) == expected
    parsed = parse(f'SCE/CS/0001/2022,"{full}",BSC-CS,SCE,2026', head="Reg No,Student Name,Programme,School,Cohort")
    assert (parsed.rows[0].last_name, parsed.rows[0].first_name) == expected


def test_one_word_is_not_a_name():
    parsed = parse("SCE/CS/0001/2022,Mary,BSC-CS,SCE,2026", head="Reg No,Name,Programme,School,Cohort")
    assert errors_of(parsed) == [(2, "Name", "“Mary” is one name; write the surname and the other names")]


def test_no_names_column_refuses_the_file():
    with pytest.raises(ImportFileError) as exc:
        parse("SCE/CS/0001/2022,BSC-CS,SCE,2026", head="Reg No,Programme,School,Cohort")
    assert exc.value.code == "no_names" and "Student Name" in str(exc.value)


def test_a_missing_required_column_names_what_is_expected():
    with pytest.raises(ImportFileError) as exc:
        parse("SCE/CS/0001/2022,Otieno,Mary,BSC-CS,SCE", head="Reg No,Surname,Other Names,Programme,School")
    assert exc.value.code == "no_header" and "Expected Graduation" in str(exc.value)


def test_title_total_and_blank_rows_are_skipped_and_counted():
    parsed = parse("SCHOOL OF COMPUTING,,,,,", "SCE/CS/0001/2022,Otieno,Mary,BSC-CS,SCE,2026", ",,,,,",
                   "SCE/CS/0002/2022,Kamau,John,BSC-CS,SCE,2026", "Total,,,,,", "Prepared by: Registrar,,,,,")
    assert [r.registration_number for r in parsed.rows] == ["SCE/CS/0001/2022", "SCE/CS/0002/2022"]
    assert parsed.skipped_rows == [2, 4, 6, 7] and parsed.errors == []
    assert parsed.skipped_why == {2: "title", 4: "blank", 6: "total", 7: "footer"}


def test_errors_name_the_row_the_column_and_why():
    parsed = parse("SCE/CS/0001/2022,Otieno,,BSC-CS,SCE,2026",
                   "SCE/CS/0002/2022,Kamau,John,,SCE,next year",
                   "SCE-CS-3,Wafula,Tom,BSC-CS,SCE,2026",
                   "SCE/CS/0004/2022,Njeri,Ann,BSC-CS,SCE,2020",
                   head="Adm No,Surname,Other Names,Programme,School,Graduation Year")
    assert errors_of(parsed) == [
        (2, "Other Names", "no other names"),
        (3, "Graduation Year", "“next year” is not a year (write it as 2026)"),
        (3, "Programme", "no programme"),
        (4, "Adm No", "“SCE-CS-3” is not a registration number of the form SCHOOL/DEPT/NNNN/YYYY"),
        (5, "Graduation Year", "graduates in 2020, before being admitted in 2022"),
    ]
    assert parsed.rows == [] and parsed.error_students == {"SCE/CS/0001/2022", "SCE/CS/0002/2022", "SCE/CS/0004/2022"}


def test_a_registration_number_twice_is_an_error_in_both_rows_even_when_they_agree():
    parsed = parse("SCE/CS/0001/2022,Otieno,Mary,BSC-CS,SCE,2026", "SCE/CS/0002/2022,Kamau,John,BSC-CS,SCE,2026",
                   "sce/cs/0001/2022,Otieno,Mary,BSC-CS,SCE,2026")
    assert [r.registration_number for r in parsed.rows] == ["SCE/CS/0002/2022"]
    assert errors_of(parsed) == [
        (2, "Adm No", "SCE/CS/0001/2022 is also in row 4; a student is listed once (keep one row)"),
        (4, "Adm No", "SCE/CS/0001/2022 is also in row 2; a student is listed once (keep one row)")]


def test_optional_columns_email_phone_hostel_and_year_of_study():
    head = HEAD + ",Year of Study,Hostel,Email Address,Mobile No"
    parsed = parse("SCE/CS/0001/2022,Otieno,Mary,BSC-CS,SCE,2026,4,Resident,Mary.Otieno@Example.org,712 345 678",
                   "SCE/CS/0002/2022,Kamau,John,BSC-CS,SCE,2026,,,,",
                   "SCE/CS/0003/2022,Wafula,Tom,BSC-CS,SCE,2026,9,maybe,tom@@x,12ab",
                   head=head)
    mary, john = parsed.rows
    assert (mary.year_of_study, mary.is_resident, mary.email, mary.phone) == (4, True, "mary.otieno@example.org",
                                                                            "0712345678")
    assert (john.year_of_study, john.is_resident, john.email, john.phone) == (None, None, None, None)
    assert errors_of(parsed) == [
        (4, "Email Address", "“tom@@x” is not an email address"),
        (4, "Hostel", "“maybe” is not yes or no (resident in a hostel)"),
        (4, "Mobile No", "“12ab” is not a phone number"),
        (4, "Year of Study", "“9” is not a year of study (1 to 8)")]


@pytest.mark.parametrize("value, year", [(2026, 2026), (2026.0, 2026), ("2026", 2026), (" Class of 2026 ", 2026),
                                         ("Cohort 2027", 2027)])
def test_years_in_every_spelling(value, year):
    assert parse_year(value) == year


@pytest.mark.parametrize("value", ["twenty", "2026/2027", 20026, 1999, 2026.5, True])
def test_not_a_year(value):
    with pytest.raises(ValueError):
        parse_year(value)


@pytest.mark.parametrize("value, resident", [("Yes", True), ("NON-RESIDENT", False), ("day scholar", False),
                                             (1, True), ("", None)])
def test_resident_in_words(value, resident):
    assert parse_resident(value) == resident


def test_xlsx_with_numbers_a_hidden_sheet_not_read():
    def build(wb):
        ws = wb.active
        ws.title = "Graduands"
        ws.append(["Graduands 2026"])
        ws.append(["Reg No", "Student Name", "Programme", "School", "Cohort", "Phone"])
        ws.append(["SCE/CS/0001/2022", "Otieno, Mary", "BSC-CS", "SCE", 2026, 712345678])
        ws.append(["Total", None, None, None, None, None])
        old = wb.create_sheet("Last year")
        old.append(["Reg No", "Student Name", "Programme", "School", "Cohort"])
        old.append(["SCE/CS/0009/2020", "Old, Student", "BSC-CS", "SCE", 2024])
        old.sheet_state = "hidden"
    parsed = parse_students(openpyxl_bytes(build))
    (row,) = parsed.rows
    assert (row.registration_number, row.graduation_year, row.phone) == ("SCE/CS/0001/2022", 2026, "0712345678")
    assert parsed.skipped_rows == [4]
    assert any("Hidden sheet “Last year” not read" in w for w in parsed.preview_warnings())


def test_a_list_only_on_a_hidden_sheet_is_refused():
    def build(wb):
        wb.active.append(["nothing here"])
        hidden = wb.create_sheet("Graduands")
        hidden.append(["Reg No", "Student Name", "Programme", "School", "Cohort"])
        hidden.append(["SCE/CS/0001/2022", "Otieno, Mary", "BSC-CS", "SCE", 2026])
        hidden.sheet_state = "hidden"
    with pytest.raises(ImportFileError) as exc:
        parse_students(openpyxl_bytes(build))
    assert exc.value.code == "hidden_sheet" and "graduands" in str(exc.value)
