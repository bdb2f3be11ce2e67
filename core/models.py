"""The clearance domain (DESIGN.md, "Domain"). Models hold fields, constraints and small derived
properties; every workflow write lives in core/services/."""
from __future__ import annotations

import datetime
import json
import re
import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey
from simple_history.models import HistoricalRecords

from . import files
from .history import HistoricalAudit

REGISTRATION_NUMBER_RE = r"^[A-Z]{2,6}/[A-Z]{2,6}/[0-9]{3,5}/[0-9]{4}$"
MPESA_CODE_RE = r"^[A-Z0-9]{10}$"
KES = dict(max_digits=12, decimal_places=2)


class AuditHistoricalRecords(HistoricalRecords):
    """Historical tables are read by object (`id`), never by the other copied columns; simple-history
    indexes every copied foreign key and unique field, and each of those indexes is one more B-tree
    to update per historical row (a 100,000-row balance import writes 200,000). Only `id` keeps its
    index here: pages show one object's history, `WHERE id = … ORDER BY history_date`."""

    def copy_fields(self, model):
        fields = super().copy_fields(model)
        for name, field in fields.items():
            if name != model._meta.pk.name:
                field.db_index = False
        return fields

    def _get_history_user_fields(self):
        # nothing lists history by user (each page shows one object's history), so no index either;
        # the date has none for the same reason (SIMPLE_HISTORY_DATE_INDEX = False in settings)
        fields = super()._get_history_user_fields()
        fields["history_user"].db_index = False
        return fields


def history(**kwargs):
    """simple-history on a domain model, with the acting user, the IP and a change reason. The
    user column is not a database foreign key: an audit row needs no check against the user table
    at every commit (one per historical row), and Django still sets it to NULL if a user is deleted."""
    return AuditHistoricalRecords(bases=[HistoricalAudit], user_db_constraint=False, **kwargs)


def normalize_registration_number(value: str) -> str:
    """`sce/cs/0001/2022 ` → `SCE/CS/0001/2022` (upper-case, no spaces anywhere)."""
    return re.sub(r"\s+", "", value or "").upper()


def admission_year_from(registration_number: str) -> int | None:
    match = re.search(r"/(\d{4})$", registration_number or "")
    return int(match.group(1)) if match else None


def validate_registration_number(value: str) -> None:
    if not re.match(REGISTRATION_NUMBER_RE, value or ""):
        raise ValidationError(
            "%(value)s is not a registration number of the form SCHOOL/DEPT/NNNN/YYYY, "
            "e.g. SCE/CS/0001/2022.", params={"value": value or "(empty)"}, code="invalid")


def validate_mpesa_code(value: str) -> None:
    if not re.match(MPESA_CODE_RE, value or ""):
        raise ValidationError(
            "An M-PESA code is 10 letters or digits, e.g. TL44LDQBWZ; %(value)s is not.",
            params={"value": value or "(empty)"}, code="invalid")


# What people may write (forms say it and refuse longer; services refuse it too): a reason or a
# response is read by a person, often on a phone; notes are an office's own.
REASON_MAX_LENGTH = 2000
NOTES_MAX_LENGTH = 4000


class JSONTextField(models.TextField):
    """A JSON document kept as plain text: for a large document written once and read whole (a
    balance import's plan, ~10 MB for 100,000 rows). PostgreSQL's jsonb parses and re-encodes it
    on every write, which costs several times the write itself; text is stored as sent. It cannot
    be queried inside, which nothing here needs."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValidationError("Not valid JSON.", code="invalid") from None
        return value

    def get_prep_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))


class TimeStamped(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# --- people -------------------------------------------------------------------------------------

class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in, by email. Roles are Groups (core.permissions)."""

    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150)
    is_staff = models.BooleanField(
        default=False, help_text="May log in to an admin site (every role but none).")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    email_notifications = models.BooleanField(
        "email me my notifications", default=True,
        help_text="Notifications also come by email (they are always in Clearance).")

    objects = UserManager()
    history = history(excluded_fields=["password", "last_login"])

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.full_name or self.email

    def clean(self):
        super().clean()
        self.email = (self.email or "").strip().lower()

    def get_full_name(self):
        return self.full_name

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


# --- academic structure -------------------------------------------------------------------------

class School(models.Model):
    code = models.CharField(max_length=6, unique=True)
    name = models.CharField(max_length=200)

    history = history()

    class Meta:
        ordering = ["code"]
        permissions = [("review_school", "Can review the school office's clearance for this school")]

    def __str__(self):
        return f"{self.code} — {self.name}"


class AcademicDepartment(models.Model):
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="academic_departments")
    code = models.CharField(max_length=6)
    name = models.CharField(max_length=200)

    history = history()

    class Meta:
        ordering = ["school__code", "code"]
        constraints = [models.UniqueConstraint(fields=["school", "code"], name="uniq_acad_dept_code_per_school")]

    def __str__(self):
        return f"{self.code} — {self.name}"


class Programme(models.Model):
    academic_department = models.ForeignKey(AcademicDepartment, on_delete=models.PROTECT, related_name="programmes")
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)

    history = history()

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.name


