"""What a list exports: one django-import-export resource per model, declared once here and used by
every site's Export action (clearance_admin/exports.py) and by the background export of a long list
(core/services/exports.py). The site decides *which rows* (its list's scope and filters); the
resource decides *which columns*, the same on every site.

Columns are those a person of any site that lists the model already sees on its pages (no e-mail
addresses or phone numbers: a list export is no way round a page). Values leave as they are
(numbers, dates, moments), the writers of core.exports format and neutralise them, so an export of
a list is written exactly as a report is."""
from __future__ import annotations

from collections.abc import Iterator

from import_export import fields, resources, widgets

from .. import models as m
from ..selectors.reports import Column

TEXT, INT, MONEY, DATE, DATETIME = "text", "int", "money", "date", "datetime"


def _field(label: str, attribute: str, kind: str = TEXT, width: int = 16) -> fields.Field:
    widget = {INT: widgets.IntegerWidget(coerce_to_string=False),
              MONEY: widgets.DecimalWidget(coerce_to_string=False),
              DATE: widgets.DateWidget(coerce_to_string=False),
              DATETIME: widgets.DateTimeWidget(coerce_to_string=False)}.get(kind, widgets.Widget())
    field = fields.Field(attribute=attribute, column_name=label, widget=widget, readonly=True)
    field.kind, field.width = kind, width
    return field


class ListResource(resources.ModelResource):
    """A list's columns, written by core.exports: `columns()` for the header and the xlsx's formats,
    `rows(queryset)` for the values (one query per batch: `select_related` names what the columns
    read)."""

    select_related: tuple[str, ...] = ()
    name = ""               # the list's name in export logs and "My exports": "list:<name>"
    title = ""

    def columns(self) -> list[Column]:
        return [Column(f.column_name, f.kind, f.width) for f in self.get_export_fields()]

    def get_export_headers(self, selected_fields=None):
        return [c.label for c in self.columns()]

    def rows(self, queryset) -> Iterator[tuple]:
        export_fields = self.get_export_fields()
        getters = [f.get_value for f in export_fields]
        for obj in queryset.select_related(*self.select_related).iterator(chunk_size=2000):
            yield tuple(_plain(get(obj)) for get in getters)

    def export_field(self, field, instance, **kwargs):
        # import-export's own export (a Dataset) gets the same values as our writers
        return _plain(field.get_value(instance))


def _plain(value):
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or isinstance(value, (str, int, float)):
        return value
    if hasattr(value, "as_tuple") or hasattr(value, "isoformat"):       # Decimal, date, datetime
        return value
    return str(value)


class StudentResource(ListResource):
    name, title = "students", "Students"
    select_related = ("school", "programme", "academic_department")
    registration_number = _field("Registration number", "registration_number", width=22)
    first_name = _field("First name", "first_name")
    last_name = _field("Last name", "last_name")
    school = _field("School", "school__code", width=10)
    academic_department = _field("Department", "academic_department__code", width=12)
    programme = _field("Programme", "programme__name", width=30)
    admission_year = _field("Admission year", "admission_year", INT, 10)
    expected_graduation_year = _field("Cohort", "expected_graduation_year", INT, 10)
    is_resident = _field("Hostel resident", "is_resident", width=10)

    class Meta:
        model = m.Student
        fields = ("registration_number", "first_name", "last_name", "school", "academic_department", "programme",
                  "admission_year", "expected_graduation_year", "is_resident")


class ClearanceRequestResource(ListResource):
    name, title = "requests", "Clearance requests"
    select_related = ("student__school", "student__programme", "cycle", "certificate")
    registration_number = _field("Registration number", "student__registration_number", width=22)
    student = _field("Student", "student__full_name", width=28)
    school = _field("School", "student__school__code", width=10)
    programme = _field("Programme", "student__programme__name", width=30)
    cohort = _field("Cohort", "student__expected_graduation_year", INT, 10)
    cycle = _field("Cycle", "cycle__name", width=24)
    reason = _field("Reason", "get_reason_display", width=14)
    status = _field("Status", "get_status_display", width=14)
    submitted_at = _field("Opened", "submitted_at", DATETIME, 18)
    completed_at = _field("Completed", "completed_at", DATETIME, 18)
    revoked_at = _field("Revoked", "revoked_at", DATETIME, 18)
    certificate = _field("Certificate", "certificate__code", width=18)

    class Meta:
        model = m.ClearanceRequest
        fields = ("registration_number", "student", "school", "programme", "cohort", "cycle", "reason", "status",
                  "submitted_at", "completed_at", "revoked_at", "certificate")


