"""Notifications: each is its reader's own."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from core.models import Notification
from core.services.notifications import notification_mark_read

pytestmark = pytest.mark.django_db


def test_marking_someone_elses_notification_read_is_refused(student, make_user):
    theirs = Notification.objects.create(user=make_user(), title="Your clearance is open")
    with pytest.raises(PermissionDenied, match="not yours"):
        notification_mark_read(notification=theirs, acting_user=student.user)
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_marking_ones_own_notification_read(student):
    mine = Notification.objects.create(user=student.user, title="Your clearance is open")
    notification_mark_read(notification=mine, acting_user=student.user)
    stored = Notification.objects.get(pk=mine.pk)
    assert stored.read_at is not None and stored.history.first().history_user == student.user