class Student(TimeStamped):
    registration_number = models.CharField(
        max_length=30, unique=True, validators=[validate_registration_number],
        help_text="SCHOOL/DEPT/NNNN/YYYY; stored upper-case without spaces.")
    admission_year = models.PositiveSmallIntegerField(editable=False, db_index=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=20, blank=True)
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="students")
    academic_department = models.ForeignKey(AcademicDepartment, on_delete=models.PROTECT, related_name="students")
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="students")
    expected_graduation_year = models.PositiveSmallIntegerField("cohort (expected graduation year)", db_index=True)
    is_resident = models.BooleanField("lives in a hostel", default=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="student")

    history = history()

    class Meta:
        ordering = ["registration_number"]
        constraints = [
            models.CheckConstraint(condition=Q(registration_number__regex=REGISTRATION_NUMBER_RE),
                                   name="student_reg_no_format"),
        ]
        indexes = [
            models.Index(fields=["school", "expected_graduation_year"]),
            models.Index(fields=["programme", "expected_graduation_year"]),
            models.Index(fields=["last_name", "first_name"]),
        ]

    def __str__(self):
        return f"{self.registration_number} {self.full_name}"

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def clean(self):
        self.registration_number = normalize_registration_number(self.registration_number)
        validate_registration_number(self.registration_number)
        self.admission_year = admission_year_from(self.registration_number)
        if self.academic_department_id and self.school_id and self.academic_department.school_id != self.school_id:
            raise ValidationError({"academic_department": "This department belongs to another school."})
        if (self.programme_id and self.academic_department_id
                and self.programme.academic_department_id != self.academic_department_id):
            raise ValidationError({"programme": "This programme belongs to another department."})

    def save(self, *args, **kwargs):
        # Normalising the key is part of the field's meaning, not workflow.
        self.registration_number = normalize_registration_number(self.registration_number)
        self.admission_year = admission_year_from(self.registration_number) or 0
        super().save(*args, **kwargs)


# --- offices and cycles -------------------------------------------------------------------------

class Department(models.Model):
    """A clearance office."""

    class Type(models.TextChoices):
        FINANCE = "finance", "Finance"
        LIBRARY = "library", "Library"
        HOSTEL = "hostel", "Hostel"
        FACULTY = "faculty", "School / faculty"
        SPORTS = "sports", "Sports"
        STORE = "store", "Store"
        REGISTRY = "registry", "Registry"
        OTHER = "other", "Other"

    class AppliesTo(models.TextChoices):
        ALL = "all", "Every student"
        RESIDENTS = "residents", "Hostel residents only"
        SCHOOLS = "schools", "Students of the selected schools"

    code = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.OTHER)
    head_email = models.EmailField(blank=True)
    location = models.CharField(max_length=200, blank=True,
                                help_text="Where students go to this office: building, room, opening hours. "
                                          "Shown on the student's page.")
    is_active = models.BooleanField(default=True)
    stage = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="Offices in the same stage clear in parallel; a stage opens when every earlier one is approved.")
    sla_days = models.PositiveSmallIntegerField("SLA (days)", default=7)
    applies_to = models.CharField(max_length=20, choices=AppliesTo.choices, default=AppliesTo.ALL)
    schools = models.ManyToManyField(School, blank=True, related_name="+",
                                     help_text="Used when the office applies to selected schools.")

    history = history(m2m_fields=[schools])

    class Meta:
        ordering = ["stage", "code"]
        permissions = [("review_department", "Can review clearance for this office")]
        constraints = [models.CheckConstraint(condition=Q(stage__gte=1), name="department_stage_positive")]

    def __str__(self):
        return self.code

    def applies_to_student(self, student: Student, school_ids: set[int] | None = None) -> bool:
        if not self.is_active:
            return False
        if self.applies_to == self.AppliesTo.RESIDENTS:
            return student.is_resident
        if self.applies_to == self.AppliesTo.SCHOOLS:
            if school_ids is None:
                school_ids = {s.pk for s in self.schools.all()}
            return student.school_id in school_ids
        return True


class ClearanceCycle(TimeStamped):
    name = models.CharField(max_length=100, unique=True)
    graduation_year = models.PositiveSmallIntegerField(null=True, blank=True)
    opens_on = models.DateField()
    closes_on = models.DateField()
    is_closed = models.BooleanField(default=False, help_text="Close early, whatever the dates say.")
    max_resubmissions = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Re-submissions allowed per request; empty uses the site default.")

    history = history()

    class Meta:
        ordering = ["-opens_on"]
        constraints = [models.CheckConstraint(condition=Q(closes_on__gte=models.F("opens_on")),
                                              name="cycle_closes_after_opening")]

    def __str__(self):
        return self.name

    @property
    def is_open(self) -> bool:
        today = timezone.localdate()
        return not self.is_closed and self.opens_on <= today <= self.closes_on

    @property
    def resubmission_limit(self) -> int:
        return self.max_resubmissions if self.max_resubmissions is not None else settings.MAX_RESUBMISSIONS


# --- clearance ----------------------------------------------------------------------------------

