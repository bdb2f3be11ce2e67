"""Demo data (`manage.py seed_demo`): offices, schools, an open cycle, users for every role and N
students with requests in every state, holds, balances, payments and gowns.

Idempotent: reference rows are get-or-created; student k always gets the same registration number,
and only students not yet in the database are created, in chunks with bulk writes (history rows
included), so 100,000 students take about a minute. Statuses of requests are derived from the
approvals by `derive_request_status`, as everywhere else.
"""
from __future__ import annotations

import csv
import datetime
import random
import re
import string
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from . import permissions
from .bulk_load import load
from .history import audit_context
from .models import (AcademicDepartment, Certificate, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department,
                     FinanceRecord, GownIssuance, Hold, Payment, Programme, School, Student, User)
from .services.finance import finance_hold_reason
from .services.status import derive_request_status, stages_open

REASON = "Demo data"
A = ClearanceApproval.Status

SCHOOLS = {
    "SCE": ("School of Computing and Engineering", {"CS": "Computer Science", "IT": "Information Technology",
                                                    "EE": "Electrical Engineering"}),
    "SBE": ("School of Business and Economics", {"ACC": "Accounting", "ECO": "Economics", "MKT": "Marketing"}),
    "SHS": ("School of Health Sciences", {"NUR": "Nursing", "PHA": "Pharmacy", "PH": "Public Health"}),
    "SED": ("School of Education", {"ART": "Education (Arts)", "SCI": "Education (Science)", "ECD": "Early Childhood"}),
}
OFFICES = [
    # code, name, type, stage, applies_to, sla_days
    ("FIN", "Finance", Department.Type.FINANCE, 1, Department.AppliesTo.ALL, 5),
    ("LIB", "Library", Department.Type.LIBRARY, 1, Department.AppliesTo.ALL, 5),
    ("HOS", "Hostels", Department.Type.HOSTEL, 1, Department.AppliesTo.RESIDENTS, 7),
    ("SCH", "School office", Department.Type.FACULTY, 1, Department.AppliesTo.ALL, 7),
    ("SPT", "Sports", Department.Type.SPORTS, 1, Department.AppliesTo.ALL, 7),
    ("GOWN", "Gown store", Department.Type.STORE, 1, Department.AppliesTo.ALL, 7),
    ("REG", "Registry", Department.Type.REGISTRY, 2, Department.AppliesTo.ALL, 10),
]
# where students go to each office (Department.location, shown on the student's page)
LOCATIONS = {
    "FIN": "Finance office, Administration Block ground floor, counter 3 · Mon–Fri 08:00–16:00",
    "LIB": "Main Library circulation desk, ground floor · Mon–Sat 08:00–20:00",
    "HOS": "Hostels office, Block C reception · Mon–Fri 08:00–17:00",
    "SCH": "Your school's office (dean's secretary) · Mon–Fri 08:30–16:30",
    "SPT": "Sports office, Pavilion room 2 · Mon–Fri 09:00–16:00",
    "GOWN": "Gown store, Student Centre basement · Mon–Fri 09:00–15:00",
    "REG": "Academic Registry, Senate Building room 104 · Mon–Fri 08:00–16:00",
}
REJECT_REASONS = {
    "LIB": "2 books not returned: 'Introduction to Algorithms', 'Clean Code'",
    "HOS": "Room key not returned and damaged furniture in room B12",
    "SCH": "Final project report not submitted to the school office",
    "SPT": "Team kit (jersey and tracksuit) not returned",
    "GOWN": "Graduation photo fee not paid",
    "REG": "Transcript discrepancy: one unit grade missing",
}
FIRST = ["Amina", "Brian", "Cynthia", "David", "Esther", "Felix", "Grace", "Hassan", "Irene", "James", "Kevin",
         "Lucy", "Mercy", "Nelson", "Otieno", "Purity", "Ruth", "Samuel", "Tabitha", "Victor", "Wanjiru", "Yusuf"]
