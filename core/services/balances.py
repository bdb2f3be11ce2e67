"""Fee-balance imports: preview, then apply (DESIGN.md "Spreadsheet import of balances", rule 5).

Preview reads and checks the file once, compares it with the finance records and keeps what it
found in `BalanceImport.plan`, so apply never re-reads or re-parses the file and the officer
confirms exactly what they saw. Apply writes, in one transaction: the finance records (history
naming the import), the FIN hold of every student in the file (placed, amount updated, or
released: source balance_import), then finance clearance follows the money
(`finance_clearance_follow`, which notifies the students whose clearance moved). Every step reads
and writes per chunk of students, so queries grow with chunks, not rows.
"""
from __future__ import annotations

import hashlib
import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import locks, permissions
from .. import progress as progress_cache
from ..bulk_load import (History, any_of, decimal_of, fetch_in, insert_history_select, insert_new, memo, quote,
                         update_from_values)
from ..history import as_system, audit_context, save_tracked
from ..imports.balances import MAX_FILE_BYTES, ParsedBalances, estimate_rows, parse_balances
from ..models import BalanceImport, FinanceRecord, Hold, Student
from ..money import kes
from ..selectors.finance import balance_import_applying
from . import jobs
from ._common import chunked, gc_paused
from .finance import finance_clearance_follow, finance_department, finance_hold_reason
from .imports import read_upload

B = BalanceImport.Status
CENT = Decimal("0.01")
G = FinanceRecord.GraduationFeeStatus
ASYNC_ROWS = 5000           # files with more rows run in the background
APPLY_LOCK = "balance-import-apply"     # core/locks.py: held by the one apply running
log = logging.getLogger(__name__)


def _chunk(sqlite_rows: int) -> int:
    """Rows per statement. SQLite is bound by its 32,766 parameters per statement. PostgreSQL
    takes a whole file's values as one array parameter, and a statement over all of them joins in
    one pass (one scan of the table, where 10 chunks of 10,000 rows meant 10 scans)."""
    return 100_000 if connection.vendor == "postgresql" else sqlite_rows


def lookup_chunk() -> int:
    return _chunk(5000)


def write_chunk() -> int:
    return _chunk(10_000)

# positions in plan["changed"] items (kept as lists: a 100,000-row plan stays a few MB of JSON)
SID, RID, REG, ROW, OLD, NEW, OLD_GRAD, NEW_GRAD, NOTES = range(9)
HOLD_STUDENT = Hold._meta.get_field("student")


def import_reason(balance_import: BalanceImport) -> str:
    return f"Balance import #{balance_import.pk}"


def _read_upload(file) -> tuple[bytes, str]:
    return read_upload(file, default_name="balances")


def _check_may_import(acting_user, perm: str, system: bool = False) -> None:
    # system rights only where the caller says so (a command run without --user: system=True); a
    # missing user is never the system, and people need the finance officer's permission
    if system and acting_user is None:
        return
    if acting_user is None:
        raise ValidationError("A balance import needs the finance officer who makes it.", code="no_user")
    if not permissions.may_import_balances(acting_user, perm):
        raise ValidationError("Only finance officers can import balances.", code="forbidden")


def _queued_by(acting_user) -> tuple[int | None, str]:
    # read now, not when the task is queued: the worker checks this officer as they are then, and
    # names them even if their row is gone by then
    return getattr(acting_user, "pk", None), getattr(acting_user, "email", "")


def _new_import(data: bytes, name: str, acting_user) -> BalanceImport:
    bi = BalanceImport(original_name=name, sha256=hashlib.sha256(data).hexdigest(), uploaded_by=acting_user,
                       status=B.UPLOADED)
    bi.file.save(name, ContentFile(data), save=False)   # under a random name (core/files.py)
    return bi


def _graduation_status(current: str, paid: bool | None) -> str:
    # "No" in the file does not undo a waiver: waived is the office's decision, not a payment
    if paid is None:
        return current
    if paid:
        return G.PAID
    return current if current == G.WAIVED else G.UNPAID