class ClearanceRequest(TimeStamped):
    class Reason(models.TextChoices):
        GRADUATION = "graduation", "Graduation"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        TRANSFER = "transfer", "Transfer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        COMPLETED = "completed", "Completed"
        REVOKED = "revoked", "Revoked"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="clearance_requests")
    cycle = models.ForeignKey(ClearanceCycle, on_delete=models.PROTECT, related_name="requests")
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.GRADUATION)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, editable=False)
    submitted_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    resubmission_count = models.PositiveSmallIntegerField(default=0, editable=False)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    revoked_reason = models.TextField(blank=True, editable=False, max_length=REASON_MAX_LENGTH)

    history = history()

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            models.UniqueConstraint(fields=["student", "cycle"], condition=~Q(status="revoked"),
                                    name="one_open_request_per_student_cycle"),
            models.CheckConstraint(condition=~Q(status="completed") | Q(completed_at__isnull=False),
                                   name="request_completed_has_date"),
            models.CheckConstraint(condition=~Q(status="revoked") | ~Q(revoked_reason=""),
                                   name="request_revoked_has_reason"),
        ]
        indexes = [models.Index(fields=["cycle", "status"]), models.Index(fields=["status", "completed_at"])]

    def __str__(self):
        return f"{self.student.registration_number} — {self.cycle}"


class ClearanceApproval(TimeStamped):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WAIVED = "waived", "Waived"

    CLEARED = (Status.APPROVED, Status.WAIVED)

    request = models.ForeignKey(ClearanceRequest, on_delete=models.CASCADE, related_name="approvals")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="approvals")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, editable=False)
    waiting_since = models.DateTimeField(default=timezone.now, editable=False,
                                         help_text="When it first became pending (the SLA clock): a re-submission or a "
                                                   "re-open does not restart it.")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    decided_by_import = models.ForeignKey("BalanceImport", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+", editable=False)
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    reason = models.TextField(blank=True, max_length=REASON_MAX_LENGTH,
                              help_text="Required to reject or waive; shown to the student.")
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH,
                             help_text="Internal notes for the office, up to 4,000 characters.")
    student_response = models.TextField(blank=True, max_length=REASON_MAX_LENGTH,
                                        help_text="The student's answer when re-submitting.")
    # stored under a random name (core/files.py); the uploader's name is only the download name
    evidence = models.FileField(upload_to=files.evidence_name, blank=True)
    evidence_name = models.CharField(max_length=255, blank=True, help_text="The evidence file's name as uploaded.")
    # the file the student sent with their latest response (a return slip, a receipt): checked and
    # stored as evidence is, downloaded only by the student and the office reviewing the item
    response_file = models.FileField(upload_to=files.response_name, blank=True, editable=False)
    response_file_name = models.CharField(max_length=255, blank=True, editable=False,
                                          help_text="The name of the student's file as uploaded.")
    # derived, stored for the queue: no item of the request in an earlier stage is still to be
    # cleared. Kept by core.services.status.approvals_refresh_stage_open, which every change of an
    # approval's status goes through (requests_refresh_status) and an office's stage change calls;
    # check_consistency proves it. The approve service checks the stages itself, under the locks.
    stage_open = models.BooleanField(default=True, editable=False)

    history = history(excluded_fields=["stage_open"])      # derived: not a change anyone made

    class Meta:
        ordering = ["waiting_since"]
        constraints = [
            models.UniqueConstraint(fields=["request", "department"], name="one_approval_per_request_department"),
            models.CheckConstraint(condition=~Q(status__in=["rejected", "waived"]) | ~Q(reason=""),
                                   name="approval_reject_waive_needs_reason"),
            models.CheckConstraint(condition=Q(status="pending") | Q(decided_at__isnull=False),
                                   name="approval_decision_has_date"),
        ]
        indexes = [
            models.Index(fields=["department", "status", "waiting_since"]),
            # the queue's default order within an office, whatever the status filter
            models.Index(fields=["department", "waiting_since"]),
            models.Index(fields=["status", "decided_at"]),
            # "waiting" (pending, stage open), in the queue's order: a page and its capped count read
            # from here, whatever the queue (core.selectors.staff.approvals_waiting). Not partial:
            # PostgreSQL leaves a column its predicate fixes out of the scan's bounds, SQLite then
            # prefers the index above
            models.Index(fields=["department", "status", "stage_open", "waiting_since", "id"], name="approval_waiting"),
        ]

    def __str__(self):
        return f"{self.department.code} for {self.request.student.registration_number}"

    def save(self, *args, **kwargs):
        # `stage_open` is the database's to keep (approvals_refresh_stage_open): saving an item that
        # was loaded never writes back the value it was loaded with over a sibling's newer decision
        if not self._state.adding and kwargs.get("update_fields") is None and not args:
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name != "stage_open"]
        super().save(*args, **kwargs)

    @property
    def is_cleared(self) -> bool:
        return self.status in self.CLEARED

    @property
    def state_token(self) -> str:
        """What a page carries of the item as the clerk saw it; a decision sent with an older token
        is refused (every write of an approval moves `updated_at`)."""
        return self.updated_at.isoformat() if self.updated_at else ""

    @property
    def days_waiting(self) -> int:
        end = self.decided_at if self.status != self.Status.PENDING and self.decided_at else timezone.now()
        return max((end - self.waiting_since).days, 0)

    @property
    def is_overdue(self) -> bool:
        return self.status == self.Status.PENDING and self.days_waiting > self.department.sla_days