class ClearanceApprovalResource(ListResource):
    name, title = "approvals", "Clearance approvals"
    select_related = ("request__student__school", "request__student__programme", "department", "decided_by")
    registration_number = _field("Registration number", "request__student__registration_number", width=22)
    student = _field("Student", "request__student__full_name", width=28)
    school = _field("School", "request__student__school__code", width=10)
    programme = _field("Programme", "request__student__programme__name", width=30)
    office = _field("Office", "department__code", width=10)
    status = _field("Status", "get_status_display", width=12)
    waiting_since = _field("Waiting since", "waiting_since", DATETIME, 18)
    decided_at = _field("Decided", "decided_at", DATETIME, 18)
    decided_by = _field("Decided by", "decided_by__email", width=28)
    reason = _field("Reason", "reason", width=40)

    class Meta:
        model = m.ClearanceApproval
        fields = ("registration_number", "student", "school", "programme", "office", "status", "waiting_since",
                  "decided_at", "decided_by", "reason")


class HoldResource(ListResource):
    name, title = "holds", "Holds"
    select_related = ("student", "department", "placed_by", "released_by")
    registration_number = _field("Registration number", "student__registration_number", width=22)
    student = _field("Student", "student__full_name", width=28)
    office = _field("Office", "department__code", width=10)
    reason = _field("Reason", "reason", width=40)
    amount = _field("Amount (KES)", "amount", MONEY, 14)
    source = _field("Source", "get_source_display", width=20)
    status = _field("Status", "get_status_display", width=12)
    placed_at = _field("Placed", "placed_at", DATETIME, 18)
    placed_by = _field("Placed by", "placed_by__email", width=28)
    released_at = _field("Released", "released_at", DATETIME, 18)
    release_reason = _field("Release reason", "release_reason", width=30)

    class Meta:
        model = m.Hold
        fields = ("registration_number", "student", "office", "reason", "amount", "source", "status", "placed_at",
                  "placed_by", "released_at", "release_reason")


class FinanceRecordResource(ListResource):
    name, title = "finance_records", "Finance records"
    select_related = ("student__school", "last_import")
    registration_number = _field("Registration number", "student__registration_number", width=22)
    student = _field("Student", "student__full_name", width=28)
    school = _field("School", "student__school__code", width=10)
    tuition_balance = _field("Balance (KES)", "tuition_balance", MONEY, 14)
    graduation_fee = _field("Graduation fee (KES)", "graduation_fee", MONEY, 14)
    graduation_fee_status = _field("Graduation fee", "get_graduation_fee_status_display", width=12)
    last_import = _field("Last import", "last_import_id", INT, 10)
    updated_at = _field("Updated", "updated_at", DATETIME, 18)

    class Meta:
        model = m.FinanceRecord
        fields = ("registration_number", "student", "school", "tuition_balance", "graduation_fee",
                  "graduation_fee_status", "last_import", "updated_at")


class PaymentResource(ListResource):
    name, title = "payments", "Payments"
    select_related = ("student", "recorded_by", "verified_by")
    transaction_code = _field("Transaction code", "transaction_code", width=16)
    registration_number = _field("Registration number", "student__registration_number", width=22)
    student = _field("Student", "student__full_name", width=28)
    amount = _field("Amount (KES)", "amount", MONEY, 14)
    method = _field("Method", "get_method_display", width=10)
    paid_at = _field("Paid", "paid_at", DATETIME, 18)
    recorded_by = _field("Recorded by", "recorded_by__email", width=28)
    verified_at = _field("Verified", "verified_at", DATETIME, 18)
    verified_by = _field("Verified by", "verified_by__email", width=28)

    class Meta:
        model = m.Payment
        fields = ("transaction_code", "registration_number", "student", "amount", "method", "paid_at",
                  "recorded_by", "verified_at", "verified_by")


class BalanceImportResource(ListResource):
    name, title = "balance_imports", "Balance imports"
    select_related = ("uploaded_by",)
    number = _field("Import", "id", INT, 8)
    original_name = _field("File", "original_name", width=30)
    uploaded_by = _field("Uploaded by", "uploaded_by__email", width=28)
    created_at = _field("Uploaded", "created_at", DATETIME, 18)
    status = _field("Status", "get_status_display", width=14)
    rows_total = _field("Rows", "rows_total", INT, 8)
    updated_count = _field("Updated", "updated_count", INT, 8)
    unchanged_count = _field("Unchanged", "unchanged_count", INT, 8)
    not_found_count = _field("Not found", "not_found_count", INT, 8)
    error_count = _field("Errors", "error_count", INT, 8)
    applied_at = _field("Applied", "applied_at", DATETIME, 18)

    class Meta:
        model = m.BalanceImport
        fields = ("number", "original_name", "uploaded_by", "created_at", "status", "rows_total", "updated_count",
                  "unchanged_count", "not_found_count", "error_count", "applied_at")