def _compare(parsed: ParsedBalances, progress=None) -> dict:
    """Look the file's students up (one query per chunk) and sort rows into changed / unchanged /
    not found."""
    changed, unchanged, not_found = [], [], []
    rows = parsed.rows
    done = 0
    for chunk in chunked(rows, lookup_chunk()):
        found = {reg: rest for reg, *rest in fetch_in(
            f"SELECT s.{_q('registration_number')}, s.{_q('id')}, f.{_q('id')}, f.{_q('tuition_balance')}, "
            f"f.{_q('graduation_fee_status')}, f.{_q('notes')} FROM {_q(Student._meta.db_table)} s "
            f"LEFT JOIN {_q(FinanceRecord._meta.db_table)} f ON f.{_q('student_id')} = s.{_q('id')} "
            f"WHERE {{ids}}", [], f"s.{_q('registration_number')}", Student._meta.get_field("registration_number"),
            [r.registration_number for r in chunk])}
        for r in chunk:
            hit = found.get(r.registration_number)
            if hit is None:
                not_found.append([r.row, r.registration_number])
                continue
            sid, rid, old, old_grad, old_notes = hit
            old = _dec(old)
            if rid is None:
                new_grad = _graduation_status(G.UNPAID, r.graduation_fee_paid)
                changed.append([sid, None, r.registration_number, r.row, None, str(r.balance), None, new_grad,
                                r.notes or None])
                continue
            new_grad = _graduation_status(old_grad, r.graduation_fee_paid)
            notes = r.notes if r.notes and r.notes != old_notes else None
            if old != r.balance or new_grad != old_grad or notes is not None:
                changed.append([sid, rid, r.registration_number, r.row, str(old), str(r.balance), old_grad, new_grad,
                                notes])
            else:
                unchanged.append([sid, str(r.balance)])
        done += len(chunk)
        if progress:
            progress(10 + int(85 * done / max(len(rows), 1)))
    return {"version": 1, "changed": changed, "unchanged": unchanged, "not_found": not_found}


def _preview_into(bi: BalanceImport, data: bytes, *, acting_user, progress=None, parsed=None,
                  check=None, system=False) -> BalanceImport:
    with gc_paused():
        if parsed is None:
            parsed = parse_balances(data)          # ImportFileError when it cannot be read at all
        if progress:
            progress(10)
        plan = _compare(parsed, progress)
    warnings = []
    earlier = (BalanceImport.objects.filter(sha256=bi.sha256, status=B.APPLIED).exclude(pk=bi.pk)
               .order_by("-applied_at").first())
    if earlier is not None:
        when = timezone.localtime(earlier.applied_at).strftime("%d %b %Y %H:%M") if earlier.applied_at else "earlier"
        warnings.append(f"This same file was already applied as import #{earlier.pk} ({when}); applying it again "
                        "changes only what has changed since.")
    warnings.extend(parsed.preview_warnings())     # the reader's: sheets, columns, skipped rows, rows read as 0
    bi.plan = plan
    bi.warnings = warnings
    bi.errors = [e.as_dict() for e in parsed.errors]
    bi.rows_total = parsed.rows_read
    bi.updated_count = len(plan["changed"])
    bi.unchanged_count = len(plan["unchanged"])
    bi.not_found_count = len(plan["not_found"])
    bi.error_count = len(parsed.errors)
    bi.status = B.PREVIEWED
    bi.progress = 100
    bi.failure_reason = ""
    with transaction.atomic():
        if check is not None:
            check()                                 # a background preview: still this worker's to finish
        save_tracked(bi, user=acting_user, reason=as_system("Balance import previewed", system))
    return bi


def balances_import_preview(*, file, acting_user, system: bool = False) -> BalanceImport:
    """Read and check a balances file and compare it with the finance records, changing nothing
    but the new BalanceImport (status previewed, with counts, the changed rows and the row errors).
    Refused (ImportFileError, a ValidationError, nothing written): empty, over the size limit, not a
    spreadsheet, password-protected or old .xls, a zip bomb, no recognisable header row.
    Warns (in `warnings`) when the same file (sha256) was applied before. Refused too: the user is
    not a finance officer; no user, unless `system` (a command run without --user)."""
    _check_may_import(acting_user, "add", system)
    data, name = _read_upload(file)
    with gc_paused():
        parsed = parse_balances(data)              # before storing anything: an unreadable file leaves no trace
        bi = _new_import(data, name, acting_user)
        return _preview_into(bi, data, acting_user=acting_user, parsed=parsed, system=system)