class Hold(TimeStamped):
    class Source(models.TextChoices):
        MANUAL = "manual", "Placed by the office"
        BALANCE_IMPORT = "balance_import", "Balance import"
        HOLD_IMPORT = "hold_import", "Hold import"
        RULE = "rule", "Rule"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RELEASED = "released", "Released"
        WAIVED = "waived", "Waived"

    # Indexes: the two composite ones below serve every list and lookup (student + office, office +
    # status); the balance import rewrites most rows of this table, and each further index is one
    # more B-tree to update per row, so the foreign keys and created_at carry none of their own.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="holds", db_index=False)
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="holds", db_index=False)
    reason = models.CharField(max_length=255)
    amount = models.DecimalField("amount (KES)", null=True, blank=True, **KES)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, editable=False)
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", editable=False, db_index=False)
    placed_at = models.DateTimeField(default=timezone.now, editable=False)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", editable=False, db_index=False)
    released_at = models.DateTimeField(null=True, blank=True, editable=False)
    release_reason = models.TextField(blank=True, editable=False, max_length=REASON_MAX_LENGTH)
    # which import last wrote this hold; no database constraint (nor index): the import rewrites
    # most holds, and a deferred foreign-key check per row at commit costs about a second per
    # 100,000 holds. Imports are never deleted in the app; if one were, Django's SET_NULL runs.
    balance_import = models.ForeignKey("BalanceImport", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="holds", editable=False, db_index=False, db_constraint=False)
    # a FIN import hold released because a verified payment covers the balance of that import
    # (core/services/holds.py: holds_release_paid); the next import that shows a balance places it
    # again. Neither index nor constraint, for the same reason as balance_import.
    released_for_payment = models.ForeignKey("Payment", null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="+", editable=False, db_index=False,
                                             db_constraint=False)
    # which hold import last placed, updated or released this hold (source hold_import); the same
    # reasons as above for no constraint nor index
    hold_import = models.ForeignKey("HoldImport", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="holds", editable=False, db_index=False, db_constraint=False)

    history = history()

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__isnull=True) | Q(amount__gte=0), name="hold_amount_not_negative"),
            # the balance import keeps exactly one FIN hold per student up to date
            models.UniqueConstraint(fields=["student", "department"],
                                    condition=Q(status="active", source="balance_import"),
                                    name="one_active_import_hold_per_student_department"),
            models.CheckConstraint(condition=~Q(status="waived") | ~Q(release_reason=""), name="hold_waive_needs_reason"),
        ]
        indexes = [models.Index(fields=["student", "department", "status"]),
                   models.Index(fields=["department", "status"])]

    def __str__(self):
        amount = f" KES {self.amount:,.2f}" if self.amount is not None else ""
        return f"{self.department.code} hold on {self.student.registration_number}{amount}"


# --- money --------------------------------------------------------------------------------------

