"""Random sequences of what people and imports do — balance imports, holds placed and released,
payments, every decision, re-submissions, opening and revoking — end with the consistency checker
finding nothing (DESIGN.md "Invariants"). Refusals are part of the sequences: a refused step must
change nothing."""
from __future__ import annotations

import io
import itertools
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from hypothesis import HealthCheck, given, settings, strategies as st

from core.models import ClearanceApproval, ClearanceRequest, FinanceRecord, Hold
from core.services import approvals as approval_services
from core.services.balances import balances_import_apply, balances_import_preview
from core.services.holds import holds_place, holds_release, holds_waive
from core.services.payments import finance_records_set_graduation_fee_status, payment_record, payments_verify
from core.services.requests import request_open, request_revoke
from tests import factories
from tests.consistency import assert_consistent

pytestmark = pytest.mark.django_db

STUDENTS = 3
OFFICES = ("FIN", "LIB", "HOS", "REG")
BALANCES = (Decimal("-500"), Decimal("0"), Decimal("250"), Decimal("1000"))
RECEIPTS = itertools.count(1)

student = st.integers(0, STUDENTS - 1)
office = st.sampled_from(OFFICES)
step = st.one_of(
    st.tuples(st.just("import"), st.dictionaries(student, st.sampled_from(BALANCES), min_size=1)),
    st.tuples(st.just("hold"), student, office, st.sampled_from([None, Decimal("300")])),
    st.tuples(st.just("release"), student, office),
    st.tuples(st.just("waive_hold"), student, office),
    st.tuples(st.just("pay"), student),
    st.tuples(st.just("fee_paid"), student),
    st.tuples(st.sampled_from(["approve", "reject", "reopen", "waive"]), student, office),
    st.tuples(st.just("resubmit"), student, office),
    st.tuples(st.just("open"), student),
    st.tuples(st.just("revoke"), student),
)


def _xlsx(balances: dict[str, Decimal]) -> ContentFile:
    wb = openpyxl.Workbook()
    wb.active.append(["Reg No", "Balance"])
    for reg, balance in balances.items():
        wb.active.append([reg, float(balance)])
    out = io.BytesIO()
    wb.save(out)
    return ContentFile(out.getvalue(), name="balances.xlsx")


class World:
    def __init__(self, offices, cycle, people):
        self.offices, self.cycle, self.people = offices, cycle, people
        self.students = [factories.StudentFactory(with_user=True, is_resident=i % 2 == 0) for i in range(STUDENTS)]
        for s in self.students[:2]:
            factories.FinanceRecordFactory(student=s, tuition_balance=0)
        for s in self.students[:2]:
            request_open(student=s, cycle=cycle, acting_user=people["registry"])

    def request(self, i):
        return (ClearanceRequest.objects.filter(student=self.students[i], cycle=self.cycle)
                .exclude(status=ClearanceRequest.Status.REVOKED).first())

    def approval(self, i, code):
        request = self.request(i)
        return request and request.approvals.filter(department__code=code).first()

    def run(self, op, *args):
        admin, fin_officer = self.people["admin"], self.people["finance"]
        if op == "import":
            bi = balances_import_preview(file=_xlsx({self.students[i].registration_number: b for i, b in args[0].items()}),
                                         acting_user=fin_officer)
            balances_import_apply(balance_import=bi, acting_user=fin_officer, skip_errors=True)
        elif op == "hold":
            i, code, amount = args
            holds_place(department=self.offices[code], student_ids=[self.students[i].pk], reason=f"{code} hold",
                        amount=amount, acting_user=admin)
        elif op in ("release", "waive_hold"):
            i, code = args
            ids = list(Hold.objects.filter(student=self.students[i], department__code=code,
                                           status=Hold.Status.ACTIVE).values_list("pk", flat=True))
            if op == "release":
                holds_release(hold_ids=ids, acting_user=admin, reason="Settled")
            else:
                holds_waive(hold_ids=ids, acting_user=admin, reason="Forgiven")
        elif op == "pay":
            payment = payment_record(student=self.students[args[0]], amount=500, method="cash",
                                     transaction_code=f"R{next(RECEIPTS)}", acting_user=fin_officer)
            payments_verify(payment_ids=[payment.pk], acting_user=fin_officer)
        elif op == "fee_paid":
            ids = list(FinanceRecord.objects.filter(student=self.students[args[0]]).values_list("pk", flat=True))
            finance_records_set_graduation_fee_status(record_ids=ids, status="paid", acting_user=fin_officer)
        elif op in ("approve", "reject", "reopen", "waive"):
            i, code = args
            item = self.approval(i, code)
            if item is None:
                return
            service = getattr(approval_services, f"approvals_{op}")
            kwargs = {"reason": f"{code} says no"} if op in ("reject", "waive") else {}
            service(approval_ids=[item.pk], acting_user=admin, seen={item.pk: item.state_token}, **kwargs)
        elif op == "resubmit":
            i, code = args
            item = self.approval(i, code)
            if item is not None:
                approval_services.approval_resubmit(approval=item, acting_user=self.students[i].user,
                                                    response="Done, see the office")
        elif op == "open":
            request_open(student=self.students[args[0]], cycle=self.cycle, acting_user=self.people["registry"])
        elif op == "revoke":
            request = self.request(args[0])
            if request is not None:
                request_revoke(request=request, acting_user=self.people["registry"], reason="Withdrew")


@pytest.fixture
def people(superuser, registry_user, finance_user):
    return {"admin": superuser, "registry": registry_user, "finance": finance_user}


@pytest.mark.parametrize("office_stages", [{}, {"FIN": 2}], ids=["parallel", "finance-second"])
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=10))
def test_any_sequence_of_imports_holds_payments_and_decisions_keeps_every_invariant(offices, cycle, people, steps):
    with transaction.atomic():
        world = World(offices, cycle, people)
        assert_consistent()
        for op, *args in steps:
            try:
                with transaction.atomic():
                    world.run(op, *args)
            except ValidationError:
                pass                     # refused: nothing changed (the savepoint rolled back)
            assert_consistent()
        transaction.set_rollback(True)