def balances_import_preview_async(*, file, acting_user, system: bool = False) -> BalanceImport:
    """Store the file as an uploaded BalanceImport and preview it in the background (django-q2);
    `progress` rises as it runs and a file that cannot be read ends as failed with the reason.
    Refused at once: not a finance officer (or no user, unless `system`); empty or over the size
    limit. The task carries who queued it, and is refused when they are gone or lost the role."""
    _check_may_import(acting_user, "add", system)
    data, name = _read_upload(file)
    with transaction.atomic():
        bi = _new_import(data, name, acting_user)
        save_tracked(bi, user=acting_user, reason=as_system("Balance import uploaded", system))
        queued_by = _queued_by(acting_user)
        transaction.on_commit(lambda: jobs.enqueue(bi, "core.tasks.balances_import_preview_task", bi.pk,
                                                   queued_by[0], system, queued_by[1],
                                                   name=f"balances-preview-{bi.pk}"))
    return bi


def balances_import_preview_queued(*, balance_import: BalanceImport, acting_user, system: bool = False) -> str:
    """The background half of `balances_import_preview_async`: claim the uploaded import for this
    worker (core/services/jobs.py) and preview it, raising `progress` as it goes. Whatever stops it
    ends the import failed with the reason the officer reads (an unreadable file, the file missing on
    this worker's storage, anything else) and, but for a refusal of the file, is raised again for the
    task queue to record. Does nothing (and says so) when the import is not waiting for a preview:
    a task delivered twice, or again after its worker died, finds it taken or already ended.
    Refused (ValidationError, before the claim): not a finance officer, or no user unless `system`."""
    _check_may_import(acting_user, "add", system)
    bi = balance_import
    jobs.jobs_sweep(only=[bi.pk])                  # a dead worker's claim: ended before anything else
    bi.refresh_from_db()
    if bi.status != B.UPLOADED or bi.claimed_by:
        return f"import #{bi.pk} is {bi.status}{' (taken up by ' + bi.claimed_by + ')' if bi.claimed_by else ''}; " \
               "nothing to preview"
    try:
        with jobs.job_lock(bi.pk):
            if jobs.claim(bi, status=B.UPLOADED, to_status=B.UPLOADED, where={"claimed_by": ""}) is None:
                return f"import #{bi.pk} was taken up meanwhile; nothing to preview"
            try:
                with bi.file.open("rb") as fh:
                    data = fh.read()
                _preview_into(bi, data, acting_user=acting_user, progress=lambda p: _preview_progress(bi, p),
                              check=lambda: jobs.claim_hold(bi, status=B.UPLOADED), system=system)
            except jobs.ClaimLost as exc:
                return f"import #{bi.pk}: {exc.messages[0]}"
            except BaseException as exc:
                _preview_failed(bi, exc, acting_user)
                if isinstance(exc, ValidationError):
                    return f"import #{bi.pk} failed: {bi.failure_reason}"
                raise
    except locks.LockBusy:
        return f"import #{bi.pk} is being previewed by another worker; nothing to do"
    return f"import #{bi.pk} previewed: {bi.updated_count} to update, {bi.error_count} errors"


def _preview_progress(bi: BalanceImport, percent) -> None:
    # a figure on the page, not part of the job: never let it stop the preview
    try:
        BalanceImport.objects.filter(pk=bi.pk).update(progress=min(int(percent), 99))
    except DatabaseError:
        log.info("progress of import #%s not written", bi.pk, exc_info=True)