class BalanceImport(TimeStamped):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        PREVIEWED = "previewed", "Previewed"
        QUEUED = "queued", "Queued to apply"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    file = models.FileField(upload_to=files.import_name, blank=True)  # random name; original_name is the upload's
    original_name = models.CharField("file name", max_length=255, blank=True)
    sha256 = models.CharField("file fingerprint (SHA-256)", max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED)
    rows_total = models.PositiveIntegerField("rows read", default=0)
    updated_count = models.PositiveIntegerField("balances changed", default=0)
    unchanged_count = models.PositiveIntegerField("unchanged", default=0)
    not_found_count = models.PositiveIntegerField("not found", default=0)
    error_count = models.PositiveIntegerField("rows with errors", default=0)
    errors = models.JSONField(default=list, blank=True, help_text="Row-level errors: row, column, reason.")
    progress = models.PositiveSmallIntegerField("how far (%)", default=0, help_text="Percent done while running in the background.")
    applied_at = models.DateTimeField("applied", null=True, blank=True)
    failure_reason = models.TextField("why it failed", blank=True)
    plan = JSONTextField(default=dict, blank=True, editable=False,
                            help_text="What the preview found, so apply never re-reads the file: changed rows "
                                      "(student, old and new balance, graduation fee), unchanged and not-found rows.")
    warnings = models.JSONField(default=list, blank=True, help_text="Things the officer should know before "
                                                                    "applying, e.g. the same file was applied before.")
    # the last process to preview or apply it in the background or on confirm (core/services/jobs.py):
    # its claim lives as long as that process holds the import's lock, so a dead worker is seen at once
    claimed_by = models.CharField("taken up by", max_length=200, blank=True,
                                  help_text="host:pid of the process that last took it up to preview or apply it.")
    claimed_at = models.DateTimeField("taken up at", null=True, blank=True)
    interrupted = models.BooleanField(default=False, help_text="Failed because its worker stopped, ran out of time "
                                                               "or never started: nothing was written, the preview "
                                                               "still holds, and it can be confirmed again.")

    history = history(excluded_fields=["plan"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Import #{self.pk} {self.original_name}"

    @property
    def changed_rows(self) -> list[dict]:
        """The previewed changes, for the preview page: row, registration number, old → new."""
        keys = ("student_id", "record_id", "registration_number", "row", "old_balance", "new_balance",
                "old_graduation_fee_status", "new_graduation_fee_status", "notes")
        return [dict(zip(keys, item)) for item in (self.plan or {}).get("changed", [])]


class HoldImport(TimeStamped):
    """One office's list of holds, imported (core/services/hold_imports.py): uploaded and previewed,
    then applied or cancelled. The plan is what the preview found, so apply never re-reads the file."""

    class Status(models.TextChoices):
        PREVIEWED = "previewed", "Previewed"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="hold_imports")
    file = models.FileField(upload_to=files.import_name, blank=True)  # random name; original_name is the upload's
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PREVIEWED)
    full_list = models.BooleanField("the file is the full list", default=False,
                                    help_text="Holds this import mechanism placed earlier for students and reasons "
                                              "no longer in the file are released.")
    rows_total = models.PositiveIntegerField("rows read", default=0)
    placed_count = models.PositiveIntegerField("placed", default=0)
    updated_count = models.PositiveIntegerField("updated", default=0)
    unchanged_count = models.PositiveIntegerField("unchanged", default=0)
    released_count = models.PositiveIntegerField("released", default=0)
    not_found_count = models.PositiveIntegerField("not found", default=0)
    error_count = models.PositiveIntegerField("rows with errors", default=0)
    skipped_count = models.PositiveIntegerField("rows skipped", default=0)
    errors = models.JSONField(default=list, blank=True, help_text="Row-level errors: row, column, reason.")
    warnings = models.JSONField(default=list, blank=True)
    plan = JSONTextField(default=dict, blank=True, editable=False,
                         help_text="What the preview found: holds to place, update and release, rows not found "
                                   "and skipped, and the office's holds as the preview saw them.")
    applied_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    history = history(excluded_fields=["plan"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Hold import #{self.pk}" + (f" ({self.original_name})" if self.original_name else "")


class StudentImport(TimeStamped):
    """The registry's list of a cohort's graduands from the student records system, imported
    (core/services/student_imports.py): uploaded and previewed, then applied or cancelled. The plan
    is what the preview found (students to create, to change, unchanged), so apply never re-reads
    the file. An import creates and updates students; it never deletes one."""

    class Status(models.TextChoices):
        PREVIEWED = "previewed", "Previewed"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    file = models.FileField(upload_to=files.import_name, blank=True)  # random name; original_name is the upload's
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PREVIEWED)
    rows_total = models.PositiveIntegerField("rows read", default=0)
    new_count = models.PositiveIntegerField("new", default=0)
    changed_count = models.PositiveIntegerField("changed", default=0)
    unchanged_count = models.PositiveIntegerField("unchanged", default=0)
    error_count = models.PositiveIntegerField("rows with errors", default=0)
    skipped_count = models.PositiveIntegerField("rows skipped", default=0)
    errors = models.JSONField(default=list, blank=True, help_text="Row-level errors: row, column, reason.")
    warnings = models.JSONField(default=list, blank=True)
    plan = JSONTextField(default=dict, blank=True, editable=False,
                         help_text="What the preview found: students to create and to change (old → new), "
                                   "unchanged, unknown programmes and schools, rows skipped, and the students as "
                                   "the preview saw them.")
    applied_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    history = history(excluded_fields=["plan"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Graduand import #{self.pk}" + (f" ({self.original_name})" if self.original_name else "")

    @property
    def invited_count(self) -> int:
        """Students of the file invited to make a login when it was applied (those with an email and no login)."""
        return (self.plan or {}).get("invited", 0)


class FinanceRecord(models.Model):
    class GraduationFeeStatus(models.TextChoices):
        UNPAID = "unpaid", "Unpaid"
        PAID = "paid", "Paid"
        WAIVED = "waived", "Waived"

    student = models.OneToOneField(Student, on_delete=models.CASCADE, related_name="finance_record")
    tuition_balance = models.DecimalField("tuition balance (KES)", default=Decimal("0"),
                                          help_text="Negative is a credit.", **KES)
    graduation_fee = models.DecimalField("graduation fee (KES)", default=Decimal("5500"), **KES)
    graduation_fee_status = models.CharField(max_length=10, choices=GraduationFeeStatus.choices,
                                             default=GraduationFeeStatus.UNPAID)
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH)
    # neither an index nor a database constraint: every import rewrites it on every row (an index
    # entry and a deferred foreign-key check each), and nothing looks records up by it; Django's
    # SET_NULL still runs if an import is ever deleted
    last_import = models.ForeignKey(BalanceImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False, db_constraint=False)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["student__registration_number"]
        constraints = [models.CheckConstraint(condition=Q(graduation_fee__gte=0), name="graduation_fee_not_negative")]
        # No index on tuition_balance: every import rewrites it on every row, and with no indexed
        # column changing PostgreSQL updates the row in place (HOT, see migration 0005's fillfactor)
        # instead of adding an entry to every index. The finance lists filter and sort 100,000
        # records without it in milliseconds.

    def __str__(self):
        return f"Finance record of {self.student.registration_number}"


class Payment(TimeStamped):
    class Method(models.TextChoices):
        MPESA = "mpesa", "M-PESA"
        BANK = "bank", "Bank"
        CASH = "cash", "Cash"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField("amount (KES)", **KES)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.MPESA)
    transaction_code = models.CharField(max_length=40)
    phone = models.CharField(max_length=20, blank=True)
    paid_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", editable=False)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    receipt = models.FileField(upload_to=files.receipt_name, blank=True)
    receipt_name = models.CharField(max_length=255, blank=True, help_text="The receipt file's name as uploaded.")

    history = history()

    class Meta:
        ordering = ["-paid_at"]
        constraints = [
            models.UniqueConstraint(fields=["method", "transaction_code"], name="unique_payment_code_per_method"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=~Q(method="mpesa") | Q(transaction_code__regex=MPESA_CODE_RE),
                                   name="payment_mpesa_code_format"),
        ]
        indexes = [models.Index(fields=["verified_at"]), models.Index(fields=["student", "paid_at"])]

    def __str__(self):
        return f"{self.get_method_display()} {self.transaction_code} KES {self.amount:,.2f}"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class GownIssuance(TimeStamped):
    class Size(models.TextChoices):
        S = "S", "Small"
        M = "M", "Medium"
        L = "L", "Large"
        XL = "XL", "Extra large"

    class DepositStatus(models.TextChoices):
        HELD = "held", "Held"
        REFUNDED = "refunded", "Refunded"
        RETAINED = "retained", "Retained"
        PART_REFUNDED = "part_refunded", "Part-refunded"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="gowns")
    gown_code = models.CharField(max_length=20)
    size = models.CharField(max_length=3, choices=Size.choices)
    issued_at = models.DateTimeField(default=timezone.now, editable=False)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", editable=False)
    expected_return_on = models.DateField()
    returned_at = models.DateTimeField(null=True, blank=True, editable=False)
    deposit = models.DecimalField("deposit (KES)", default=Decimal("2000"), **KES)
    deposit_status = models.CharField(max_length=20, choices=DepositStatus.choices, default=DepositStatus.HELD,
                                      editable=False)
    refunded_amount = models.DecimalField(default=Decimal("0"), editable=False, **KES)
    damage_notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH)
    # why part (or all) of the deposit was kept: required when less than the deposit is refunded
    retained_reason = models.TextField(blank=True, max_length=REASON_MAX_LENGTH, editable=False)
    deposit_settled_at = models.DateTimeField("deposit settled at", null=True, blank=True, editable=False)
    deposit_settled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+", editable=False)

    history = history()

    class Meta:
        ordering = ["-issued_at"]
        verbose_name = "gown"
        verbose_name_plural = "gowns"
        constraints = [
            models.UniqueConstraint(fields=["gown_code"], condition=Q(returned_at__isnull=True),
                                    name="gown_out_once"),
            models.UniqueConstraint(fields=["student"], condition=Q(returned_at__isnull=True),
                                    name="one_gown_out_per_student"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=models.F("deposit")) & Q(refunded_amount__gte=0),
                                   name="gown_refund_within_deposit"),
        ]
        indexes = [models.Index(fields=["deposit_status"])]

    @property
    def is_out(self) -> bool:
        return self.returned_at is None

    def is_overdue(self, today=None) -> bool:
        """Out past its expected return date (the same rule as core.selectors.gowns.gowns_overdue)."""
        return self.returned_at is None and self.expected_return_on < (today or timezone.localdate())

    def __str__(self):
        return f"Gown {self.gown_code} ({self.size}) — {self.student.registration_number}"


