"""factory_boy factories for every model in core/models.py.

Defaults build a consistent world with few rows: students fall in school SCE, academic department
CS and one programme (get-or-create), so registration numbers look like SCE/CS/0001/2022. Pass
`school=SchoolFactory(code="SPA")` to put a student elsewhere; the department and programme follow.
"""
from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from core import models


def _today():
    return timezone.localdate()


def _letters(n: int, width: int = 2) -> str:
    """0 → AA, 1 → AB, … : codes that fit [A-Z]{2,6} in a registration number."""
    out = ""
    for _ in range(width):
        n, r = divmod(n, 26)
        out = chr(ord("A") + r) + out
    return out


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@clearance.test")
    full_name = factory.Faker("name")
    password = factory.django.Password("pass-1234")
    is_staff = False
    is_active = True


class SchoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.School
        django_get_or_create = ("code",)

    code = "SCE"
    name = factory.LazyAttribute(lambda o: f"School {o.code}")


class AcademicDepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AcademicDepartment
        django_get_or_create = ("school", "code")

    school = factory.SubFactory(SchoolFactory)
    code = "CS"
    name = factory.LazyAttribute(lambda o: f"Department {o.code}")


class ProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Programme
        django_get_or_create = ("code",)

    academic_department = factory.SubFactory(AcademicDepartmentFactory)
    code = factory.LazyAttribute(
        lambda o: f"{o.academic_department.school.code}-{o.academic_department.code}-BSC")
    name = factory.LazyAttribute(lambda o: f"BSc {o.academic_department.name}")


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Student
        skip_postgeneration_save = True

    class Params:
        with_user = factory.Trait(
            user=factory.SubFactory(
                UserFactory, full_name=factory.LazyAttribute(lambda u: f"{u.factory_parent.first_name} "
                                                                       f"{u.factory_parent.last_name}")))

    school = factory.SubFactory(SchoolFactory)
    academic_department = factory.SubFactory(AcademicDepartmentFactory, school=factory.SelfAttribute("..school"))
    programme = factory.SubFactory(ProgrammeFactory,
                                   academic_department=factory.SelfAttribute("..academic_department"))
    registration_number = factory.LazyAttributeSequence(
        lambda o, n: f"{o.school.code}/{o.academic_department.code}/{n + 1:04d}/2022")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttributeSequence(lambda o, n: f"student{n}@students.clearance.test")
    phone = "0712345678"
    expected_graduation_year = 2026
    is_resident = False
    user = None


def student_with_reg(reg: str, **fields) -> models.Student:
    """A student whose school and academic department are the ones its registration number names
    (SCE/CS/0001/2022 → school SCE, department CS), as the import and reconcile samples expect."""
    school_code, dept_code, *_ = reg.split("/")
    school = SchoolFactory(code=school_code)
    dept = AcademicDepartmentFactory(school=school, code=dept_code)
    return StudentFactory(registration_number=reg, school=school, academic_department=dept, **fields)


class DepartmentFactory(factory.django.DjangoModelFactory):
    """A clearance office."""

    class Meta:
        model = models.Department
        django_get_or_create = ("code",)
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"O{_letters(n, 3)}")
    name = factory.LazyAttribute(lambda o: f"Office {o.code}")
    type = models.Department.Type.OTHER
    head_email = factory.LazyAttribute(lambda o: f"head.{o.code.lower()}@clearance.test")
    is_active = True
    stage = 1
    sla_days = 7
    applies_to = models.Department.AppliesTo.ALL

    @factory.post_generation
    def schools(self, create, extracted, **kwargs):
        if create and extracted:
            self.schools.set(extracted)


class ClearanceCycleFactory(factory.django.DjangoModelFactory):
    """Open today by default."""

    class Meta:
        model = models.ClearanceCycle

    name = factory.Sequence(lambda n: f"{2026 + n} graduation")
    graduation_year = 2026
    opens_on = factory.LazyFunction(lambda: _today() - datetime.timedelta(days=30))
    closes_on = factory.LazyFunction(lambda: _today() + datetime.timedelta(days=60))
    is_closed = False
    max_resubmissions = None


class ClearanceRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ClearanceRequest

    student = factory.SubFactory(StudentFactory)
    cycle = factory.SubFactory(ClearanceCycleFactory)
    reason = models.ClearanceRequest.Reason.GRADUATION
    status = models.ClearanceRequest.Status.PENDING


class ClearanceApprovalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ClearanceApproval
        skip_postgeneration_save = True

    request = factory.SubFactory(ClearanceRequestFactory)
    department = factory.SubFactory(DepartmentFactory)
    status = models.ClearanceApproval.Status.PENDING

    @factory.post_generation
    def stage_open_stored(obj, create, extracted, **kwargs):
        """The request's items stored as the services store them: which of them wait (stage open)."""
        if create:
            from core.services.status import approvals_refresh_stage_open
            approvals_refresh_stage_open([obj.request_id])
            obj.refresh_from_db(fields=["stage_open"])


class HoldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Hold

    department = factory.SubFactory(DepartmentFactory)
    student = factory.SubFactory(StudentFactory)
    reason = "Book not returned"
    amount = None
    source = models.Hold.Source.MANUAL
    status = models.Hold.Status.ACTIVE


class BalanceImportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.BalanceImport

    original_name = factory.Sequence(lambda n: f"balances-{n}.xlsx")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    status = models.BalanceImport.Status.APPLIED


class FinanceRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FinanceRecord
        django_get_or_create = ("student",)

    student = factory.SubFactory(StudentFactory)
    tuition_balance = Decimal("0")
    graduation_fee = Decimal("5500")


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Payment

    student = factory.SubFactory(StudentFactory)
    amount = Decimal("5500.00")
    method = models.Payment.Method.MPESA
    transaction_code = factory.Sequence(lambda n: f"TL{n:08d}")
    phone = "0712345678"


class GownIssuanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.GownIssuance

    student = factory.SubFactory(StudentFactory)
    gown_code = factory.Sequence(lambda n: f"G-{n:04d}")
    size = models.GownIssuance.Size.M
    expected_return_on = factory.LazyFunction(lambda: _today() + datetime.timedelta(days=14))
    deposit = Decimal("2000")


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Notification

    user = factory.SubFactory(UserFactory)
    title = "Hello"
    message = "Something happened."


class CertificateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Certificate

    request = factory.SubFactory(ClearanceRequestFactory, status=models.ClearanceRequest.Status.COMPLETED,
                                 completed_at=factory.LazyFunction(timezone.now))


class DelegationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Delegation

    department = factory.SubFactory(DepartmentFactory)
    from_user = factory.SubFactory(UserFactory)
    to_user = factory.SubFactory(UserFactory)
    starts_on = factory.LazyFunction(_today)
    ends_on = factory.LazyFunction(lambda: _today() + datetime.timedelta(days=7))
    reason = "On leave"