def _preview_failed(bi: BalanceImport, exc: BaseException, acting_user) -> None:
    if isinstance(exc, ValidationError):
        reason = "; ".join(exc.messages)
    elif isinstance(exc, FileNotFoundError):
        reason = (f"Import #{bi.pk}: the file is not in this worker's storage ({exc.filename or bi.file.name}). Web "
                  "servers and workers on different hosts need shared storage (README, \"When a worker dies\"); "
                  "upload it again.")
    elif isinstance(exc, (SystemExit, KeyboardInterrupt)):       # django-q's timeout is a SystemExit
        reason = f"Import #{bi.pk}: the worker stopped while reading the file ({exc or type(exc).__name__}); " \
                 "upload it again."
    else:
        reason = f"Import #{bi.pk}: the preview stopped with {type(exc).__name__}: {exc}; upload the file again."
    jobs.claim_end(bi, status=B.UPLOADED, reason=reason, interrupted=False, acting_user=acting_user,
                   history="Balance import could not be read")


def balances_import_submit(*, file, acting_user, system: bool = False) -> BalanceImport:
    """Preview now, or in the background for a file of more than ASYNC_ROWS rows."""
    data, name = _read_upload(file)
    if estimate_rows(data) > ASYNC_ROWS:
        return balances_import_preview_async(file=ContentFile(data, name=name), acting_user=acting_user, system=system)
    return balances_import_preview(file=ContentFile(data, name=name), acting_user=acting_user, system=system)


def _check_can_apply(bi: BalanceImport, skip_errors: bool, acting_user, system: bool) -> None:
    _check_may_import(acting_user, "change", system)
    if bi.status == B.APPLIED:
        raise ValidationError(f"Import #{bi.pk} was already applied.", code="applied")
    if bi.status in (B.APPLYING, B.QUEUED):
        raise ValidationError(f"Import #{bi.pk} is being applied.", code="applying")
    if bi.status != B.PREVIEWED and not can_confirm_again(bi):
        raise ValidationError(f"Import #{bi.pk} is {bi.get_status_display().lower()}, not previewed; upload the file "
                              "again to preview it.", code="not_previewed")
    if bi.error_count and not skip_errors:
        raise ValidationError(f"The file has {bi.error_count} error{'s' if bi.error_count != 1 else ''}; fix them or "
                              "confirm skipping them.", code="has_errors")


def can_confirm_again(bi: BalanceImport) -> bool:
    """A failed apply whose worker stopped, ran out of time or never started: nothing was written
    and the preview still holds, so the officer may confirm it again."""
    return bi.status == B.FAILED and bi.interrupted


def _confirmable(bi: BalanceImport) -> dict:
    # the row as _check_can_apply accepted it, for the conditional UPDATE that takes it
    return {"status": bi.status, "where": {"interrupted": True} if bi.status == B.FAILED else {}}


def balances_import_apply(*, balance_import: BalanceImport, acting_user, skip_errors: bool = False,
                          wait: float | None = None, system: bool = False) -> BalanceImport:
    """Apply a previewed import atomically: finance records, FIN holds (rule 5) and finance
    clearance, with history naming the import. One apply at a time (core/locks.py): while another
    import applies, this one waits up to `wait` seconds (BALANCE_IMPORT_CONFIRM_WAIT by default)
    for its turn and is then refused "Import #N is being applied; confirm this one when it has
    finished", still previewed. Refused too (ValidationError, nothing written): not a finance
    officer (no user at all only with `system`, a command run without --user); already applied or being applied; not previewed (uploaded, failed, cancelled) unless
    its worker stopped (`can_confirm_again`); the file had errors and `skip_errors` is False. A
    failure half-way rolls everything back and marks the import failed with the reason (written
    outside the rolled-back transaction, which is why this service is not wrapped in one atomic
    block as a whole), then re-raises."""
    bi = balance_import
    bi.refresh_from_db(fields=["status", "error_count", "interrupted"])   # the plan never changes after the preview
    _check_can_apply(bi, skip_errors, acting_user, system)
    wait = settings.BALANCE_IMPORT_CONFIRM_WAIT if wait is None else wait
    return _claim_and_apply(bi, acting_user=acting_user, **_confirmable(bi), wait=wait, system=system)