# --- messages and documents ---------------------------------------------------------------------

class Notification(models.Model):
    class Kind(models.TextChoices):
        INFO = "info", "Information"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        HOLD = "hold", "Hold"
        COMPLETED = "completed", "Completed"
        OVERDUE = "overdue", "Overdue"
        REVOKED = "revoked", "Revoked"
        REOPENED = "reopened", "Re-opened"
        CERTIFICATE = "certificate", "Certificate"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.INFO)
    link = models.CharField(max_length=300, blank=True, help_text="Where the object it is about can be seen.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # the email of this notification (core/services/notifications.py): sent at most once — claimed
    # before sending, so a task delivered again never sends it twice; a failure is kept here
    email_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)
    email_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    email_error = models.TextField(blank=True, editable=False)

    history = history()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return self.title


def new_verification_code() -> str:
    return secrets.token_urlsafe(24)


class Certificate(models.Model):
    request = models.OneToOneField(ClearanceRequest, on_delete=models.PROTECT, related_name="certificate")
    code = models.CharField(max_length=64, unique=True, default=new_verification_code, editable=False)
    issued_at = models.DateTimeField(default=timezone.now, editable=False)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    revoked_reason = models.TextField(blank=True, editable=False, max_length=REASON_MAX_LENGTH)

    history = history()

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self):
        return f"Certificate for {self.request}"

    @property
    def is_valid(self) -> bool:
        return self.revoked_at is None


