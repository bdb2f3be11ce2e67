"""Deciding clearance approvals (workflow rules 2–4).

The bulk functions are the one implementation: they take ids, check every rule for every row with a
constant number of queries, write the allowed rows in batches (with one historical row each) and
report the refused rows with the reason. The single-object functions call them and raise the
refusal as a ValidationError.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import files, permissions
from ..history import bulk_update_tracked, save_tracked
from ..models import NOTES_MAX_LENGTH, REASON_MAX_LENGTH, ClearanceApproval, ClearanceRequest, Hold, Notification
from ..money import kes
from ._common import BulkResult, bulk_service, id_chunks, lock_requests, lock_rows, require_reason, text_within
from .finance import FINANCE_CODE, finance_clearance_follow, finance_department
from .notifications import notifications_send
from .status import requests_refresh_status

A = ClearanceApproval.Status
R = ClearanceRequest.Status
CLOSED_REQUEST_REASONS = {
    R.COMPLETED: "the student's clearance is already completed; the registry must revoke it before "
                 "any decision changes",
    R.REVOKED: "this clearance request was revoked",
}


# what the bulk functions read of an approval's relations (its own columns are all loaded): the
# rest of the request and student rows is not needed, and at 10,000 approvals turning their
# timestamps into Python costs more than the query
_RELATED_COLUMNS = ("department__code", "department__name", "department__stage", "request__status",
                    "request__student_id", "request__student__registration_number", "request__student__user_id")


def _load(ids: list[int], result: BulkResult, *, system: bool = False) -> list[ClearanceApproval]:
    """The approvals, locked with their requests: the requests first, then the approvals, each in
    ascending id order (the domain's one locking order, `lock_requests`). Everything a decision
    derives from — its siblings for the stage rule, the request's status — is read after this, so
    two offices deciding on one request at once run one after the other."""
    request_ids = [rid for chunk in id_chunks(ids)
                   for rid in ClearanceApproval.objects.filter(pk__in=chunk).values_list("request_id", flat=True)]
    lock_requests(request_ids)
    own = [f.name for f in ClearanceApproval._meta.concrete_fields]
    # a person's unknown ids are answered as their out-of-scope ones are: counted, "not in your queue"
    return lock_rows(ClearanceApproval.objects.select_related("department", "request__student")
                     .only(*own, *_RELATED_COLUMNS), ids, result, what="clearance item", missing_unseen=not system)


def _changed_by(approval_ids) -> dict[int, str]:
    """Who last changed each approval and when, in the clerk's words ("approved by lib2@… at
    10:02"), from its history: only for the few rows a stale decision is refused on."""
    said = {}
    for chunk in id_chunks(list(approval_ids)):
        for row in (ClearanceApproval.history.filter(id__in=chunk).order_by("id", "-history_date", "-history_id")
                    .values("id", "status", "history_date", "history_user__email", "decided_by_import_id")):
            if row["id"] in said:
                continue
            who = row["history_user__email"] or (f"balance import #{row['decided_by_import_id']}"
                                                 if row["decided_by_import_id"] else "the system")
            when = timezone.localtime(row["history_date"])
            day = "" if when.date() == timezone.localdate() else f" on {when:%d %b}"
            said[row["id"]] = f"{ClearanceApproval.Status(row['status']).label.lower()} by {who} at {when:%H:%M}{day}"
    return said


def _seen_filter(approvals, seen, seen_at, result: BulkResult) -> list[ClearanceApproval]:
    """Refuse every approval that changed after the clerk saw it: `seen` maps ids to the
    `state_token` the page showed; rows without a token (a "select all" across pages) are checked
    against `seen_at`, when the page was made. With neither, nothing is checked (the system and
    callers that decide on what they have just read)."""
    if not seen and seen_at is None:
        return approvals
    seen = seen or {}
    stale = []
    for a in approvals:
        token = seen.get(a.pk)
        if token is not None:
            if token != a.state_token:
                stale.append(a)
        elif seen_at is not None and a.updated_at > seen_at:
            stale.append(a)
    if not stale:
        return approvals
    said = _changed_by(a.pk for a in stale)
    for a in stale:
        result.refuse(a.pk, _label(a), f"changed since you opened it: {said.get(a.pk, 'changed')} — reload")
    stale_ids = {a.pk for a in stale}
    return [a for a in approvals if a.pk not in stale_ids]


def _finance_follows(approval: ClearanceApproval) -> bool:
    """While FINANCE_AUTO_CLEAR is on, the finance office's items follow its holds (rule 5): a
    person decides them by placing or releasing a hold, or by waiving."""
    return settings.FINANCE_AUTO_CLEAR and approval.department.code == FINANCE_CODE


def _label(approval: ClearanceApproval) -> str:
    return f"{approval.request.student.registration_number} ({approval.department.code})"


def _scope_filter(approvals, acting_user, result: BulkResult, system=False):
    """Keep the approvals the user may decide; the rest are counted as not in their queue, never
    named (a label would tell the clerk which students another office clears). System decisions
    (finance following the balances, system=True) are not scoped."""
    if system:
        return approvals
    if acting_user is None:
        raise ValidationError("A decision needs the person who makes it.")
    scope = permissions.approvals_for(acting_user)
    allowed = {pk for chunk in id_chunks([a.pk for a in approvals])
               for pk in scope.filter(pk__in=chunk).values_list("pk", flat=True)}
    kept = []
    for a in approvals:
        if a.pk in allowed:
            kept.append(a)
        else:
            result.refuse_unseen(a.pk)
    return kept


def _open_request_filter(approvals, result) -> list[ClearanceApproval]:
    kept = []
    for a in approvals:
        why = CLOSED_REQUEST_REASONS.get(a.request.status)
        if why:
            result.refuse(a.pk, _label(a), why)
        else:
            kept.append(a)
    return kept


def _blocking(approvals) -> tuple[dict, dict]:
    """For each approval: the earlier-stage offices still open, and its office's active holds."""
    request_ids = {a.request_id for a in approvals}
    earlier_open = defaultdict(list)
    siblings = defaultdict(list)
    for ids in id_chunks(request_ids):
        for request_id, code, stage, status in ClearanceApproval.objects.filter(request_id__in=ids).values_list(
                "request_id", "department__code", "department__stage", "status"):
            siblings[request_id].append((code, stage, status))
    for a in approvals:
        earlier_open[a.pk] = sorted(f"{code} ({status})" for code, stage, status in siblings[a.request_id]
                                    if stage < a.department.stage and status not in ClearanceApproval.CLEARED)
    holds = defaultdict(list)
    pairs = {(a.request.student_id, a.department_id) for a in approvals}
    student_ids = {s for s, _ in pairs}
    dept_ids = {d for _, d in pairs}
    for ids in id_chunks(student_ids):
        for h in Hold.objects.filter(status=Hold.Status.ACTIVE, student_id__in=ids, department_id__in=dept_ids
                                     ).only("student_id", "department_id", "reason", "amount"):
            holds[(h.student_id, h.department_id)].append(h)
    return earlier_open, holds


def _hold_text(holds: list[Hold]) -> str:
    parts = []
    for h in holds:
        parts.append(f"{h.reason} ({kes(h.amount)})" if h.amount is not None else h.reason)
    return "; ".join(parts)


DECISION_FIELDS = ["status", "decided_by", "decided_by_import", "decided_at", "reason"]


def _store_evidence(approvals, evidence):
    """Save the uploaded file once to storage (bulk writes do not run FileField.pre_save), under a
    random name (core/files.py); the uploader's name is kept as the download name."""
    if evidence is None or not approvals:
        return []
    name = files.original_name(evidence, "evidence")
    first = approvals[0]
    first.evidence.save(name, evidence, save=False)
    for a in approvals:
        a.evidence, a.evidence_name = first.evidence.name, name
    return ["evidence", "evidence_name"]


def _check_evidence(evidence) -> None:
    # by content, whoever calls: the form checks first for its message, this is what holds
    if evidence is not None:
        files.validate_evidence(evidence)


def _finance_stage_opened(approvals):
    """Rule 5 when the finance office is not in the first stage: an earlier stage that has just
    cleared opens its stage, and its items then follow the holds (approve was refused until now)."""
    if not settings.FINANCE_AUTO_CLEAR or not approvals:
        return
    fin = finance_department()
    if fin is None:
        return
    students = {a.request.student_id for a in approvals
                if a.status in ClearanceApproval.CLEARED and a.department.stage < fin.stage}
    if students:
        finance_clearance_follow(student_ids=students, acting_user=None, system=True,
                                 reason="Finance follows the holds: an earlier stage cleared")


def _write(approvals, *, acting_user, reason_for_history, fields, notify_kind=None):
    # a delegate's decisions say whom they were made for
    behalf = permissions.on_behalf_of(acting_user, {a.department_id for a in approvals}) if acting_user else {}
    groups: dict[str, list] = {}
    for a in approvals:
        suffix = f" (on behalf of {behalf[a.department_id]})" if a.department_id in behalf else ""
        groups.setdefault(suffix, []).append(a)
    for suffix, rows in groups.items():
        bulk_update_tracked(rows, ClearanceApproval, fields, user=acting_user, reason=reason_for_history + suffix)
    _finance_stage_opened(approvals)
    requests_refresh_status({a.request_id for a in approvals}, acting_user=acting_user, reason=reason_for_history)
    if notify_kind == Notification.Kind.REOPENED:
        notifications_send([
            dict(user_id=a.request.student.user_id, kind=notify_kind, title=f"{a.department.code}: re-opened",
                 message=f"{a.department.name} re-opened its decision on your clearance: it is waiting for the "
                         "office again." + (f" Note: {a.notes}" if a.notes else ""),
                 link="/student/")
            for a in approvals if a.request.student.user_id])
    elif notify_kind:
        notifications_send([
            dict(user_id=a.request.student.user_id, kind=notify_kind,
                 title=f"{a.department.code}: {a.get_status_display().lower()}",
                 message=(f"{a.department.name} {a.get_status_display().lower()} your clearance."
                          + (f" Reason: {a.reason}" if a.reason else "")),
                 link="/student/")
            for a in approvals if a.request.student.user_id])


@bulk_service
def approvals_approve(*, approval_ids: Iterable[int], acting_user, notes: str = "", evidence=None,
                      reason_for_history: str = "", balance_import=None, system: bool = False,
                      seen: dict[int, str] | None = None, seen_at=None) -> BulkResult:
    """Approve each approval. Refused: evidence that is not a PDF, PNG or JPEG of at most 5 MB
    (core/files.py). Refused per row: not the user's office; changed since the user saw it
    (`seen`/`seen_at`, naming who changed it and when); request completed or revoked; already
    approved or waived; rejected (re-open it first — only the system, following the money, approves
    a rejected finance item directly); an earlier stage still open (naming which offices); an active
    hold of this office on the student (naming it). Locks the requests, then the approvals."""
    notes = text_within(notes, limit=NOTES_MAX_LENGTH, what="note")
    _check_evidence(evidence)
    ids = list(dict.fromkeys(approval_ids))
    result = BulkResult()
    approvals = _scope_filter(_load(ids, result, system=system), acting_user, result, system)
    approvals = _seen_filter(approvals, seen, seen_at, result)
    approvals = _open_request_filter(approvals, result)
    earlier_open, holds = _blocking(approvals)
    now = timezone.now()
    todo = []
    for a in approvals:
        if a.status in ClearanceApproval.CLEARED:
            result.refuse(a.pk, _label(a), f"already {a.status}")
        elif a.status == A.REJECTED and not system:
            result.refuse(a.pk, _label(a), "it was rejected; re-open it first")
        elif earlier_open[a.pk]:
            result.refuse(a.pk, _label(a), "an earlier stage is still open: " + ", ".join(earlier_open[a.pk]))
        elif holds[(a.request.student_id, a.department_id)]:
            result.refuse(a.pk, _label(a), f"{a.department.code} holds an active hold on the student: "
                          + _hold_text(holds[(a.request.student_id, a.department_id)]))
        else:
            a.status = A.APPROVED
            a.decided_by = acting_user
            a.decided_by_import = balance_import
            a.decided_at = now
            a.reason = ""
            if notes:
                a.notes = notes
            todo.append(a)
            result.done.append(a.pk)
    fields = DECISION_FIELDS + (["notes"] if notes else []) + _store_evidence(todo, evidence)
    _write(todo, acting_user=acting_user, reason_for_history=reason_for_history or "Approved", fields=fields,
           notify_kind=Notification.Kind.APPROVED)
    return result


@bulk_service
def approvals_reject(*, approval_ids: Iterable[int], acting_user, reason: str | dict[int, str], notes: str = "",
                     evidence=None, reason_for_history: str = "", balance_import=None, system: bool = False,
                     seen: dict[int, str] | None = None, seen_at=None) -> BulkResult:
    """Reject each approval with a reason the student will read (one for all, or one per approval
    id). Refused: no reason (for all); evidence that is not a PDF, PNG or JPEG; per row: not the user's office, changed since the user saw
    it, request completed or revoked, already rejected with this reason, waived, or a finance item
    while finance follows the holds (a person places a finance hold instead)."""
    notes = text_within(notes, limit=NOTES_MAX_LENGTH, what="note")
    _check_evidence(evidence)
    if isinstance(reason, dict):
        reason_of = {pk: require_reason(text, "reject") for pk, text in reason.items()}
    else:
        text = require_reason(reason, "reject")
        reason_of = None
    ids = list(dict.fromkeys(approval_ids))
    result = BulkResult()
    approvals = _scope_filter(_load(ids, result, system=system), acting_user, result, system)
    approvals = _seen_filter(approvals, seen, seen_at, result)
    approvals = _open_request_filter(approvals, result)
    now = timezone.now()
    todo = []
    for a in approvals:
        reason = reason_of[a.pk] if reason_of is not None else text
        if a.status == A.WAIVED:
            result.refuse(a.pk, _label(a), "it was waived; re-open it first")
        elif a.status == A.REJECTED and a.reason == reason:
            result.refuse(a.pk, _label(a), "already rejected for this reason")
        elif not system and _finance_follows(a):
            result.refuse(a.pk, _label(a), "finance clearance follows the finance holds: place a finance hold "
                                           "(with the amount) and this item is rejected with it")
        else:
            a.status = A.REJECTED
            a.decided_by = acting_user
            a.decided_by_import = balance_import
            a.decided_at = now
            a.reason = reason
            if notes:
                a.notes = notes
            todo.append(a)
            result.done.append(a.pk)
    fields = DECISION_FIELDS + (["notes"] if notes else []) + _store_evidence(todo, evidence)
    _write(todo, acting_user=acting_user, fields=fields,
           reason_for_history=reason_for_history or ("Rejected" if reason_of else f"Rejected: {text}"),
           notify_kind=Notification.Kind.REJECTED)
    return result


@bulk_service
def approvals_waive(*, approval_ids: Iterable[int], acting_user, reason: str, notes: str = "",
                    seen: dict[int, str] | None = None, seen_at=None) -> BulkResult:
    """Waive: the office clears the student without the usual conditions (stage order and holds
    do not block it), and must say why. Refused: no reason; per row: not the user's office, changed
    since the user saw it, request completed or revoked, already approved or waived."""
    reason = require_reason(reason, "waive")
    notes = text_within(notes, limit=NOTES_MAX_LENGTH, what="note")
    ids = list(dict.fromkeys(approval_ids))
    result = BulkResult()
    approvals = _scope_filter(_load(ids, result), acting_user, result)
    approvals = _seen_filter(approvals, seen, seen_at, result)
    approvals = _open_request_filter(approvals, result)
    now = timezone.now()
    todo = []
    for a in approvals:
        if a.status in ClearanceApproval.CLEARED:
            result.refuse(a.pk, _label(a), f"already {a.status}")
            continue
        a.status, a.decided_by, a.decided_by_import, a.decided_at, a.reason = A.WAIVED, acting_user, None, now, reason
        if notes:
            a.notes = notes
        todo.append(a)
        result.done.append(a.pk)
    _write(todo, acting_user=acting_user, reason_for_history=f"Waived: {reason}",
           fields=DECISION_FIELDS + (["notes"] if notes else []), notify_kind=Notification.Kind.APPROVED)
    return result


@bulk_service
def approvals_reopen(*, approval_ids: Iterable[int], acting_user, note: str = "",
                     seen: dict[int, str] | None = None, seen_at=None) -> BulkResult:
    """Re-open rejected approvals so they can be decided again; the earlier decision stays in the
    history. Refused per row: not the user's office, changed since the user saw it, request
    completed or revoked, not rejected, a finance item while finance follows the holds (it is
    approved by itself when its holds are released)."""
    note = text_within(note, limit=NOTES_MAX_LENGTH, what="note")
    ids = list(dict.fromkeys(approval_ids))
    result = BulkResult()
    approvals = _scope_filter(_load(ids, result), acting_user, result)
    approvals = _seen_filter(approvals, seen, seen_at, result)
    approvals = _open_request_filter(approvals, result)
    todo = []
    for a in approvals:
        if a.status != A.REJECTED:
            result.refuse(a.pk, _label(a), f"only a rejected item can be re-opened; this one is {a.status}")
            continue
        if _finance_follows(a):
            result.refuse(a.pk, _label(a), "finance clearance follows the finance holds: release or waive the "
                                           "hold and this item is approved by itself")
            continue
        # waiting_since stays: the student has waited since the item first became pending
        a.status, a.decided_by, a.decided_by_import, a.decided_at, a.reason = A.PENDING, None, None, None, ""
        if note:
            a.notes = note
        todo.append(a)
        result.done.append(a.pk)
    _write(todo, acting_user=acting_user, reason_for_history="Re-opened by the office" + (f": {note}" if note else ""),
           fields=DECISION_FIELDS + (["notes"] if note else []),
           notify_kind=Notification.Kind.REOPENED)
    return result


# --- one at a time ------------------------------------------------------------------------------

def _single(func, approval, **kwargs) -> ClearanceApproval:
    func(approval_ids=[approval.pk], **kwargs).raise_if_refused()
    approval.refresh_from_db()
    return approval


def _seen_one(approval, seen):
    return {approval.pk: seen} if seen else None


def approval_approve(*, approval: ClearanceApproval, acting_user, notes: str = "", evidence=None,
                     seen: str | None = None) -> ClearanceApproval:
    """Approve one approval; refused as `approvals_approve` refuses a row. `seen` is the
    `state_token` of the approval as the user saw it."""
    return _single(approvals_approve, approval, acting_user=acting_user, notes=notes, evidence=evidence,
                   seen=_seen_one(approval, seen))


def approval_reject(*, approval: ClearanceApproval, acting_user, reason: str, notes: str = "",
                    evidence=None, seen: str | None = None) -> ClearanceApproval:
    """Reject one approval; a reason is required."""
    return _single(approvals_reject, approval, acting_user=acting_user, reason=reason, notes=notes, evidence=evidence,
                   seen=_seen_one(approval, seen))


def approval_waive(*, approval: ClearanceApproval, acting_user, reason: str, notes: str = "",
                   seen: str | None = None) -> ClearanceApproval:
    """Waive one approval; a reason is required."""
    return _single(approvals_waive, approval, acting_user=acting_user, reason=reason, notes=notes,
                   seen=_seen_one(approval, seen))


def approval_reopen(*, approval: ClearanceApproval, acting_user, note: str = "",
                    seen: str | None = None) -> ClearanceApproval:
    """Re-open one rejected approval."""
    return _single(approvals_reopen, approval, acting_user=acting_user, note=note, seen=_seen_one(approval, seen))


@transaction.atomic
def approval_resubmit(*, approval: ClearanceApproval, acting_user, response: str, file=None) -> ClearanceApproval:
    """The student answers a rejection and sends the item back to the office, optionally with a
    file (a return slip, a receipt): checked like evidence (core/files.py), stored under a random
    name, the uploader's name kept for the download. A re-submission without a file clears the
    earlier one: the file goes with the response it was sent with (history keeps both).

    Refused: not the student's own item; no response, or one longer than REASON_MAX_LENGTH; a file
    that is not a PDF, PNG or JPEG of at most 5 MB (by content, whatever its name says); the item is
    not rejected; the request is completed or revoked; the cycle is closed; the re-submission limit
    of the cycle is reached; a finance item while finance follows the holds (it clears by itself
    when the balance is paid). Locks the request, then the approval."""
    response = text_within(response, limit=REASON_MAX_LENGTH, what="response")
    if file is not None:
        files.validate_response_file(file)
    lock_requests([approval.request_id])
    approval = (ClearanceApproval.objects.select_related("request__student", "request__cycle", "department")
                .select_for_update(of=("self",)).get(pk=approval.pk))
    req = approval.request
    if acting_user is None or req.student.user_id != acting_user.pk:
        raise ValidationError("You can only re-submit your own clearance items.", code="not_yours")
    if not response:
        raise ValidationError("Write a response to the office: say what you did about the reason given.",
                              code="response_required")
    if approval.status != A.REJECTED:
        raise ValidationError(f"Only a rejected item can be re-submitted; {approval.department.code} is "
                              f"{approval.get_status_display().lower()}.", code="not_rejected")
    if req.status in CLOSED_REQUEST_REASONS:
        raise ValidationError(f"Not possible: {CLOSED_REQUEST_REASONS[req.status]}.", code="closed")
    if _finance_follows(approval):
        raise ValidationError("Finance clears you by itself once your balance is paid: the next balance import "
                              "from the finance office shows it. If you have paid, show your receipt at the "
                              "finance office.", code="finance_follows")
    if not req.cycle.is_open:
        raise ValidationError(f"The cycle {req.cycle} is closed; re-submissions are not accepted.", code="cycle_closed")
    limit = req.cycle.resubmission_limit
    if req.resubmission_count >= limit:
        raise ValidationError(f"You have used all {limit} re-submissions allowed in {req.cycle}; "
                              f"contact {approval.department.name} in person.", code="limit")
    approval.status, approval.decided_by, approval.decided_by_import, approval.decided_at = A.PENDING, None, None, None
    approval.reason = ""
    approval.student_response = response
    if file is not None:
        name = files.original_name(file, "response")
        approval.response_file.save(name, file, save=False)
        approval.response_file_name = name
    else:
        approval.response_file, approval.response_file_name = "", ""
    # waiting_since stays: a re-submitted item keeps its place in the queue and its waiting time
    save_tracked(approval, user=acting_user, reason=f"Re-submitted by the student: {response}")
    req.resubmission_count += 1
    save_tracked(req, user=acting_user, reason="Re-submission", update_fields=["resubmission_count"])
    requests_refresh_status([req.pk], acting_user=acting_user, reason="Re-submission")
    return approval