def _claim_and_apply(bi: BalanceImport, *, acting_user, status: str, where: dict, wait: float | None,
                     system: bool = False) -> BalanceImport:
    """Take the import's job lock (another process confirming the same import is refused), then the
    one apply lock (waiting up to `wait` s; None: as long as it takes), then claim the import
    (status → applying, who and when) and apply it in one transaction: `_apply` runs inside
    `transaction.atomic()` while this process holds the apply lock, so no other apply runs."""
    try:
        with jobs.job_lock(bi.pk):
            try:
                with locks.held(APPLY_LOCK, wait=wait):
                    return _apply_claimed(bi, acting_user=acting_user, status=status, where=where, system=system)
            except locks.LockBusy:
                other = balance_import_applying(exclude=bi.pk)
                raise ValidationError(
                    f"{f'Import #{other.pk}' if other else 'Another import'} is being applied; confirm this one when it "
                    "has finished.", code="another_applying") from None
    except locks.LockBusy:
        raise ValidationError(f"Import #{bi.pk} is being applied.", code="applying") from None


def _apply_claimed(bi: BalanceImport, *, acting_user, status: str, where: dict, system: bool = False) -> BalanceImport:
    if jobs.claim(bi, status=status, to_status=B.APPLYING, where=where, progress=0, failure_reason="",
                  interrupted=False) is None:
        bi.refresh_from_db()
        raise ValidationError(f"Import #{bi.pk} changed while you were confirming it; reload it.", code="changed")
    # the row's own `progress` cannot move inside the transaction: report to the shared cache
    # (selectors.finance.balance_import_progress reads it while the import is applying)
    report = progress_cache.reporter(progress_cache.BALANCE_IMPORT_APPLY, bi.pk)
    try:
        report(0)
        with gc_paused(), transaction.atomic():
            jobs.claim_hold(bi, status=B.APPLYING)     # the row stays locked (PostgreSQL) until the end
            _apply(bi, acting_user=acting_user, progress=report, system=system)
    except jobs.ClaimLost:
        raise                                          # the sweep ended it already; nothing was written
    except BaseException as exc:
        _mark_failed(bi, exc, acting_user)
        raise
    finally:
        progress_cache.clear(progress_cache.BALANCE_IMPORT_APPLY, bi.pk)
    return bi


def balances_import_apply_async(*, balance_import: BalanceImport, acting_user,
                                skip_errors: bool = False, system: bool = False) -> BalanceImport:
    """Check now (refused as `balances_import_apply` refuses), mark the import queued so nobody
    confirms it twice, and apply it in the background (`balances_import_apply_queued`), which
    waits its turn behind any import being applied."""
    bi = balance_import
    bi.refresh_from_db(fields=["status", "error_count", "interrupted"])
    _check_can_apply(bi, skip_errors, acting_user, system)
    if not BalanceImport.objects.filter(pk=bi.pk, status=bi.status, **_confirmable(bi)["where"]).update(
            status=B.QUEUED, progress=0, failure_reason="", interrupted=False, updated_at=timezone.now()):
        raise ValidationError(f"Import #{bi.pk} changed while you were confirming it; reload it.", code="changed")
    bi.status = B.QUEUED
    queued_by = _queued_by(acting_user)
    transaction.on_commit(lambda: jobs.enqueue(bi, "core.tasks.balances_import_apply_task", bi.pk,
                                               queued_by[0], skip_errors, system, queued_by[1],
                                               name=f"balances-apply-{bi.pk}"))
    return bi


def balances_import_apply_queued(*, balance_import: BalanceImport, acting_user,
                                 skip_errors: bool = False, system: bool = False) -> BalanceImport:
    """The background half of `balances_import_apply_async`: applies an import marked queued,
    waiting as long as it takes for the import being applied before it (the task's timeout
    bounds the wait). Refused: not queued (already applied, cancelled, taken up by another
    worker …); errors not confirmed as skipped; not a finance officer (any more), or no user
    unless `system`."""
    bi = balance_import
    bi.refresh_from_db(fields=["status", "error_count"])
    _check_may_import(acting_user, "change", system)
    if bi.status != B.QUEUED:
        raise ValidationError(f"Import #{bi.pk} is {bi.get_status_display().lower()}, not queued.", code="not_queued")
    if bi.error_count and not skip_errors:
        raise ValidationError(f"The file has {bi.error_count} errors; fix them or confirm skipping them.",
                              code="has_errors")
    return _claim_and_apply(bi, acting_user=acting_user, status=B.QUEUED, where={}, wait=None, system=system)


