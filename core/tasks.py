"""Background work run by django-q2 workers (`async_task("core.tasks.<name>", …)`).

Task functions take ids, not objects, so they can be queued as JSON and re-read what they act on.
Every one may run twice: the ORM broker delivers a task again when its worker died before
acknowledging it (Q_CLUSTER["retry"]). A second delivery finds its job taken up or already ended
(core/services/jobs.py) and does nothing but say so. Whatever stops a task ends its job failed with
a reason a person reads; anything unexpected is raised again, for the task queue's "Failed tasks"."""
from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from . import permissions
from .models import BalanceImport

log = logging.getLogger(__name__)
B = BalanceImport.Status


class Refused(Exception):
    """The task may not run as whoever queued it; the reason is for a person."""


def _officer(bi: BalanceImport, user_id: int | None, *, system: bool, queued_by: str, perm: str):
    """The officer who queued this job, as they are now (None for a job the system queued,
    `system`). Refused when they were deleted, deactivated or lost the finance role since: the
    job must not run with rights nobody holds any more, least of all the system's."""
    if user_id is None:
        if system:
            return None
        raise Refused(f"Import #{bi.pk} was queued without an officer; nothing was changed.")
    user = get_user_model().objects.filter(pk=user_id).first()
    who = (user.email if user is not None else queued_by) or f"user #{user_id}"
    if user is None:
        raise Refused(f"The officer who queued import #{bi.pk} ({who}) no longer exists; nothing was changed.")
    if not user.is_active:
        raise Refused(f"The officer who queued import #{bi.pk} ({who}) is no longer active; nothing was changed.")
    if not permissions.may_import_balances(user, perm):
        raise Refused(f"The officer who queued import #{bi.pk} ({who}) no longer has the finance role; nothing "
                      "was changed.")
    return user


def _import(import_id: int) -> BalanceImport:
    bi = BalanceImport.objects.filter(pk=import_id).first()
    if bi is None:
        raise LookupError(f"Balance import #{import_id} does not exist (deleted, or this worker uses another "
                          "database); nothing was done.")
    return bi


def balances_import_preview_task(import_id: int, user_id: int | None, system: bool = False,
                                 queued_by: str = "") -> str:
    """Preview an uploaded balance import (`balances_import_preview_queued`) as the officer who
    uploaded it; refused, and the import failed saying why, when they no longer may."""
    from .services.balances import balances_import_preview_queued
    from .services.jobs import not_started

    bi = _import(import_id)
    try:
        user = _officer(bi, user_id, system=system, queued_by=queued_by, perm="add")
    except Refused as exc:
        not_started(bi, reason=str(exc), interrupted=False, status=B.UPLOADED)
        return f"import #{bi.pk} not previewed: {exc}"
    return balances_import_preview_queued(balance_import=bi, acting_user=user, system=system)


def balances_import_apply_task(import_id: int, user_id: int | None, skip_errors: bool = False, system: bool = False,
                               queued_by: str = "") -> str:
    """Apply a balance import queued by `balances_import_apply_async`, after any import being applied
    before it, as the officer who confirmed it; a refusal (they were deleted or lost the finance
    role meanwhile, say) or failure is recorded on the import."""
    from .services.balances import balances_import_apply_queued
    from .services.jobs import jobs_sweep, not_started

    bi = _import(import_id)
    jobs_sweep(only=[bi.pk])                     # delivered again after its worker died: ended first
    bi.refresh_from_db(fields=["status", "claimed_by"])
    if bi.status != B.QUEUED:
        taken = f" by {bi.claimed_by}" if bi.status == B.APPLYING and bi.claimed_by else ""
        return f"import #{bi.pk} is {bi.status}{taken}; nothing to apply"
    try:
        user = _officer(bi, user_id, system=system, queued_by=queued_by, perm="change")
    except Refused as exc:
        not_started(bi, reason=str(exc), interrupted=False)
        return f"import #{bi.pk} not applied: {exc}"
    try:
        balances_import_apply_queued(balance_import=bi, acting_user=user, skip_errors=skip_errors, system=system)
    except ValidationError as exc:
        reason = "; ".join(exc.messages)
        # a refusal before the claim (errors not confirmed …): a queued import must not stay queued
        not_started(bi, reason=f"Nothing was changed: {reason}", interrupted=False)
        return f"import #{bi.pk} not applied: {reason}"
    except BaseException as exc:
        # stopped before its claim (while waiting its turn, say): the preview still holds
        not_started(bi, reason=f"Import #{bi.pk}: the worker stopped before applying it ({type(exc).__name__}: "
                               f"{exc}); nothing was changed — confirm again.", interrupted=True)
        raise
    return f"import #{bi.pk} applied: {bi.updated_count} updated"