class CertificateResource(ListResource):
    name, title = "certificates", "Certificates"
    select_related = ("request__student__programme", "request__cycle", "issued_by")
    code = _field("Verification code", "code", width=18)
    registration_number = _field("Registration number", "request__student__registration_number", width=22)
    student = _field("Student", "request__student__full_name", width=28)
    programme = _field("Programme", "request__student__programme__name", width=30)
    cycle = _field("Cycle", "request__cycle__name", width=24)
    issued_at = _field("Issued", "issued_at", DATETIME, 18)
    issued_by = _field("Issued by", "issued_by__email", width=28)
    revoked_at = _field("Revoked", "revoked_at", DATETIME, 18)
    revoked_reason = _field("Revoked because", "revoked_reason", width=30)

    class Meta:
        model = m.Certificate
        fields = ("code", "registration_number", "student", "programme", "cycle", "issued_at", "issued_by",
                  "revoked_at", "revoked_reason")


class ClearanceCycleResource(ListResource):
    name, title = "cycles", "Clearance cycles"
    cycle = _field("Cycle", "name", width=28)
    graduation_year = _field("Graduation year", "graduation_year", INT, 10)
    opens_on = _field("Opens", "opens_on", DATE, 12)
    closes_on = _field("Closes", "closes_on", DATE, 12)
    is_closed = _field("Closed", "is_closed", width=8)

    class Meta:
        model = m.ClearanceCycle
        fields = ("cycle", "graduation_year", "opens_on", "closes_on", "is_closed")


class DelegationResource(ListResource):
    name, title = "delegations", "Delegations"
    select_related = ("department", "from_user", "to_user")
    office = _field("Office", "department__code", width=10)
    from_user = _field("From", "from_user__email", width=28)
    to_user = _field("To", "to_user__email", width=28)
    starts_on = _field("Starts", "starts_on", DATE, 12)
    ends_on = _field("Ends", "ends_on", DATE, 12)
    revoked_at = _field("Revoked", "revoked_at", DATETIME, 18)
    reason = _field("Reason", "reason", width=40)

    class Meta:
        model = m.Delegation
        fields = ("office", "from_user", "to_user", "starts_on", "ends_on", "revoked_at", "reason")


class NotificationResource(ListResource):
    name, title = "notifications", "Notifications"
    created_at = _field("When", "created_at", DATETIME, 18)
    title_ = _field("Title", "title", width=40)
    kind = _field("Kind", "get_kind_display", width=12)
    message = _field("Message", "message", width=60)
    read_at = _field("Read", "read_at", DATETIME, 18)

    class Meta:
        model = m.Notification
        fields = ("created_at", "title_", "kind", "message", "read_at")


class GownIssuanceResource(ListResource):
    name, title = "gowns", "Gowns"
    select_related = ("student",)
    gown_code = _field("Gown", "gown_code", width=12)
    size = _field("Size", "get_size_display", width=10)
    registration_number = _field("Registration number", "student__registration_number", width=22)
    student = _field("Student", "student__full_name", width=28)
    issued_at = _field("Issued", "issued_at", DATETIME, 18)
    expected_return_on = _field("Due back", "expected_return_on", DATE, 12)
    returned_at = _field("Returned", "returned_at", DATETIME, 18)
    deposit = _field("Deposit (KES)", "deposit", MONEY, 14)
    deposit_status = _field("Deposit", "get_deposit_status_display", width=14)

    class Meta:
        model = m.GownIssuance
        fields = ("gown_code", "size", "registration_number", "student", "issued_at", "expected_return_on",
                  "returned_at", "deposit", "deposit_status")


RESOURCES: dict[type, type[ListResource]] = {
    r._meta.model: r for r in (
        StudentResource, ClearanceRequestResource, ClearanceApprovalResource, HoldResource, FinanceRecordResource,
        PaymentResource, BalanceImportResource, CertificateResource, ClearanceCycleResource, DelegationResource,
        NotificationResource, GownIssuanceResource)
}
BY_NAME: dict[str, type[ListResource]] = {r.name: r for r in RESOURCES.values()}


def list_log_name(resource) -> str:
    """What an export log calls the export of a list: "list:<name>"."""
    return f"list:{resource.name}"