def _mark_failed(bi: BalanceImport, exc: BaseException, acting_user) -> None:
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):     # django-q's timeout is a SystemExit
        reason = (f"Import #{bi.pk}: the worker stopped ({exc or type(exc).__name__}); nothing was changed — "
                  "confirm again.")
        interrupted = True
    else:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
        reason, interrupted = f"Nothing was changed: the import stopped with {message}", False
    jobs.claim_end(bi, status=B.APPLYING, reason=reason, interrupted=interrupted, acting_user=acting_user,
                   history="Balance import failed")


_q = quote
_dec = decimal_of


STALE_EXAMPLES = 3


def _check_plan_fresh(changed: list, unchanged: list) -> None:
    """Refuse a plan the records have moved away from since the preview (another import applied
    in between, a graduation fee marked paid by hand): every finance record in the file must still
    hold what the preview compared the file with — the balance of every row, the graduation fee
    status where the file changes it, and no record where the preview found none. Refused with
    the count and a few examples; the officer previews the file again (one click) and confirms
    what they then see. Runs under the apply lock, so nothing that writes balances runs meanwhile."""
    expected = {item[SID]: (item[RID] is not None, item[OLD], item[OLD_GRAD] if item[NEW_GRAD] != item[OLD_GRAD]
                            else None) for item in changed}
    expected.update({sid: (True, balance, None) for sid, balance in unchanged})
    stale = []
    for ids in chunked(list(expected), lookup_chunk()):
        now = {sid: (balance, grad) for sid, balance, grad in fetch_in(
            f"SELECT {_q('student_id')}, {_q('tuition_balance')}, {_q('graduation_fee_status')} "
            f"FROM {_q(FinanceRecord._meta.db_table)} WHERE {{ids}}", [], _q("student_id"),
            FinanceRecord._meta.get_field("student"), ids)}
        for sid in ids:
            had_record, old, old_grad = expected[sid]
            current = now.get(sid)
            if current is None:
                if had_record:
                    stale.append((sid, Decimal(old), None))
                continue
            balance, grad = _dec(current[0]), current[1]
            if not had_record or balance != Decimal(old) or (old_grad is not None and grad != old_grad):
                stale.append((sid, Decimal(old) if old is not None else None, balance))
    if not stale:
        return
    regs = dict(Student.objects.filter(pk__in=[sid for sid, *_ in stale[:STALE_EXAMPLES]])
                .values_list("pk", "registration_number"))

    examples = "; ".join(f"{regs.get(sid, f'#{sid}')}: {kes(then, 'no record')} at the preview, "
                         f"{kes(now_, 'no record')} now"
                         for sid, then, now_ in stale[:STALE_EXAMPLES])
    raise ValidationError(f"Balances changed since this preview ({len(stale)} student{'s' if len(stale) != 1 else ''}, "
                          f"e.g. {examples}); preview the file again.", code="stale")


def _apply(bi: BalanceImport, *, acting_user, progress=None, system: bool = False) -> None:
    """The writes, in steps that report `progress(percent)`: finance records to 40%, holds to 80%,
    then finance clearance. Runs inside the caller's transaction while it holds the apply lock (no
    other apply runs); refused (ValidationError, code "stale") when the records moved since the
    preview. Holds and finance decisions follow the balances as stored, not the file."""
    progress = progress or (lambda percent: None)
    reason = as_system(import_reason(bi), system and acting_user is None)   # history says who: the system
    plan = bi.plan or {}
    changed = plan.get("changed", [])
    unchanged = plan.get("unchanged", [])
    now = timezone.now()
    with audit_context(reason=reason):
        _check_plan_fresh(changed, unchanged)
        progress(5)
        updated, unchanged_now = _write_records(bi, changed, acting_user=acting_user, reason=reason, now=now,
                                                progress=lambda done: progress(5 + 35 * done))
        students = [item[SID] for item in changed] + [sid for sid, _ in unchanged]
        _write_holds(bi, students, acting_user=acting_user, reason=reason, now=now,
                     progress=lambda done: progress(40 + 40 * done))
        finance_clearance_follow(student_ids=students, acting_user=acting_user, reason=reason, balance_import=bi,
                                 system=system)
        progress(99)
    bi.updated_count = updated
    bi.unchanged_count = len(unchanged) + unchanged_now
    bi.status = B.APPLIED
    bi.applied_at = now
    bi.progress = 100
    save_tracked(bi, user=acting_user, reason=as_system("Balance import applied", system and acting_user is None),
                 update_fields=["updated_count", "unchanged_count", "status", "applied_at", "progress", "updated_at"])


