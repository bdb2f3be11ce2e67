import pytest
from django.contrib.auth import authenticate

from core import permissions
from core.demo import DEMO_STUDENT_REG, seed_demo
from core.models import (Certificate, ClearanceApproval, ClearanceRequest, Department, FinanceRecord, GownIssuance,
                         Hold, Payment, Student, User)
from core.services.status import derive_request_status

pytestmark = pytest.mark.django_db(transaction=False)


def test_seed_demo_is_idempotent_and_covers_every_state():
    first = seed_demo(students=150, password="demo-pass-1", seed=7)
    assert first.students_created == 150
    counts = {t: Student.objects.count() for t in ["s"]}
    again = seed_demo(students=150, password="demo-pass-1", seed=7)
    assert again.students_created == 0
    assert Student.objects.count() == counts["s"] == 150
    assert set(Department.objects.values_list("code", flat=True)) >= {"FIN", "LIB", "HOS", "SCH", "SPT", "GOWN", "REG"}
    statuses = set(ClearanceRequest.objects.values_list("status", flat=True))
    # every state but pending: with FINANCE_AUTO_CLEAR the finance item opens decided (rule 5), so no
    # request waits on every office
    assert statuses == {s.value for s in ClearanceRequest.Status} - {ClearanceRequest.Status.PENDING}
    assert Hold.objects.filter(status=Hold.Status.ACTIVE).exists()
    assert FinanceRecord.objects.count() == 150
    assert Payment.objects.exists() and GownIssuance.objects.exists() and Certificate.objects.exists()
    # every request's status is what the one derivation function says of its approvals
    for req in ClearanceRequest.objects.prefetch_related("approvals"):
        assert req.status == derive_request_status([a.status for a in req.approvals.all()],
                                                   revoked=req.revoked_at is not None)
    # history was written for the demo rows, naming the administrator and the reason
    h = ClearanceApproval.history.first()
    assert h.history_user.email == "admin@clearance.test" and h.history_change_reason == "Demo data"


def test_seed_demo_users_and_roles():
    seed_demo(students=20, password="demo-pass-2", seed=1)
    for email in ["admin@clearance.test", "registry@clearance.test", "finance@clearance.test",
                  "lib@clearance.test", "fin@clearance.test", "student@clearance.test"]:
        assert authenticate(username=email, password="demo-pass-2") is not None, email
    lib = User.objects.get(email="lib@clearance.test")
    assert permissions.has_role(lib, permissions.STAFF)
    assert set(permissions.reviewable_departments(lib).values_list("code", flat=True)) == {"LIB"}
    student = Student.objects.get(registration_number=DEMO_STUDENT_REG)
    assert student.user.email == "student@clearance.test"
    assert student.clearance_requests.get().status == ClearanceRequest.Status.IN_PROGRESS
    assert User.objects.get(email="admin@clearance.test").is_superuser


def test_the_demo_data_keeps_every_invariant(db):
    from core.demo import seed_demo
    from tests.consistency import assert_consistent

    seed_demo(students=120, seed=7)
    assert_consistent()


def test_the_demo_has_the_sample_files_students_and_the_statements_payments():
    """A newcomer importing the samples sees the feature work: the balance file's rows are found,
    the statement's lines match recorded payments (every fifth left unrecorded)."""
    from decimal import Decimal
    from pathlib import Path

    from django.core.files.uploadedfile import SimpleUploadedFile

    from core.demo import sample_registration_numbers, statement_lines
    from core.services.balances import balances_import_preview
    from core.services.reconcile import payments_reconcile_statement

    seed_demo(students=80, seed=5)
    assert Student.objects.count() == 80
    finance_user = User.objects.get(email="finance@clearance.test")
    samples = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
    regs = sample_registration_numbers()
    assert len(regs) == 60 and "NOT/A/0000/1999" not in regs
    assert Student.objects.filter(registration_number__in=regs).count() == 60
    data = (samples / "balances_finance_export.xlsx").read_bytes()
    bi = balances_import_preview(file=SimpleUploadedFile("balances.xlsx", data), acting_user=finance_user)
    assert (bi.rows_total, bi.not_found_count, bi.error_count) == (61, 1, 0)
    lines = statement_lines()
    assert len(lines) == 20 and lines[0]["amount"] == Decimal("12500.00")
    result = payments_reconcile_statement(
        file=SimpleUploadedFile("statement.csv", (samples / "mpesa_statement.csv").read_bytes()),
        acting_user=finance_user)
    assert (result.lines_read, len(result.verified), len(result.unrecorded)) == (20, 16, 4)


def test_the_demo_has_a_completed_and_an_on_hold_student_login():
    seed_demo(students=10, password="demo-pass-3", seed=2)
    for email, status in (("student.completed@clearance.test", ClearanceRequest.Status.COMPLETED),
                          ("student.onhold@clearance.test", ClearanceRequest.Status.ON_HOLD)):
        user = authenticate(username=email, password="demo-pass-3")
        assert user is not None and permissions.in_group(user, permissions.STUDENT) and not user.is_staff
        request = Student.objects.get(user=user).clearance_requests.get()
        assert request.status == status
    completed = Student.objects.get(user__email="student.completed@clearance.test").clearance_requests.get()
    assert Certificate.objects.filter(request=completed).exists()
    held = Student.objects.get(user__email="student.onhold@clearance.test")
    assert Hold.objects.filter(student=held, department__code="LIB", status=Hold.Status.ACTIVE).exists()
    assert Student.objects.count() == 10