class Delegation(TimeStamped):
    """A reviewer hands their office rights to another user for a date range."""

    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="delegations")
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_given")
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received")
    starts_on = models.DateField()
    ends_on = models.DateField()
    reason = models.CharField(max_length=255, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = history()

    class Meta:
        ordering = ["-starts_on"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="delegation_dates_ordered"),
            models.CheckConstraint(condition=~Q(from_user=models.F("to_user")), name="delegation_not_to_self"),
        ]
        indexes = [models.Index(fields=["to_user", "starts_on", "ends_on"])]

    def __str__(self):
        return f"{self.department.code}: {self.from_user} → {self.to_user} ({self.starts_on}–{self.ends_on})"


class ExportLog(models.Model):
    """One report exported (a download, a command, a background export): who, which report with
    which filters, the format and how many rows. History-tracked, so it is in the audit trail."""

    class Format(models.TextChoices):
        XLSX = "xlsx", "Excel (xlsx)"
        CSV = "csv", "CSV"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", editable=False)
    made_by = models.CharField(max_length=100, blank=True, editable=False,
                               help_text="What made it when no person did: the command's name, or 'system'.")
    report = models.CharField(max_length=40, editable=False)
    filters = models.JSONField(default=dict, blank=True, editable=False)
    format = models.CharField(max_length=4, choices=Format.choices, editable=False)
    rows = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)

    history = history()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.report} ({self.format}, {self.rows} rows) by {self.user or self.made_by or 'system'}"


class EmailSent(models.Model):
    """A scheduled email sent (a reviewer's daily digest, an office head's escalation): at most one
    per `kind`, `key` (the person or the approval) and day, whichever process runs the schedule."""

    kind = models.CharField(max_length=20)
    key = models.CharField(max_length=100)
    day = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key", "day"], name="email_sent_once_a_day")]

    def __str__(self):
        return f"{self.kind} {self.key} {self.day}"


