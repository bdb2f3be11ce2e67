"""Hold imports: an office's own list of holds (the library's overdue list, the hostels' damage
list) read from a spreadsheet, previewed, then applied (DESIGN.md, `import_holds`).

Preview reads the file (core/imports/holds.py) and compares it with the office's active holds,
keeping in `HoldImport.plan` what it found: holds to place, to update, unchanged, to release (only
when the file is the full list), rows not found, rows skipped, and a fingerprint of the office's
active holds as it saw them. Confirm (core/services/imports.py `import_confirm`) applies that plan
in one transaction, one import per office at a time, and refuses it when the office's holds have
changed since the preview (placed, released or changed by anyone).

What the import touches: holds of its office with source "hold_import". A row matches such a hold
of the same student when the reason is the same (case and spacing aside): its amount and wording
are updated. Holds placed by hand are never updated or released; a row whose reason a hand-placed
hold already gives is left to it ("already held"). One hold per student and distinct reason:
several rows for the same student (two books) are several holds.
"""
from __future__ import annotations

import hashlib
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from .. import permissions
from ..history import as_system, bulk_create_tracked, bulk_update_tracked, save_tracked
from ..imports.holds import SKIPPED_WHY, ParsedHolds, parse_holds, reason_key
from ..models import Department, Hold, HoldImport, Notification, Student
from ..money import kes
from .finance import FINANCE_CODE, finance_clearance_follow
from .imports import (earlier_application, import_cancel, import_confirm, new_import, read_upload, stored_bytes,
                      students_by_registration)
from .notifications import notifications_send

HI = HoldImport.Status
H = Hold.Status
WHAT = "Hold import"
APPLY_LOCK = "hold-import-apply"        # core/locks.py, numbered by the office: one apply per office at a time
CONFIRM_WAIT = 5.0                      # seconds a confirm waits for another apply of the same office

# positions in the plan's lists (lists, not dicts: a long list stays small as JSON)
# place:     [student id, reg, row, reason, amount]
# update:    [hold id, student id, reg, row, old reason, new reason, old amount, new amount]
# unchanged: [hold id, student id, reg, row, reason, by hand (bool)]
# release:   [hold id, student id, reg, reason, amount]
# not_found: [row, reg]; skipped: [row, why]


def import_label(hi: HoldImport) -> str:
    """How history and release reasons name the import: "hold import #12 (overdue.xlsx)"."""
    return f"hold import #{hi.pk}" + (f" ({hi.original_name})" if hi.original_name else "")


def _check_may_import(acting_user, department: Department, system: bool) -> None:
    # system rights only where the caller says so (a command run without --user)
    if system and acting_user is None:
        return
    if acting_user is None:
        raise ValidationError("A hold import needs the person who makes it.", code="no_user")
    if not permissions.may_import_holds(acting_user, department):
        raise ValidationError(f"You do not review {department.code} for every student, so you cannot import its "
                              "holds.", code="not_yours")


