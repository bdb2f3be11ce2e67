from __future__ import annotations

from django.db import transaction

from ..models import Notification


def notifications_send(items: list[dict]) -> None:
    """Queue notifications (dicts of Notification fields) to be written once the surrounding
    transaction commits, so a rolled-back decision tells nobody anything."""
    items = [i for i in items if i.get("user_id") or i.get("user")]
    if not items:
        return

    def write():
        Notification.objects.bulk_create([Notification(**i) for i in items], batch_size=1000)

    transaction.on_commit(write)


@transaction.atomic
def notification_mark_read(*, notification: Notification, acting_user) -> Notification:
    from django.core.exceptions import PermissionDenied
    from django.utils import timezone
    if notification.user_id != acting_user.pk:
        raise PermissionDenied("This notification is not yours.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification._history_user = acting_user
        notification.save(update_fields=["read_at"])
    return notification