def _write_records(bi, changed, *, acting_user, reason, now, progress) -> tuple[int, int]:
    """Finance records: write what the preview found changed (missing records are created), one
    historical row each, copied by the database from the rows just written. The balance always;
    the graduation fee status and the notes only where the file changes them, so a change made to
    them since the preview is not overwritten with the file's "no change"."""
    written = 0
    for chunk in chunked(changed, write_chunk()):
        groups: dict[tuple, list] = {}
        creates, ids = [], []
        for item in chunk:
            new = Decimal(item[NEW])
            if item[RID] is None:
                creates.append(dict(student_id=item[SID], tuition_balance=new,
                                    graduation_fee_status=item[NEW_GRAD] or G.UNPAID, notes=item[NOTES] or "",
                                    last_import_id=bi.pk, updated_at=now))
                continue
            fields = ["tuition_balance"]
            values = [item[RID], new]
            if item[NEW_GRAD] != item[OLD_GRAD]:
                fields.append("graduation_fee_status")
                values.append(item[NEW_GRAD])
            if item[NOTES] is not None:
                fields.append("notes")
                values.append(item[NOTES])
            groups.setdefault(tuple(fields), []).append(values)
            ids.append(item[RID])
        changed_history = History("~", acting_user, reason, now)
        for fields, rows in groups.items():
            update_from_values(FinanceRecord, list(fields), rows, history=changed_history,
                               constants={"last_import_id": bi.pk, "updated_at": now})
        if creates:
            insert_new(FinanceRecord, creates)
            sids = [c["student_id"] for c in creates]
            in_sql, in_params = any_of(_q("student_id"), sids, FinanceRecord._meta.get_field("student"))
            insert_history_select(FinanceRecord, in_sql, in_params,
                                  history_type="+", user=acting_user, reason=reason, when=now)
        written += len(ids) + len(creates)
        progress(written / len(changed))
    return written, 0


