"""Which student an M-PESA statement's A/C No. names (core.imports.mpesa.ACCOUNT_RULE), without a
database: exact after normalising, one wrong character, one swap of neighbours, ambiguous when
two numbers are as close, nothing when further."""
from __future__ import annotations

import pytest

from core.imports.mpesa import ACCOUNT_RULE, AccountIndex, StatementLine, account_key

NUMBERS = [(1, "SCE/CS/0042/2022"), (2, "SCE/CS/0050/2022"), (3, "SCE/CS/0052/2022"), (4, "SBE/ACC/0100/2019")]


@pytest.fixture
def index():
    return AccountIndex(NUMBERS)


@pytest.mark.parametrize("typed", ["SCE/CS/0042/2022", "sce/cs/0042/2022", " sce cs 0042 2022 ", "'SCE-CS-0042-2022",
                                   "SCE.CS.0042.2022", "SCE\\CS\\0042\\2022", "SCECS00422022", "sce_cs_0042_2022"])
def test_exact_after_normalising(index, typed):
    assert (index.match(typed).kind, index.match(typed).student_id) == ("exact", 1)


def test_one_wrong_character_is_a_typo_of_the_one_number_it_is_near(index):
    m = index.match("SCE/CS/0043/2022")       # 0042 → 0043 (0044 would be as near 0042 only, too)
    assert (m.kind, m.student_id) == ("typo", 1) and "one character wrong" in m.how


def test_two_neighbours_swapped_is_a_typo(index):
    m = index.match("SBE/ACC/1000/2019")
    assert (m.kind, m.student_id) == ("typo", 4) and "swapped" in m.how
    assert index.match("SCE/CS/0024/2022").student_id == 1


def test_equally_close_to_two_numbers_is_ambiguous_and_proposes_neither(index):
    m = index.match("SCE/CS/0051/2022")       # one character from 0050 and from 0052
    assert (m.kind, m.student_id, m.student_ids) == ("ambiguous", None, (2, 3))


def test_two_numbers_that_differ_only_in_separators_are_ambiguous():
    m = AccountIndex([(1, "SCE/CS/0042/2022"), (2, "SC/ECS/0042/2022")]).match("SCE/CS/0042/2022")
    assert (m.kind, m.student_ids) == ("ambiguous", (1, 2))


@pytest.mark.parametrize("typed", ["SCE/CS/0099/2022", "SCE/CS/042/2022", "SCE/CS/00421/2022", "my fees", "", "  ",
                                   "SCE/CS/4200/2022", "0042"])
def test_anything_further_is_no_match(index, typed):
    m = index.match(typed)
    assert (m.kind, m.student_id, m.student_ids) == ("none", None, ())


def test_the_rule_is_written_down():
    for words in ("exactly one student's number", "one wrong character", "neighbouring characters swapped",
                  "ambiguous", "none is proposed"):
        assert words in ACCOUNT_RULE
    assert account_key("'sce/cs 0042-2022") == "SCECS00422022"


@pytest.mark.parametrize("other_party,details,phone", [
    ("254783694383 - STUDENT 0", "Pay Bill from 254712424983 - STUDENT 0 Acc. X", "254783694383"),
    ("", "Pay Bill from 254712424983 - STUDENT 0 Acc. X", "254712424983"),
    ("2547******383 - JOHN", "", "2547******383"),
    ("JOHN DOE", "Payment", ""),
])
def test_the_payers_phone_from_the_line(other_party, details, phone):
    import datetime
    from decimal import Decimal
    line = StatementLine(row=2, receipt="TL44LDQBWZ", completed_at=datetime.datetime(2026, 1, 1), amount=Decimal(1),
                         account="", details=details, other_party=other_party)
    assert line.phone == phone