class ExportFile(models.Model):
    """An export made in the background ("My exports"): a report or a list too long to write while
    the browser waits. Queued by a person on one site, written by a worker as that person, kept for
    EXPORT_KEEP_DAYS and downloaded only by them (core/permissions.py: may_download_export)."""

    class Kind(models.TextChoices):
        REPORT = "report", "Report"
        LIST = "list", "List"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Being written"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Deleted (kept time over)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", editable=False)
    site = models.CharField(max_length=20, editable=False, help_text="The site it was asked for on.")
    kind = models.CharField(max_length=10, choices=Kind.choices, editable=False)
    name = models.CharField(max_length=40, editable=False, help_text="The report's name, or the list's.")
    title = models.CharField(max_length=300, editable=False)
    params = models.JSONField(default=dict, blank=True, editable=False,
                              help_text="What makes the rows again in the worker: filters, the list's query, "
                                        "selected rows.")
    format = models.CharField(max_length=4, choices=ExportLog.Format.choices, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True,
                              editable=False)
    rows = models.PositiveIntegerField(default=0, editable=False)
    file = models.FileField(upload_to=files.export_name, blank=True, editable=False)
    file_name = models.CharField(max_length=200, blank=True, editable=False)
    error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField("asked for", default=timezone.now, db_index=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "export"
        verbose_name_plural = "exports"

    def __str__(self):
        return f"{self.title} ({self.format})"

    @property
    def is_pending(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    def kept_until(self):
        if self.finished_at is None or self.status != self.Status.DONE:
            return None
        return self.finished_at + datetime.timedelta(days=settings.EXPORT_KEEP_DAYS)


class StatementReconciliation(models.Model):
    """One M-PESA statement reconciled (core/services/reconcile.py): who, when, the statement file
    (stored under a random name), the counts and, in its lines, what each line came to. Written
    once; the page and the downloads are made from it, and "Record and verify" takes a line's
    values from here, never from the page."""

    file = models.FileField(upload_to=files.statement_name, blank=True, editable=False)
    original_name = models.CharField(max_length=255, blank=True, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    period_start = models.DateTimeField(null=True, blank=True, editable=False)
    period_end = models.DateTimeField(null=True, blank=True, editable=False)
    lines_total = models.PositiveIntegerField(default=0, editable=False)
    matched_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Lines tied to one student: a payment recorded with the line's code, or "
                                             "an A/C No. that is one student's number (exact or a clear typo).")
    unmatched_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Lines with no payment recorded whose A/C No. names no student.")
    ambiguous_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Lines with no payment recorded whose A/C No. is as close to two or more "
                                             "students' numbers.")
    verified_count = models.PositiveIntegerField(default=0, editable=False)
    already_verified_count = models.PositiveIntegerField(default=0, editable=False)
    mismatched_count = models.PositiveIntegerField(default=0, editable=False)
    skipped_count = models.PositiveIntegerField(default=0, editable=False)
    errors = models.JSONField(default=list, blank=True, editable=False,
                              help_text="Lines that could not be read: row, column, reason.")
    missing = models.JSONField(default=list, blank=True, editable=False,
                               help_text="Recorded, unverified M-PESA payments of the statement's days with no line "
                                         "in it: payment id, code, registration number, amount, paid at.")

    history = history()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "M-PESA reconciliation"
        verbose_name_plural = "M-PESA reconciliations"

    def __str__(self):
        return f"Reconciliation #{self.pk} {self.original_name}"


class ReconciliationLine(models.Model):
    """One completed line of a reconciled statement, as it was read, and what it came to then.
    Written once with its reconciliation (no history of its own: it never changes; a payment
    recorded from it has its own history naming the statement)."""

    class Outcome(models.TextChoices):
        VERIFIED = "verified", "Verified now"
        ALREADY_VERIFIED = "already_verified", "Already verified"
        MISMATCH = "mismatch", "Amount differs"
        UNRECORDED = "unrecorded", "No payment recorded"

    class Match(models.TextChoices):
        PAYMENT = "payment", "Recorded payment"
        EXACT = "exact", "Exact registration number"
        TYPO = "typo", "Clear typo of one number"
        AMBIGUOUS = "ambiguous", "Ambiguous"
        NONE = "none", "No match"

    reconciliation = models.ForeignKey(StatementReconciliation, on_delete=models.CASCADE, related_name="lines")
    row = models.PositiveIntegerField(help_text="The line number in the statement file.")
    receipt = models.CharField(max_length=10)
    completed_at = models.DateTimeField()
    amount = models.DecimalField("amount (KES)", **KES)
    account = models.CharField(max_length=255, blank=True, help_text="The A/C No. as the payer typed it.")
    phone = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    match = models.CharField(max_length=10, choices=Match.choices)
    match_detail = models.CharField(max_length=200, blank=True)
    student = models.ForeignKey(Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    candidates = models.JSONField(default=list, blank=True, help_text="Ambiguous: the candidate students' ids.")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text="The payment recorded with the line's code when it was reconciled.")

    class Meta:
        ordering = ["reconciliation", "row"]
        constraints = [models.UniqueConstraint(fields=["reconciliation", "row"], name="one_reconciliation_line_per_row")]

    def __str__(self):
        return f"Line {self.row}: {self.receipt} KES {self.amount:,.2f}"


class MpesaConfirmation(models.Model):
    """One M-PESA C2B confirmation as Daraja posted it (core/services/mpesa.py: mpesa_c2b_confirm) and
    what it came to. Every confirmation is kept, so one whose account names no student is not lost:
    finance sees it in /finance/ → M-PESA confirmations. `trans_id` is unique: a replayed or
    concurrent post of the same transaction finds this row and records nothing more. Written once
    (no history of its own: it never changes; the payment recorded or verified from it has its
    own history, naming it)."""

    class Outcome(models.TextChoices):
        RECORDED = "recorded", "Payment recorded and verified"
        VERIFIED = "verified", "Recorded payment verified"
        ALREADY_VERIFIED = "already_verified", "Already verified"
        MISMATCH = "mismatch", "Amount differs from the recorded payment"
        UNMATCHED = "unmatched", "No student: to record by hand"

    class Match(models.TextChoices):
        PAYMENT = "payment", "Recorded payment"
        EXACT = "exact", "Registration number"
        TYPO = "typo", "Clear typo of one number"
        AMBIGUOUS = "ambiguous", "Ambiguous"
        NONE = "none", "No match"

    trans_id = models.CharField("M-PESA code", max_length=10, unique=True)
    trans_time = models.DateTimeField("paid at")
    amount = models.DecimalField("amount (KES)", **KES)
    bill_ref = models.CharField("account typed", max_length=100, blank=True,
                                help_text="BillRefNumber: the account the payer typed.")
    msisdn = models.CharField("phone", max_length=20, blank=True)
    payer_name = models.CharField(max_length=255, blank=True)
    short_code = models.CharField("Pay Bill", max_length=20, blank=True)
    transaction_type = models.CharField(max_length=40, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    source_ip = models.GenericIPAddressField("from", null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    match = models.CharField(max_length=10, choices=Match.choices)
    detail = models.CharField(max_length=255, blank=True)
    student = models.ForeignKey(Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text="The student it was recorded for; unmatched with a clear typo: the one "
                                          "it probably is.")
    candidates = models.JSONField(default=list, blank=True, help_text="Ambiguous: the candidate students' ids.")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField(default=dict, blank=True, help_text="The callback's body as Daraja sent it.")

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = "M-PESA confirmation"
        verbose_name_plural = "M-PESA confirmations"
        constraints = [
            models.CheckConstraint(condition=Q(trans_id__regex=MPESA_CODE_RE), name="mpesa_confirmation_code_format"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="mpesa_confirmation_amount_positive"),
        ]

    def __str__(self):
        return f"M-PESA {self.trans_id} KES {self.amount:,.2f}"


# --- systems that call the API ------------------------------------------------------------------

class ApiKey(AbstractAPIKey):
    """A key an office's system (or the portal) sends to /api/ (`Authorization: Api-Key <key>`).
    It authenticates as its `user`: a "system" account set up in /admin/ like a person of one role
    (its group, its offices and schools), so every permission still comes from core.permissions.
    Only a hash is kept; the key itself is shown once, when it is created (core/services/api_keys.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys",
                             help_text="The account the key acts as: its role and offices are the key's.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)

    history = history(excluded_fields=["hashed_key"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