LAST = ["Achieng", "Barasa", "Chebet", "Gitau", "Kamau", "Kariuki", "Kiprono", "Mutua", "Njeri", "Odhiambo",
        "Omondi", "Onyango", "Wafula", "Wambui", "Waweru", "Mwangi", "Nyambura", "Kilonzo", "Jeptoo", "Korir"]
ADMISSION_YEARS = (2020, 2021, 2022, 2023)
CHUNK = 5000
DEMO_STUDENT_REG = "SCE/CS/0001/2022"
# two more student logins: one whose clearance is complete (with a certificate), one on hold
COMPLETED_LOGIN = ("student.completed@clearance.test", "SBE/ACC/0001/2021", "Brian", "Otieno")
ON_HOLD_LOGIN = ("student.onhold@clearance.test", "SHS/NUR/0001/2021", "Grace", "Wambui")
# The sample files (fixtures/samples/): their students exist in the demo, so a newcomer importing
# them sees rows found and statement lines matched. Every fifth statement line is left without a
# payment (what "Record and verify" is for).
SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "samples"
REG_SHAPE = re.compile(r"^([A-Z]{3})/([A-Z]{2,3})/(\d{4})/(\d{4})$")
UNRECORDED_EVERY = 5


@dataclass
class SeedReport:
    students_created: int
    students_total: int
    requests_created: int
    password: str


def _ours(value) -> str | None:
    """A registration number of one of the demo's schools and departments, as the files spell it
    (any case, padded, a non-breaking space); None for anything else."""
    if not isinstance(value, str):
        return None
    reg = value.replace("\xa0", " ").strip().lstrip("'").upper()
    match = REG_SHAPE.match(reg)
    if match is None or match[1] not in SCHOOLS or match[2] not in SCHOOLS[match[1]][1]:
        return None
    return reg


def sample_registration_numbers() -> list[str]:
    """Every registration number of ours in the sample files, in the order they first appear."""
    found: dict[str, None] = {}
    book = SAMPLES / "balances_finance_export.xlsx"
    if book.exists():
        import openpyxl
        wb = openpyxl.load_workbook(book, read_only=True, data_only=True)
        try:
            for ws in wb.worksheets:
                for row in ws.iter_rows(values_only=True):
                    for value in row:
                        if (reg := _ours(value)) is not None:
                            found.setdefault(reg)
        finally:
            wb.close()
    for name, delimiter in (("balances_semicolon.csv", ";"), ("mpesa_statement.csv", ",")):
        path = SAMPLES / name
        if path.exists():
            with path.open(encoding="utf-8-sig", newline="") as handle:
                for row in csv.reader(handle, delimiter=delimiter):
                    for value in row:
                        if (reg := _ours(value)) is not None:
                            found.setdefault(reg)
    return list(found)


def statement_lines() -> list[dict]:
    """The sample M-PESA statement's completed lines: code, amount, when, and the account typed."""
    path = SAMPLES / "mpesa_statement.csv"
    if not path.exists():
        return []
    lines = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                amount = Decimal(row["Paid In"].replace(",", ""))
                paid = datetime.datetime.fromisoformat(row["Completion Time"])
            except (KeyError, InvalidOperation, ValueError):
                continue
            lines.append(dict(code=row["Receipt No."].strip(), amount=amount, account=_ours(row.get("A/C No.")),
                              paid_at=timezone.make_aware(paid) if timezone.is_naive(paid) else paid))
    return lines


def _acad_layout():
    """Every (school code, dept code) pair in a fixed order; student k goes to pair k % len."""
    return [(s, d) for s, (_, depts) in SCHOOLS.items() for d in depts]


