"""Fixtures of the service tests."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests import factories
from tests.factories import student_with_reg as make_student


@pytest.fixture
def three(offices):
    """SCE/CS/0001–0003/2022, each with a balance of KES 10 (and no hold: the file decides)."""
    students = [make_student(f"SCE/CS/{i:04d}/2022") for i in (1, 2, 3)]
    for s in students:
        factories.FinanceRecordFactory(student=s, tuition_balance=Decimal("10"))
    return students