def _amount(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def _fingerprint(holds) -> str:
    """The office's active holds as one value: any hold placed, released, waived or changed since
    changes it."""
    digest = hashlib.sha256()
    for h in sorted(holds, key=lambda h: h["pk"]):
        digest.update(f"{h['pk']}|{h['source']}|{h['reason']}|{_amount(h['amount'])}\n".encode())
    return digest.hexdigest()


def _active_holds(department: Department, *, lock: bool = False):
    qs = Hold.objects.filter(department=department, status=H.ACTIVE).order_by("pk")
    if lock:
        qs = qs.select_for_update()
    return list(qs.values("pk", "student_id", "student__registration_number", "source", "reason", "amount"))


def _compare(parsed: ParsedHolds, department: Department, full_list: bool) -> dict:
    """Sort the file's rows into place / update / unchanged / not found, and the import holds the
    full list no longer names into release. Two queries: the students, the office's active holds."""
    students = students_by_registration([*(r.registration_number for r in parsed.rows), *parsed.error_students])
    active = _active_holds(department)
    imported, by_hand = {}, {}
    for h in active:
        target = imported if h["source"] == Hold.Source.HOLD_IMPORT else by_hand
        target.setdefault((h["student_id"], reason_key(h["reason"])), h)
    place, update, unchanged, not_found, in_file = [], [], [], [], set()
    for r in parsed.rows:
        sid = students.get(r.registration_number)
        if sid is None:
            not_found.append([r.row, r.registration_number])
            continue
        key = (sid, reason_key(r.reason))
        in_file.add(key)
        new_amount = _amount(r.amount)
        hold = imported.get(key)
        if hold is not None:
            old_amount = _amount(hold["amount"])
            if old_amount != new_amount or hold["reason"] != r.reason:
                update.append([hold["pk"], sid, r.registration_number, r.row, hold["reason"], r.reason, old_amount,
                               new_amount])
            else:
                unchanged.append([hold["pk"], sid, r.registration_number, r.row, r.reason, False])
        elif key in by_hand:
            unchanged.append([by_hand[key]["pk"], sid, r.registration_number, r.row, r.reason, True])
        else:
            place.append([sid, r.registration_number, r.row, r.reason, new_amount])
    release = []
    if full_list:
        # a student whose row could not be read keeps what they have: that row may be the one
        kept_back = {students[reg] for reg in parsed.error_students if reg in students}
        release = [[h["pk"], h["student_id"], h["student__registration_number"], h["reason"], _amount(h["amount"])]
                   for key, h in imported.items() if key not in in_file and h["student_id"] not in kept_back]
        release.sort(key=lambda item: item[2])
    skipped = [[row, SKIPPED_WHY.get(parsed.skipped_why.get(row, ""), "not data")] for row in parsed.skipped_rows]
    return {"version": 1, "place": place, "update": update, "unchanged": unchanged, "release": release,
            "not_found": not_found, "skipped": skipped, "held_by_error_rows": len(parsed.error_students),
            "seen": _fingerprint(active), "seen_count": len(active), "seen_at": timezone.now().isoformat()}


def hold_import_preview(*, file, department: Department, acting_user, full_list: bool = False,
                        system: bool = False) -> HoldImport:
    """Read an office's list of holds and compare it with the office's active holds, changing
    nothing but the new HoldImport (previewed, with counts, the plan and the row errors).
    Refused (ValidationError, nothing written): the user may not import into this office
    (`permissions.may_import_holds`; no user only with `system`, a command run without --user);
    the office is inactive; the file is empty, too big, not a spreadsheet, or has no header row with
    a registration number and a reason (ImportFileError)."""
    _check_may_import(acting_user, department, system)
    if not department.is_active:
        raise ValidationError(f"{department.code} is not an active office.", code="inactive")
    data, name = read_upload(file, default_name="holds")
    parsed = parse_holds(data)                # before storing anything: an unreadable file leaves no trace
    hi = new_import(HoldImport, data, name, department=department, full_list=bool(full_list),
                    uploaded_by=acting_user, status=HI.PREVIEWED)
    plan = _compare(parsed, department, bool(full_list))
    warnings = []
    earlier = earlier_application(hi, department=department)
    if earlier:
        warnings.append(earlier)
    warnings.extend(parsed.preview_warnings())
    if full_list and parsed.error_students:
        warnings.append(f"{len(parsed.error_students)} student(s) named in rows with errors keep their holds: the "
                        "full list releases nothing of theirs until the rows are fixed.")
    hi.plan = plan
    hi.warnings = warnings
    hi.errors = [e.as_dict() for e in parsed.errors]
    hi.rows_total = parsed.rows_read
    _count(hi, plan)
    hi.error_count = len(parsed.errors)
    save_tracked(hi, user=acting_user, reason=as_system(f"{WHAT} previewed", system and acting_user is None))
    return hi


def _count(hi: HoldImport, plan: dict) -> None:
    hi.placed_count = len(plan["place"])
    hi.updated_count = len(plan["update"])
    hi.unchanged_count = len(plan["unchanged"])
    hi.released_count = len(plan["release"])
    hi.not_found_count = len(plan["not_found"])
    hi.skipped_count = len(plan["skipped"])


def hold_import_apply(*, hold_import: HoldImport, acting_user, skip_errors: bool = False, wait: float | None = None,
                      system: bool = False) -> HoldImport:
    """Apply a previewed hold import: place, update and (full list) release its office's import
    holds as the preview showed, in one transaction, with history naming the import ("Placed by
    hold import #12 (overdue.xlsx)"); students are notified of holds placed and released; for the
    finance office, finance clearance follows. One apply per office at a time: while another runs,
    this one waits up to `wait` seconds (CONFIRM_WAIT) and is refused, still previewed.
    Refused (ValidationError, nothing written): the user may not import into the office (any
    more); not previewed (applied, failed, cancelled); the file had errors and `skip_errors` is
    False; the office's holds changed since the preview (code "stale": the import is marked
    failed, and previewing its file again shows what the file would do now)."""
    hi = hold_import
    hi.refresh_from_db(fields=["status", "error_count", "department"])
    department = hi.department
    _check_may_import(acting_user, department, system)
    if hi.status == HI.PREVIEWED and hi.error_count and not skip_errors:
        raise ValidationError(f"The file has {hi.error_count} row{'s' if hi.error_count != 1 else ''} with errors; "
                              "fix them or confirm skipping them.", code="has_errors")
    wait = CONFIRM_WAIT if wait is None else wait
    system_user = system and acting_user is None
    applied = import_confirm(hi, lock=(APPLY_LOCK, department.pk), wait=wait, acting_user=acting_user, what=WHAT,
                             system=system_user,
                             busy=f"Another {department.code} hold import is being applied; confirm this one when it "
                                  "has finished.",
                             apply=lambda locked: _apply(locked, department, acting_user=acting_user,
                                                         system=system_user))
    for name in ("status", "applied_at", "placed_count", "updated_count", "released_count", "unchanged_count"):
        setattr(hi, name, getattr(applied, name))
    return applied


def _refuse_if_stale(hi: HoldImport, department: Department, active: list[dict]) -> None:
    plan = hi.plan or {}
    if _fingerprint(active) == plan.get("seen"):
        return
    since = plan.get("seen_at")
    changes = Hold.history.filter(department_id=department.pk)
    if since:
        changes = changes.filter(history_date__gt=since)
    last = changes.select_related("history_user").order_by("-history_date").first()
    who = ""
    if last is not None:
        name = getattr(last.history_user, "email", None) or "the system"
        who = f" (last by {name}, {timezone.localtime(last.history_date):%d %b %Y %H:%M})"
    raise ValidationError(f"{department.code}'s holds changed since this preview{who}: it compared the file with "
                          f"{plan.get('seen_count', 0)} active holds, and they are now {len(active)} or differ. "
                          "Preview the file again and confirm what it then shows.", code="stale")


def _apply(hi: HoldImport, department: Department, *, acting_user, system: bool) -> None:
    """The writes, inside import_confirm's transaction and office lock. The office's active holds
    are locked (in id order) while they are compared with what the preview saw, so nobody releases
    or changes one of them until this commits."""
    active = _active_holds(department, lock=True)
    _refuse_if_stale(hi, department, active)
    plan = hi.plan or {}
    label = import_label(hi)
    now = timezone.now()
    user_id = getattr(acting_user, "pk", None)
    new = [Hold(department=department, student_id=sid, reason=reason, source=Hold.Source.HOLD_IMPORT, status=H.ACTIVE,
                amount=None if amount is None else Decimal(amount), placed_by_id=user_id, placed_at=now,
                hold_import=hi)
           for sid, _reg, _row, reason, amount in plan.get("place", [])]
    bulk_create_tracked(new, Hold, user=acting_user, reason=as_system(f"Placed by {label}", system))
    updates = [dict(id=hid, reason=reason, amount=None if amount is None else Decimal(amount), hold_import_id=hi.pk)
               for hid, _sid, _reg, _row, _old_reason, reason, _old, amount in plan.get("update", [])]
    bulk_update_tracked(updates, Hold, ["reason", "amount", "hold_import"], user=acting_user,
                        reason=as_system(f"Updated by {label}", system))
    release_reason = f"Not in the full list of {label}"
    releases = [dict(id=hid, status=H.RELEASED, released_by_id=user_id, released_at=now, release_reason=release_reason,
                     hold_import_id=hi.pk) for hid, *_ in plan.get("release", [])]
    bulk_update_tracked(releases, Hold, ["status", "released_by", "released_at", "release_reason", "hold_import"],
                        user=acting_user, reason=as_system(f"Released by {label}: not in the full list", system))
    _notify(department, plan, acting_user)
    touched = {h.student_id for h in new} | {item[1] for item in plan.get("update", [])} | \
              {item[1] for item in plan.get("release", [])}
    if department.code == FINANCE_CODE and touched:
        # finance clearance follows the finance office's holds, whoever placed them (rule 5)
        finance_clearance_follow(student_ids=sorted(touched), acting_user=acting_user, reason=f"Holds of {label}",
                                 system=system)
    hi.placed_count, hi.updated_count, hi.released_count = len(new), len(updates), len(releases)


def _notify(department: Department, plan: dict, acting_user) -> None:
    placed = plan.get("place", [])
    released = plan.get("release", [])
    ids = {item[0] for item in placed} | {item[1] for item in released}
    if not ids:
        return
    users = dict(Student.objects.filter(pk__in=ids, user_id__isnull=False).values_list("pk", "user_id"))
    items = [dict(user_id=users[sid], kind=Notification.Kind.HOLD, title=f"{department.code} placed a hold",
                  message=reason + (f" ({kes(amount)})" if amount is not None else ""), link="/student/")
             for sid, _reg, _row, reason, amount in placed if sid in users]
    items += [dict(user_id=users[sid], kind=Notification.Kind.HOLD, title=f"{department.code} released a hold",
                   message=reason, link="/student/")
              for _hid, sid, _reg, reason, _amount in released if sid in users]
    notifications_send(items)


def hold_import_cancel(*, hold_import: HoldImport, acting_user, system: bool = False) -> HoldImport:
    """Drop a previewed hold import: nothing is applied. Refused: the user may not import into its
    office; it is not previewed."""
    _check_may_import(acting_user, hold_import.department, system)
    return import_cancel(hold_import, acting_user=acting_user, what=WHAT, system=system and acting_user is None)


def hold_import_preview_again(*, hold_import: HoldImport, acting_user, system: bool = False) -> HoldImport:
    """Preview the stored file of an import again, as a new import of the same office and the same
    full-list choice, compared with the office's holds as they are now (after a stale preview was
    refused). Refused: as `hold_import_preview`; the import is applied; its file is gone."""
    hi = hold_import
    _check_may_import(acting_user, hi.department, system)
    if hi.status == HI.APPLIED:
        raise ValidationError(f"{hi} was applied; there is nothing to preview again.", code="applied")
    data = stored_bytes(hi)
    return hold_import_preview(file=ContentFile(data, name=hi.original_name or "holds"), department=hi.department,
                               full_list=hi.full_list, acting_user=acting_user, system=system)