def registration_number(k: int) -> str:
    pairs = _acad_layout()
    school, dept = pairs[k % len(pairs)]
    year = ADMISSION_YEARS[(k // len(pairs)) % len(ADMISSION_YEARS)]
    seq = k // (len(pairs) * len(ADMISSION_YEARS)) + 2  # 0001 of SCE/CS/2022 is the demo login's
    return f"{school}/{dept}/{seq:04d}/{year}"


def _reference_data():
    schools, depts, programmes = {}, {}, {}
    for code, (name, acad) in SCHOOLS.items():
        schools[code], _ = School.objects.get_or_create(code=code, defaults={"name": name})
        for dcode, dname in acad.items():
            depts[(code, dcode)], _ = AcademicDepartment.objects.get_or_create(
                school=schools[code], code=dcode, defaults={"name": f"Department of {dname}"})
            programmes[(code, dcode)], _ = Programme.objects.get_or_create(
                code=f"B{dcode}", defaults={"name": f"Bachelor of {dname}", "academic_department": depts[(code, dcode)]})
    offices = {}
    for code, name, type_, stage, applies_to, sla in OFFICES:
        offices[code], _ = Department.objects.get_or_create(
            code=code, defaults=dict(name=name, type=type_, stage=stage, applies_to=applies_to, sla_days=sla,
                                     head_email=f"head.{code.lower()}@clearance.test",
                                     location=LOCATIONS.get(code, "")))
    today = timezone.localdate()
    cycle, _ = ClearanceCycle.objects.get_or_create(
        name=f"{today.year} graduation",
        defaults=dict(graduation_year=today.year, opens_on=today - timedelta(days=30), closes_on=today + timedelta(days=60),
                      max_resubmissions=3))
    return schools, depts, programmes, offices, cycle


def _user(email, full_name, password_hash, *, roles=(), superuser=False):
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User(email=email, full_name=full_name)
    user.full_name = full_name
    user.is_staff = True
    user.is_superuser = superuser
    user.is_active = True
    user.password = password_hash  # hashed once for all demo users: hashing is slow on purpose
    user._change_reason = REASON
    user.save()
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def _users(password_hash, offices):
    admin = _user("admin@clearance.test", "System Administrator", password_hash, roles=[permissions.ADMINISTRATOR],
                  superuser=True)
    _user("registry@clearance.test", "Registry Officer", password_hash, roles=[permissions.REGISTRY])
    finance = _user("finance@clearance.test", "Finance Officer", password_hash, roles=[permissions.FINANCE])
    permissions.reviewer_set_scope(user=finance, departments=[offices["FIN"]])
    for code, dept in offices.items():
        staff = _user(f"{code.lower()}@clearance.test", f"{dept.name} staff", password_hash, roles=[permissions.STAFF])
        permissions.reviewer_set_scope(user=staff, departments=[dept])
    return admin


class _Builder:
    """Builds one chunk of students and everything that hangs off them, in memory, then writes it."""

    def __init__(self, rng, offices, cycle, admin, schools, depts, programmes, cohort):
        self.rng, self.offices, self.cycle, self.admin = rng, offices, cycle, admin
        self.schools, self.depts, self.programmes, self.cohort = schools, depts, programmes, cohort
        self.now = timezone.now()
        self.codes_used = set(Payment.objects.values_list("transaction_code", flat=True))

    def student(self, reg, user=None, resident=None):
        school, dept, _, year = reg.split("/")
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        return dict(
            registration_number=reg, admission_year=int(year), first_name=first, last_name=last,
            email=f"{first}.{last}.{reg.replace('/', '').lower()}@students.clearance.test".lower(),
            phone=f"2547{rng.randint(10000000, 99999999)}", school_id=self.schools[school].pk,
            academic_department_id=self.depts[(school, dept)].pk, programme_id=self.programmes[(school, dept)].pk,
            expected_graduation_year=self.cohort if int(year) <= self.cohort - 4 or rng.random() < 0.8 else self.cohort + 1,
            is_resident=rng.random() < 0.4 if resident is None else resident, user_id=user.pk if user else None)

    def mpesa_code(self):
        while True:
            code = "T" + "".join(self.rng.choices(string.ascii_uppercase + string.digits, k=9))
            if code not in self.codes_used:
                self.codes_used.add(code)
                return code

    def plan(self, student, state):
        """Approval statuses per office code for a wanted state; None = no request."""
        if state == "none":
            return None
        # demo offices apply to everyone or to residents only
        applicable = [c for c, d in self.offices.items()
                      if d.applies_to != Department.AppliesTo.RESIDENTS or student["is_resident"]]
        stage1 = [c for c in applicable if self.offices[c].stage == 1]
        plan = {c: A.PENDING for c in applicable}
        if state in ("completed", "revoked"):
            plan = {c: (A.WAIVED if self.rng.random() < 0.03 else A.APPROVED) for c in applicable}
        elif state == "in_progress":
            for c in self.rng.sample(stage1, self.rng.randint(1, len(stage1) - 1)):
                plan[c] = A.APPROVED
        elif state == "on_hold":
            for c in stage1:
                plan[c] = A.APPROVED if self.rng.random() < 0.5 else A.PENDING
            for c in self.rng.sample(stage1, self.rng.randint(1, 2)):
                plan[c] = A.REJECTED
        if state not in ("completed", "revoked") and plan.get("FIN") == A.PENDING:
            plan["FIN"] = A.APPROVED      # rule 5: no finance hold (a rejected FIN gets one below)
        return plan


STATES = [("none", 0.10), ("pending", 0.20), ("in_progress", 0.30), ("on_hold", 0.17), ("completed", 0.20),
          ("revoked", 0.03)]


def _state(rng) -> str:
    x, acc = rng.random(), 0.0
    for name, weight in STATES:
        acc += weight
        if x < acc:
            return name
    return STATES[-1][0]


def _write_chunk(b: _Builder, students: list[dict], states: list[str], fixed_plans: dict | None = None):
    """Rows are dicts of column attnames (model instances cost more than the insert itself)."""
    admin, now, rng = b.admin, b.now, b.rng
    students = load(students, Student, user=admin, reason=REASON)
    requests, approvals_by_req, holds, finance, payments, gowns, certs = [], [], [], [], [], [], []
    for s, state in zip(students, states):
        balance = Decimal(rng.choice([0, 0, 0, -1200, -500])).quantize(Decimal("0.01"))
        sid = s["id"]
        plan = (fixed_plans or {}).get(s["registration_number"]) or b.plan(s, state)
        if plan is not None:
            waited = timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 23))
            items = []
            for code, status in plan.items():
                dept = b.offices[code]
                reason = ""
                if status == A.REJECTED:
                    if code == "FIN":
                        balance = Decimal(rng.choice([4500.50, 12500, 35000, 250])).quantize(Decimal("0.01"))
                        reason = finance_hold_reason(balance)
                        holds.append(dict(department_id=dept.pk, student_id=sid, reason=reason, amount=balance,
                                          source=Hold.Source.BALANCE_IMPORT, placed_by_id=admin.pk,
                                          placed_at=now - waited))
                    else:
                        reason = REJECT_REASONS[code]
                        holds.append(dict(department_id=dept.pk, student_id=sid, reason=reason,
                                          amount=Decimal(rng.choice([0, 500, 1500, 3200])) or None,
                                          placed_by_id=admin.pk, placed_at=now - waited))
                elif status == A.WAIVED:
                    reason = "Waived by the office head (documented exception)"
                decided = status != A.PENDING
                items.append(dict(
                    department_id=dept.pk, status=status, reason=reason, waiting_since=now - waited,
                    decided_by_id=admin.pk if decided else None, decided_at=now - waited / 2 if decided else None))
            for item, opened in zip(items, stages_open((b.offices[c].stage, s) for c, s in plan.items())):
                item["stage_open"] = opened      # the queue's "waiting", as the services store it
            status = derive_request_status([a["status"] for a in items], revoked=state == "revoked")
            req = dict(student_id=sid, cycle_id=b.cycle.pk, status=status, submitted_at=now - waited,
                       opened_by_id=admin.pk, created_at=now - waited,
                       completed_at=now - waited / 3 if state in ("completed", "revoked") else None)
            if state == "revoked":
                req.update(revoked_at=now - waited / 4, revoked_by_id=admin.pk,
                           revoked_reason="Library hold found after completion: book reported lost")
            requests.append(req)
            approvals_by_req.append(items)
            if state == "completed" and rng.random() < 0.5:
                returned = rng.random() < 0.4
                gowns.append(dict(
                    student_id=sid, gown_code=f"G{sid:07d}", size=rng.choice(["S", "M", "L", "XL"]),
                    issued_by_id=admin.pk,
                    issued_at=now - waited / 4, expected_return_on=timezone.localdate() + timedelta(days=30),
                    returned_at=now if returned else None, deposit=Decimal("2000"),
                    deposit_status=GownIssuance.DepositStatus.REFUNDED if returned else GownIssuance.DepositStatus.HELD,
                    refunded_amount=Decimal("2000") if returned else Decimal("0"),
                    deposit_settled_at=now if returned else None, deposit_settled_by_id=admin.pk if returned else None))
        elif rng.random() < 0.3:
            balance = Decimal(rng.choice([12500, 35000, 4500.50])).quantize(Decimal("0.01"))
            holds.append(dict(department_id=b.offices["FIN"].pk, student_id=sid, reason=finance_hold_reason(balance),
                              amount=balance, source=Hold.Source.BALANCE_IMPORT, placed_by_id=admin.pk))
        finance.append(dict(student_id=sid, tuition_balance=balance,
                                     graduation_fee_status=FinanceRecord.GraduationFeeStatus.PAID
                                     if state in ("completed", "revoked") else FinanceRecord.GraduationFeeStatus.UNPAID))
        for _ in range(rng.choice([0, 1, 1, 2])):
            verified = rng.random() < 0.6
            payments.append(dict(student_id=sid, amount=Decimal(rng.choice([5500, 12500, 2000, 35000])),
                                 method=Payment.Method.MPESA, transaction_code=b.mpesa_code(),
                                 phone=s["phone"], paid_at=now - timedelta(days=rng.randint(1, 60)),
                                 recorded_by_id=admin.pk, verified_by_id=admin.pk if verified else None,
                                 verified_at=now if verified else None))
    requests = load(requests, ClearanceRequest, user=admin, reason=REASON)
    approvals = []
    for req, items in zip(requests, approvals_by_req):
        for a in items:
            a["request_id"] = req["id"]
            approvals.append(a)
        if req["status"] == ClearanceRequest.Status.COMPLETED and rng.random() < 0.5:
            certs.append(dict(request_id=req["id"], issued_by_id=admin.pk))
    load(approvals, ClearanceApproval, user=admin, reason=REASON)
    load(holds, Hold, user=admin, reason=REASON)
    load(finance, FinanceRecord, user=admin, reason=REASON)
    load(payments, Payment, user=admin, reason=REASON)
    load(gowns, GownIssuance, user=admin, reason=REASON)
    load(certs, Certificate, user=admin, reason=REASON)
    return len(requests)