def jobs_sweep_task() -> str:
    """Every minute (schedule "Sweep stopped jobs"): end the jobs whose worker died or timed out."""
    from .services.exports import exports_sweep_quietly
    from .services.jobs import jobs_sweep
    swept = jobs_sweep()
    exports = exports_sweep_quietly()
    done = [s.reason for s in swept] + [f"exports {k.replace('_', ' ')}: {n}" for k, n in exports.items() if n]
    return "; ".join(done) or "nothing stuck"


def _export_owner(export):
    """The person the export is for, as they are now; Refused when they may not have it any more."""
    user = export.user
    if not user.is_active:
        raise Refused(f"{user.email} is no longer active; the export was not written.")
    return user


def export_report_task(export_id: int) -> str:
    """Write a report queued under "My exports" (core/services/exports.py), as the person who asked
    for it and with their rights as they are now."""
    from . import permissions
    from .exports.reports import report_title, scoped_filters
    from .selectors.reports import REPORTS
    from .services.exports import export_fail, export_take, export_write

    export = export_take(export_id)
    if export is None:
        return f"export #{export_id} is not waiting; nothing to do"
    try:
        user = _export_owner(export)
        role = export.params.get("role")
        if role and not permissions.has_role(user, role):
            raise Refused(f"{user.email} no longer has the {role} role; the export was not written.")
        report = REPORTS[export.name]
        filters = scoped_filters(report.parse(export.params.get("filters") or {}), user=user, role=role)
    except (Refused, ValidationError, KeyError) as exc:
        export_fail(export, str(exc) if not isinstance(exc, ValidationError) else "; ".join(exc.messages))
        return f"export #{export_id} not written: {exc}"
    fast_csv = export.format == "csv"          # the csv path of the selectors: moments come as local text
    export_write(export, rows=report.rows_for_csv(filters) if fast_csv else report.rows(filters),
                 columns=report.columns(filters), title=report_title(report, filters), sheet=report.title,
                 log_name=report.name, log_filters=filters.as_dict(),
                 csv_moments_as_text=fast_csv and report.csv_moments_as_text)
    return f"export #{export_id} written: {export.rows} rows"


def account_link_task(user_id: int, kind: str) -> str:
    """Email a student their one-time link to set a password (core/services/accounts.py)."""
    from .services.accounts import account_link_send
    sent = account_link_send(user_id=user_id, kind=kind)
    return f"{kind} link {'sent' if sent else 'not sent (no such login, disabled, or a password already set)'}"


def account_links_task(user_ids: list[int], kind: str) -> str:
    """Email one-time links to many students at once (a bulk invitation's share)."""
    from .services.accounts import account_links_send
    sent, failed = account_links_send(user_ids=user_ids, kind=kind)
    summary = f"{sent} of {len(user_ids)} {kind} links sent"
    if failed:
        raise RuntimeError(f"{summary}; {failed} failed (see the log)")    # shown under Failed tasks
    return summary


def backup_task() -> str:
    """The nightly backup (schedule "Nightly backup", core/services/backups.py): the archive's
    summary, logged; a failure is logged and raised again, so it shows under Failed tasks."""
    from .services.backups import backup_create

    try:
        result = backup_create()
    except Exception:
        log.exception("the nightly backup failed")
        raise
    summary = result.summary()
    log.info("nightly backup: %s", summary)
    return summary


def notification_email_task(notification_ids) -> str:
    """Email these notifications, each at most once (core/services/notifications.py)."""
    from .services.notifications import notification_emails_send
    ids = [notification_ids] if isinstance(notification_ids, int) else list(notification_ids)
    return "; ".join(notification_emails_send(ids))


def digests_task() -> str:
    """Daily (schedule "Daily digests"): each reviewer's digest of what waits in their offices."""
    from .services.delegations import delegations_started_send
    from .services.reminders import digests_send
    sent = [d for d in digests_send() if d.sent]
    starting = delegations_started_send()
    return f"{len(sent)} digest(s) sent; {len(starting)} delegation(s) starting today told"


def escalations_task() -> str:
    """Daily (schedule "Escalate overdue items"): overdue items to their offices' heads."""
    from .services.reminders import escalations_send
    sent = [e for e in escalations_send() if e.sent]
    return f"{len(sent)} escalation email(s), {sum(e.count for e in sent)} item(s)"


def cycles_close_task() -> str:
    """Daily (schedule "Close ended cycles"): cycles past their end date closed."""
    from .services.reminders import cycles_close
    return f"{len(cycles_close())} cycle(s) closed"
