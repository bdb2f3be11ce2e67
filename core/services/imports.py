"""The shape every spreadsheet import shares: upload → preview (a stored plan) → confirm.

An import is a model with `file`, `original_name`, `sha256`, `uploaded_by`, `status` (its
`Status` has PREVIEWED, APPLIED, FAILED, CANCELLED), `applied_at`, `failure_reason` and a `plan`:
what the preview found, so confirming never re-reads the file and applies exactly what the person
saw. The pieces here know nothing of what is imported:

- `read_upload`         the upload's bytes and name, refused when empty or over the size limit;
- `new_import`          the import row with its file stored under a random name (core/files.py);
- `students_by_registration`  registration number → student id, one query per chunk;
- `earlier_application` a warning when the same file (sha256) was applied before;
- `import_confirm`      serialised (core/locks.py), one transaction: the import row locked and
                        checked still previewed, the caller's `apply` (which refuses a stale plan
                        and writes), the import marked applied; any failure rolls everything back
                        and marks the import failed with the reason, written outside it;
- `import_cancel`       previewed → cancelled, nothing applied.

The balance import (core/services/balances.py) predates this module and keeps its own background
job machinery; it shares `read_upload`. Hold imports (core/services/hold_imports.py) are built on
all of it, and so are graduand imports (core/services/student_imports.py: the registry's list from
the student records system).
"""
from __future__ import annotations

import hashlib
import os

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from .. import locks
from ..history import as_system, save_tracked
from ..imports.balances import MAX_FILE_BYTES, ImportFileError
from ..models import Student
from ._common import chunked


def read_upload(file, *, default_name: str = "upload") -> tuple[bytes, str]:
    """The upload's bytes and base name; refuses a file over the size limit without reading it all."""
    if isinstance(file, (bytes, bytearray)):
        data, name = bytes(file), default_name
    else:
        name = os.path.basename((getattr(file, "name", "") or default_name).replace("\\", "/")) or default_name
        size = getattr(file, "size", None)
        if size is not None and size > MAX_FILE_BYTES:
            raise ImportFileError(f"The file is {size / 1024 / 1024:.1f} MB; the limit is "
                                  f"{MAX_FILE_BYTES // 1024 // 1024} MB. Split it or remove extra sheets.",
                                  code="too_big")
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(MAX_FILE_BYTES + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB. Split it or remove "
                              "extra sheets.", code="too_big")
    if not data:
        raise ImportFileError("The file is empty.", code="empty")
    return data, name[:255]


def new_import(model, data: bytes, name: str, **fields):
    """An unsaved import of `model` holding the file (stored now, under a random name) and its hash."""
    imp = model(original_name=name, sha256=hashlib.sha256(data).hexdigest(), **fields)
    imp.file.save(name, ContentFile(data), save=False)
    return imp


def students_by_registration(numbers, *, chunk: int = 2000) -> dict[str, int]:
    """Registration number (as stored) → student id, for the numbers that are a student's."""
    found: dict[str, int] = {}
    for part in chunked(list(dict.fromkeys(numbers)), chunk):
        found.update(Student.objects.filter(registration_number__in=part).values_list("registration_number", "pk"))
    return found


def earlier_application(imp, **same) -> str | None:
    """A warning when the same file was applied before (as an import of the same `same` fields)."""
    model = type(imp)
    earlier = (model.objects.filter(sha256=imp.sha256, status=model.Status.APPLIED, **same).exclude(pk=imp.pk)
               .order_by("-applied_at").first())
    if earlier is None:
        return None
    when = timezone.localtime(earlier.applied_at).strftime("%d %b %Y %H:%M") if earlier.applied_at else "earlier"
    return (f"This same file was already applied as import #{earlier.pk} ({when}); applying it again changes only "
            "what has changed since.")


def _refuse_unless_previewed(imp) -> None:
    S = type(imp).Status
    if imp.status == S.APPLIED:
        raise ValidationError(f"{imp} was already applied.", code="applied")
    if imp.status != S.PREVIEWED:
        raise ValidationError(f"{imp} is {imp.get_status_display().lower()}, not previewed; upload the file again to "
                              "preview it.", code="not_previewed")


def import_confirm(imp, *, lock: tuple[str, int], wait: float, apply, acting_user, what: str,
                   busy: str, system: bool = False):
    """Apply a previewed import: under lock `lock` (kind, number: e.g. one office's hold imports),
    waited for up to `wait` seconds and otherwise refused with `busy` (the import stays previewed);
    then in one transaction: the import row locked and checked still previewed, `apply(locked)`
    (refuses a stale plan with a ValidationError, writes, sets the counts), status applied. A
    failure anywhere rolls back every write, marks the import failed with the reason (in its own
    transaction, after the rollback) and is raised again. `what` names the import in history
    ("Hold import")."""
    model = type(imp)
    try:
        with locks.held(*lock, wait=wait):
            try:
                with transaction.atomic():
                    locked = model.objects.select_for_update().get(pk=imp.pk)
                    _refuse_unless_previewed(locked)
                    apply(locked)
                    locked.status = model.Status.APPLIED
                    locked.applied_at = timezone.now()
                    save_tracked(locked, user=acting_user, reason=as_system(f"{what} applied", system))
            except ValidationError as exc:
                if getattr(exc, "code", None) in ("applied", "not_previewed"):
                    raise                                   # nothing was started: the import is as it was
                _mark_failed(imp, "; ".join(exc.messages), acting_user, what, system)
                raise
            except Exception as exc:
                _mark_failed(imp, f"Nothing was changed: the import stopped with {type(exc).__name__}: {exc}",
                             acting_user, what, system)
                raise
    except locks.LockBusy:
        raise ValidationError(busy, code="another_applying") from None
    return locked


def _mark_failed(imp, reason: str, acting_user, what: str, system: bool) -> None:
    model = type(imp)
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=imp.pk, status=model.Status.PREVIEWED).first()
        if row is None:
            return
        row.status, row.failure_reason = model.Status.FAILED, reason
        save_tracked(row, user=acting_user, reason=as_system(f"{what} failed", system))
    imp.status, imp.failure_reason = row.status, row.failure_reason


@transaction.atomic
def import_cancel(imp, *, acting_user, what: str, system: bool = False):
    """Previewed → cancelled: nothing is applied. Refused: not previewed (applied, failed, cancelled)."""
    model = type(imp)
    locked = model.objects.select_for_update().get(pk=imp.pk)
    if locked.status != model.Status.PREVIEWED:
        raise ValidationError(f"{locked} is {locked.get_status_display().lower()}; only a previewed import can be "
                              "cancelled.", code="not_previewed")
    locked.status = model.Status.CANCELLED
    save_tracked(locked, user=acting_user, reason=as_system(f"{what} cancelled", system))
    imp.status = locked.status
    return locked


def stored_bytes(imp) -> bytes:
    """The stored file of an import, for previewing it again; refused when it is gone."""
    try:
        with imp.file.open("rb") as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"The file of {imp} is no longer stored ({type(exc).__name__}); upload it again.",
                              code="file_missing") from exc
