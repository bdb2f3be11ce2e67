"""Shared fixtures: the seven offices, one user per role, an open cycle and students.

Stages: every office is in stage 1 (fully parallel) unless a test overrides `office_stages`, e.g.
    @pytest.mark.parametrize("office_stages", [{"REG": 2}])
"""
from __future__ import annotations

import datetime as dt
import os

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages

from core import permissions
from core.models import ClearanceApproval, Department
from core.services.requests import request_open
from tests import factories


def pytest_configure(config):
    """CLEARANCE_TEST_CLOCK=2026-12-04T21:30:00+00:00 runs the suite from that moment (the clock ticks).

    Late evening UTC is already tomorrow in Nairobi: a run from there finds a date taken in UTC where
    people read the local one (CI once failed so, at 21:04 UTC).
    """
    start = os.environ.get("CLEARANCE_TEST_CLOCK")
    if start:
        import time_machine

        config._clearance_clock = time_machine.travel(dt.datetime.fromisoformat(start), tick=True)
        config._clearance_clock.start()


OFFICES = [
    # code, name, type, applies_to
    ("FIN", "Finance", Department.Type.FINANCE, Department.AppliesTo.ALL),
    ("LIB", "Library", Department.Type.LIBRARY, Department.AppliesTo.ALL),
    ("HOS", "Hostels", Department.Type.HOSTEL, Department.AppliesTo.RESIDENTS),
    ("SCH", "School office", Department.Type.FACULTY, Department.AppliesTo.ALL),
    ("SPT", "Sports", Department.Type.SPORTS, Department.AppliesTo.ALL),
    ("GOWN", "Gown store", Department.Type.STORE, Department.AppliesTo.ALL),
    ("REG", "Registry", Department.Type.REGISTRY, Department.AppliesTo.ALL),
]
OFFICE_CODES = [code for code, *_ in OFFICES]


@pytest.fixture
def office_stages() -> dict[str, int]:
    """Stage per office code; missing codes are stage 1. Override with parametrize."""
    return {}


@pytest.fixture
def offices(db, office_stages) -> dict[str, Department]:
    """FIN LIB HOS SCH SPT GOWN REG as Department rows, keyed by code."""
    return {
        code: factories.DepartmentFactory(code=code, name=name, type=type_, applies_to=applies_to,
                                          stage=office_stages.get(code, 1))
        for code, name, type_, applies_to in OFFICES
    }


def _with_role(user, role):
    user.groups.add(Group.objects.get(name=role))
    if not user.is_staff and role != permissions.STUDENT:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def make_user(db):
    """make_user(role=None, **fields) → a user in that role's group."""
    def make(role=None, **fields):
        user = factories.UserFactory(**fields)
        return _with_role(user, role) if role else user
    return make


@pytest.fixture
def make_reviewer(db, offices):
    """make_reviewer("LIB", "SPT", schools=[...]) → a Department staff user reviewing those offices."""
    def make(*codes, schools=(), **fields):
        user = factories.UserFactory(**fields)
        permissions.reviewer_set_scope(user=user, departments=[offices[c] for c in codes], schools=schools)
        return user
    return make


@pytest.fixture
def superuser(db):
    return factories.UserFactory(email="admin@clearance.test", is_staff=True, is_superuser=True)


@pytest.fixture
def registry_user(make_user):
    return make_user(permissions.REGISTRY, email="registry@clearance.test")


@pytest.fixture
def finance_user(make_user, offices):
    """A finance officer who also reviews the FIN office."""
    user = make_user(permissions.FINANCE, email="finance@clearance.test")
    permissions.reviewer_set_scope(user=user, departments=[offices["FIN"]])
    return user


@pytest.fixture
def fin_client(client, finance_user):
    """A test client logged in as the finance officer."""
    client.force_login(finance_user)
    return client


def messages_of(response) -> list[str]:
    """The messages a response left for the next page (those not yet shown)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def lib_reviewer(make_reviewer):
    return make_reviewer("LIB", email="lib@clearance.test")


@pytest.fixture
def cycle(db):
    """A cycle open today."""
    return factories.ClearanceCycleFactory(name="2026 graduation")


@pytest.fixture
def student(db):
    """A non-resident student of SCE with a login user in the Student group."""
    s = factories.StudentFactory(with_user=True)
    _with_role(s.user, permissions.STUDENT)
    return s


@pytest.fixture
def resident_student(db):
    s = factories.StudentFactory(with_user=True, is_resident=True)
    _with_role(s.user, permissions.STUDENT)
    return s


@pytest.fixture
def open_request(offices, cycle, registry_user):
    """open_request(student) → the student's request in `cycle`, opened by the registry."""
    def make(student):
        request, _ = request_open(student=student, cycle=cycle, acting_user=registry_user)
        return request
    return make