def _statement_payments(admin) -> int:
    """The sample statement's lines as payments recorded but not yet verified (what reconciling it
    verifies), for the students the demo has; every fifth line left without one."""
    lines = statement_lines()
    students = dict(Student.objects.filter(registration_number__in=[ln["account"] for ln in lines if ln["account"]])
                    .values_list("registration_number", "pk"))
    recorded = set(Payment.objects.filter(transaction_code__in=[ln["code"] for ln in lines])
                   .values_list("transaction_code", flat=True))
    rows = [dict(student_id=students[ln["account"]], amount=ln["amount"], method=Payment.Method.MPESA,
                 transaction_code=ln["code"], paid_at=ln["paid_at"], recorded_by_id=admin.pk)
            for n, ln in enumerate(lines, 1)
            if n % UNRECORDED_EVERY and ln["account"] in students and ln["code"] not in recorded]
    load(rows, Payment, user=admin, reason=REASON)
    return len(rows)


def seed_demo(*, students: int = 200, password: str = "clearance2026", seed: int = 2026,
              progress=None) -> SeedReport:
    rng = random.Random(seed)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size=-262144")  # 256 MB of page cache while loading
    with audit_context(reason=REASON), transaction.atomic():
        schools, depts, programmes, offices, cycle = _reference_data()
        password_hash = make_password(password)
        admin = _users(password_hash, offices)
        cohort = cycle.graduation_year
        b = _Builder(rng, offices, cycle, admin, schools, depts, programmes, cohort)
        created = requests_created = 0

        # The demo student's login: a request in progress, the hostel holding a key.
        student_user = _user("student@clearance.test", "Amina Achieng", password_hash, roles=[permissions.STUDENT])
        student_user.is_staff = False
        student_user.save(update_fields=["is_staff"])
        if not Student.objects.filter(registration_number=DEMO_STUDENT_REG).exists():
            demo = b.student(DEMO_STUDENT_REG, user=student_user, resident=True)
            demo.update(first_name="Amina", last_name="Achieng", expected_graduation_year=cohort,
                        email="student@clearance.test")
            plan = {c: A.PENDING for c in offices}
            plan.update(LIB=A.APPROVED, SPT=A.APPROVED, SCH=A.APPROVED, FIN=A.APPROVED)
            requests_created += _write_chunk(b, [demo], ["in_progress"], fixed_plans={DEMO_STUDENT_REG: plan})
            load([dict(department_id=offices["HOS"].pk, student_id=demo["id"], placed_by_id=admin.pk,
                       amount=Decimal("1500"), reason="Room key not returned (room B12)")], Hold, user=admin,
                 reason=REASON)
            created += 1

        for email, reg, first, last in (COMPLETED_LOGIN, ON_HOLD_LOGIN):
            if created >= students:
                break
            user = _user(email, f"{first} {last}", password_hash, roles=[permissions.STUDENT])
            user.is_staff = False
            user.save(update_fields=["is_staff"])
            if Student.objects.filter(registration_number=reg).exists():
                continue
            row = b.student(reg, user=user, resident=False)
            row.update(first_name=first, last_name=last, expected_graduation_year=cohort, email=email)
            applicable = [c for c, d in offices.items() if d.applies_to != Department.AppliesTo.RESIDENTS]
            if reg == COMPLETED_LOGIN[1]:
                plan, state = {c: A.APPROVED for c in applicable}, "completed"
            else:
                plan = {c: A.APPROVED if c in ("FIN", "SPT") else A.PENDING for c in applicable}
                plan["LIB"] = A.REJECTED
                state = "on_hold"
            requests_created += _write_chunk(b, [row], [state], fixed_plans={reg: plan})
            created += 1
            if state == "completed":
                request = ClearanceRequest.objects.get(student__registration_number=reg)
                if not Certificate.objects.filter(request=request).exists():
                    load([dict(request_id=request.pk, issued_by_id=admin.pk)], Certificate, user=admin, reason=REASON)

        # the sample files' students first, then numbered ones: `students` in all
        samples = sample_registration_numbers()
        generated = (registration_number(k) for k in range(10 * students + 100))
        taken = set(samples) | {DEMO_STUDENT_REG, COMPLETED_LOGIN[1], ON_HOLD_LOGIN[1]}
        room = max(students - 3, 0)
        wanted = samples[:room]
        wanted += [r for r in generated if r not in taken][:room - len(wanted)]
        b.codes_used |= {line["code"] for line in statement_lines()}
        for start in range(0, len(wanted), CHUNK):
            regs = wanted[start:start + CHUNK]
            existing = set(Student.objects.filter(registration_number__in=regs).values_list("registration_number",
                                                                                          flat=True))
            new = [b.student(r) for r in regs if r not in existing]
            if new:
                requests_created += _write_chunk(b, new, [_state(rng) for _ in new])
                created += len(new)
            if progress:
                progress(min(start + CHUNK, len(wanted)), len(wanted))
        _statement_payments(admin)
        return SeedReport(students_created=created, students_total=Student.objects.count(),
                          requests_created=requests_created, password=password)
