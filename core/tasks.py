"""Background work run by django-q2 workers (`async_task("core.tasks.<name>", …)`).

Task functions take ids, not objects, so they can be queued as JSON and re-read what they act on."""
from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from .models import BalanceImport

log = logging.getLogger(__name__)


def _user(user_id):
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def balances_import_preview_task(import_id: int, user_id: int | None) -> str:
    """Preview an uploaded balance import, raising its `progress` as it goes; a file that cannot be
    read ends the import as failed with the reason the officer reads."""
    from .history import save_tracked
    from .services.balances import _preview_into

    bi = BalanceImport.objects.get(pk=import_id)
    user = _user(user_id)
    if bi.status != BalanceImport.Status.UPLOADED:
        return f"import #{bi.pk} is {bi.status}; nothing to preview"

    def progress(percent):
        BalanceImport.objects.filter(pk=bi.pk).update(progress=min(percent, 99))

    try:
        with bi.file.open("rb") as fh:
            data = fh.read()
        _preview_into(bi, data, acting_user=user, progress=progress)
    except ValidationError as exc:
        bi.status = BalanceImport.Status.FAILED
        bi.failure_reason = "; ".join(exc.messages)
        bi.progress = 0
        save_tracked(bi, user=user, reason="Balance import could not be read",
                     update_fields=["status", "failure_reason", "progress", "updated_at"])
        return f"import #{bi.pk} failed: {bi.failure_reason}"
    return f"import #{bi.pk} previewed: {bi.updated_count} to update, {bi.error_count} errors"


def balances_import_apply_task(import_id: int, user_id: int | None, skip_errors: bool = False) -> str:
    """Apply a balance import queued by `balances_import_apply_async`; a refusal or failure is
    recorded on the import."""
    from .services.balances import balances_import_apply_queued

    bi = BalanceImport.objects.get(pk=import_id)
    try:
        balances_import_apply_queued(balance_import=bi, acting_user=_user(user_id), skip_errors=skip_errors)
    except ValidationError as exc:
        reason = "; ".join(exc.messages)
        # a refusal: say it where the officer looks; a queued import must not stay queued forever
        BalanceImport.objects.filter(pk=bi.pk, status=BalanceImport.Status.QUEUED).update(
            status=BalanceImport.Status.FAILED, failure_reason=f"Nothing was changed: {reason}"[:2000])
        BalanceImport.objects.filter(pk=bi.pk).exclude(status=BalanceImport.Status.FAILED).update(
            failure_reason=reason[:2000])
        return f"import #{bi.pk} not applied: {reason}"
    return f"import #{bi.pk} applied: {bi.updated_count} updated"