@pytest.fixture
def clearance(open_request, student):
    """The fixture student's open request (6 offices: not a resident, so no HOS)."""
    return open_request(student)


def approval_of(request, code) -> ClearanceApproval:
    return ClearanceApproval.objects.select_related("department", "request").get(request=request,
                                                                                   department__code=code)


@pytest.fixture
def approval():
    """approval(request, "LIB") → that approval, fresh from the database."""
    return approval_of


@pytest.fixture
def complete_request(superuser):
    """complete_request(request) → approves every approval still pending, stage by stage (as the
    superuser); the finance item is already approved when no finance hold is active (rule 5)."""
    from core.services.approvals import approvals_approve

    def complete(request):
        stages = sorted(set(request.approvals.values_list("department__stage", flat=True)))
        for stage in stages:
            ids = list(request.approvals.filter(department__stage=stage, status=ClearanceApproval.Status.PENDING)
                       .values_list("pk", flat=True))
            approvals_approve(approval_ids=ids, acting_user=superuser).raise_if_refused()
        request.refresh_from_db()
        return request
    return complete


@pytest.fixture
def sqlite_param_limit(monkeypatch):
    """Let Django use this SQLite build's real bound-parameter limit instead of its default 999.

    Django's SQLite backend assumes 999 parameters per statement and splits bulk writes into ~50-row
    statements, so on SQLite queries grow with rows/50 whatever the service does. Query-count tests
    that prove "no per-row queries" use this so they measure the service, not that assumption.
    PostgreSQL has no such limit; nothing is changed there."""
    from django.db import connection
    if connection.vendor == "sqlite":
        import sqlite3
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        monkeypatch.setattr(connection.features, "max_query_params", limit)


# --- jobs: claims, locks, a cache that is down -----------------------------------------------------

# A cache nobody answers at (a closed port): every call fails as a Redis outage does.
CACHE_DOWN = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                          "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}


@pytest.fixture
def own_lock_dir(settings, tmp_path):
    """SQLite: lock files (core/locks.py) no other test run shares."""
    settings.LOCKS_DIR = str(tmp_path / "locks")


def as_if_claimed(balance_import, status, *, by="elsewhere:4242", at=None):
    """The import as a worker left it when it died: claimed by it, nobody holding its lock."""
    from django.utils import timezone
    from core.models import BalanceImport
    BalanceImport.objects.filter(pk=balance_import.pk).update(status=status, claimed_by=by,
                                                              claimed_at=at or timezone.now())


class LockHolder:
    """`with LockHolder(("balance-import-apply", 0), …):` another thread (its own database connection:
    another process, as far as core/locks.py goes) holds these locks for the block."""

    def __init__(self, *held):
        import threading
        self.held, self.taken, self.release = held, threading.Event(), threading.Event()

    def __enter__(self):
        import threading
        from contextlib import ExitStack
        from django.db import connection
        from core import locks

        def hold():
            try:
                with ExitStack() as stack:
                    for kind, number in self.held:
                        stack.enter_context(locks.held(kind, number))
                    self.taken.set()
                    self.release.wait(20)
            finally:
                connection.close()
        self.thread = threading.Thread(target=hold, daemon=True)
        self.thread.start()
        assert self.taken.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(10)


# --- stored files ----------------------------------------------------------------------------------

PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture
def with_evidence(superuser):
    """with_evidence(approval, name="letter.pdf", content=PDF_BYTES) → the approval, approved by the
    superuser through the service with that evidence (stored in the default storage)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from core.services.approvals import approval_approve

    def attach(approval, name="letter.pdf", content=PDF_BYTES):
        approval_approve(approval=approval, acting_user=superuser, evidence=SimpleUploadedFile(name, content))
        approval.refresh_from_db()
        return approval
    return attach


@pytest.fixture
def paid_with_receipt(finance_user):
    """paid_with_receipt(student, name="receipt.pdf", content=PDF_BYTES) → a payment recorded with that receipt."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from core.services.payments import payment_record

    counter = iter(range(10_000))

    def pay(student, name="receipt.pdf", content=PDF_BYTES):
        return payment_record(student=student, amount=5500, method="bank", transaction_code=f"BANK-{next(counter)}",
                              acting_user=finance_user, receipt=SimpleUploadedFile(name, content))
    return pay