def _write_holds(bi, student_ids: list[int], *, acting_user, reason, now, progress) -> None:
    """Rule 5: a stored balance above FINANCE_HOLD_THRESHOLD → one active FIN hold (source
    balance_import) with that amount; at or below → that hold released. Holds placed by hand are
    left alone. The balance is read back from the finance record with the hold (one joined query
    per chunk), so holds follow what is stored, never the file."""
    fin = finance_department()
    if fin is None:
        return
    threshold = Decimal(str(settings.FINANCE_HOLD_THRESHOLD))
    user_id = getattr(acting_user, "pk", None)
    table = _q(Hold._meta.db_table)
    active_import = (f"{_q('department_id')} = %s AND {_q('source')} = %s AND {_q('status')} = %s",
                     [fin.pk, Hold.Source.BALANCE_IMPORT, Hold.Status.ACTIVE])
    joined = " AND ".join(f"h.{part}" for part in active_import[0].split(" AND "))
    done = 0
    hold_reason = memo(finance_hold_reason)           # the same balances recur; formatting costs
    balance_of = memo(_dec)
    for ids in chunked(list(dict.fromkeys(student_ids)), write_chunk()):
        stored, existing = {}, {}
        for sid, balance, hid, amount in fetch_in(
                f"SELECT f.{_q('student_id')}, f.{_q('tuition_balance')}, h.{_q('id')}, h.{_q('amount')} "
                f"FROM {_q(FinanceRecord._meta.db_table)} f LEFT JOIN {table} h "
                f"ON h.{_q('student_id')} = f.{_q('student_id')} AND {joined} WHERE {{ids}}",
                active_import[1], f"f.{_q('student_id')}", FinanceRecord._meta.get_field("student"), ids):
            stored[sid] = balance_of(balance)
            if hid is not None:
                existing[sid] = (hid, amount)
        new, amounts, releases = [], [], []
        for sid in ids:
            balance = stored.get(sid)
            if balance is None:          # no finance record: nothing stored to follow
                continue
            hold = existing.get(sid)
            if balance > threshold:
                if hold is None:
                    new.append(dict(department_id=fin.pk, student_id=sid, reason=hold_reason(balance),
                                    amount=balance, source=Hold.Source.BALANCE_IMPORT, status=Hold.Status.ACTIVE,
                                    placed_by_id=user_id, placed_at=now, balance_import_id=bi.pk, created_at=now,
                                    updated_at=now))
                elif _dec(hold[1]) != balance:
                    amounts.append((hold[0], balance, hold_reason(balance)))
            elif hold is not None:
                # released: the amount and reason stay as they were, to show what was owed
                releases.append((hold[0], f"{import_reason(bi)}: balance {kes(balance)}"))
        # two statements: one joined over fewer columns each runs faster than one over all of them
        changed_history = History("~", acting_user, reason, now)
        update_from_values(Hold, ["amount", "reason"], amounts, history=changed_history,
                           constants={"balance_import_id": bi.pk, "updated_at": now})
        update_from_values(Hold, ["release_reason"], releases, history=changed_history,
                           constants={"status": Hold.Status.RELEASED, "released_by_id": user_id, "released_at": now,
                                      "balance_import_id": bi.pk, "updated_at": now})
        if new:
            insert_new(Hold, new)
            sids = [h["student_id"] for h in new]
            in_sql, in_params = any_of(_q("student_id"), sids, HOLD_STUDENT)
            insert_history_select(Hold, f"{active_import[0]} AND {_q('balance_import_id')} = %s AND {in_sql}",
                                  [*active_import[1], bi.pk, *in_params], history_type="+", user=acting_user,
                                  reason=reason, when=now)
        done += len(ids)
        progress(done / max(len(student_ids), 1))


@transaction.atomic
def balances_import_cancel(*, balance_import: BalanceImport, acting_user, system: bool = False) -> BalanceImport:
    """The officer drops a previewed (or still uploading) import, or one whose worker stopped
    (instead of confirming it again): nothing is applied. Refused: not a finance officer; already
    applied, being applied, failed or cancelled."""
    _check_may_import(acting_user, "change", system)

    def refuse_unless_cancellable(bi):
        if bi.status not in (B.PREVIEWED, B.UPLOADED) and not can_confirm_again(bi):
            raise ValidationError(f"Import #{bi.pk} is {bi.get_status_display().lower()}; only a previewed import can "
                                  "be cancelled.", code="not_previewed")
    # first without the lock: an import being applied keeps its row locked until the apply ends
    refuse_unless_cancellable(BalanceImport.objects.defer("plan").get(pk=balance_import.pk))
    bi = BalanceImport.objects.select_for_update().get(pk=balance_import.pk)
    refuse_unless_cancellable(bi)
    bi.status = B.CANCELLED
    save_tracked(bi, user=acting_user, reason=as_system("Balance import cancelled", system and acting_user is None), update_fields=["status", "updated_at"])
    balance_import.status = bi.status
    return bi


def balances_import_preview_again(*, balance_import: BalanceImport, acting_user, system: bool = False) -> BalanceImport:
    """Preview the stored file of an import again, as a new import compared with the records as
    they are now (after a stale plan was refused, or a worker stopped): the officer confirms what
    they then see. The old import stays as it ended. Refused: not a finance officer; the import is
    applied or still running; its file is gone from storage."""
    _check_may_import(acting_user, "add", system)
    bi = BalanceImport.objects.get(pk=balance_import.pk)
    if bi.status in (B.APPLIED, B.APPLYING, B.QUEUED):
        raise ValidationError(f"Import #{bi.pk} is {bi.get_status_display().lower()}; there is nothing to preview "
                              "again.", code="not_again")
    try:
        with bi.file.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"The file of import #{bi.pk} is no longer stored ({type(exc).__name__}); upload it "
                              "again.", code="file_missing") from exc
    return balances_import_submit(file=ContentFile(data, name=bi.original_name or "balances"), acting_user=acting_user,
                                  system=system)
