"""export_log_record: every export is logged, by a person or by the system, and is in the audit trail."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.history import audit_context
from core.selectors.reports import REPORTS
from core.services.exports import export_log_record


def test_a_persons_export_is_logged_with_history_ip_and_in_the_audit_trail(registry_user):
    with audit_context(ip="10.1.2.3"):
        log = export_log_record(report="gowns", filters={"school": "SCE"}, format="csv", rows=4,
                                acting_user=registry_user)
    assert (log.user, log.made_by, log.filters, log.rows) == (registry_user, "", {"school": "SCE"}, 4)
    record = log.history.get()
    assert (record.history_user, record.ip_address) == (registry_user, "10.1.2.3")
    trail = [r for r in REPORTS["audit_trail"].rows() if r[4] == "ExportLog"]
    assert [(r[1], r[2], r[3], r[5], r[6]) for r in trail] == [
        ("registry@clearance.test", "10.1.2.3", "exported gowns (4 rows)", log.pk, "created")]


def test_a_system_export_names_what_made_it(db):
    log = export_log_record(report="gowns", filters={}, format="xlsx", rows=0, system=True,
                            made_by="command export_report")
    assert (log.user, log.made_by) == (None, "command export_report")


@pytest.mark.parametrize("kwargs, message", [
    (dict(report="nope", format="csv", system=True), "There is no report called nope."),
    (dict(report="gowns", format="pdf", system=True), "Reports are exported as xlsx or csv, not pdf."),
    (dict(report="gowns", format="csv"), "An export is made by a person or, from a command, by the system."),
])
def test_refusals(db, kwargs, message):
    with pytest.raises(ValidationError) as exc:
        export_log_record(filters={}, rows=0, **kwargs)
    assert exc.value.messages == [message]
