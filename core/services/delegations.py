"""Delegations: a reviewer lends their office's rights to a colleague for a date range."""
from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import permissions
from ..history import save_tracked
from ..models import Delegation, Department
from ._common import text_within


@transaction.atomic
def delegation_create(*, department: Department, from_user, to_user, starts_on: date, ends_on: date,
                      acting_user, reason: str = "") -> Delegation:
    """Refused: the delegator does not review the office; to oneself; dates in the wrong order;
    starting before today; lasting longer than DELEGATION_MAX_DAYS (a year by default); a reason
    longer than the field; the acting user is neither the delegator nor an administrator; dates
    overlapping a delegation of the office to the same person (checked with the delegate's user
    row locked, so two made at once cannot both pass)."""
    if acting_user.pk != from_user.pk and not acting_user.is_superuser:
        raise ValidationError("Only the reviewer themselves or an administrator can delegate their rights.")
    if from_user.pk == to_user.pk:
        raise ValidationError("Delegate to someone else.")
    if not (to_user.is_active and to_user.is_staff and permissions.in_group(to_user, permissions.STAFF)):
        raise ValidationError(f"{to_user} is not active office staff, so cannot review an office: delegate to a "
                              "colleague with a staff login.", code="not_staff")
    reason = text_within(reason, limit=Delegation._meta.get_field("reason").max_length, what="reason")
    today = timezone.localdate()
    if ends_on < starts_on:
        raise ValidationError("The delegation ends before it starts.")
    if ends_on < today:
        raise ValidationError("The delegation would already be over.")
    if starts_on < today:
        raise ValidationError(f"A delegation starts today or later, not on {starts_on:%d %b %Y}.", code="past")
    longest = settings.DELEGATION_MAX_DAYS
    if ends_on - starts_on >= timedelta(days=longest):
        raise ValidationError(f"A delegation lasts at most {longest} days; this one would last "
                              f"{(ends_on - starts_on).days + 1}. End it by {starts_on + timedelta(days=longest - 1):%d %b %Y}.",
                              code="too_long")
    if not permissions.granted_departments(from_user).filter(pk=department.pk).exists():
        # rights held only by delegation are not passed on again
        raise ValidationError(f"{from_user} does not review {department.code} in their own right, so cannot "
                              "delegate it.")
    # the delegate's row is locked first, so two delegations of one office to one person made at
    # once are checked one after the other and the second sees the first
    type(to_user).objects.select_for_update().filter(pk=to_user.pk).first()
    overlapping = Delegation.objects.filter(department=department, to_user=to_user, revoked_at__isnull=True,
                                            starts_on__lte=ends_on, ends_on__gte=starts_on).first()
    if overlapping is not None:
        raise ValidationError(f"{to_user} already has {department.code} from {overlapping.starts_on:%d %b %Y} to "
                              f"{overlapping.ends_on:%d %b %Y}; end that delegation or choose other dates.",
                              code="overlap")
    delegation = Delegation(department=department, from_user=from_user, to_user=to_user, starts_on=starts_on,
                            ends_on=ends_on, reason=reason)
    permissions.forget_scope(to_user)  # the delegate's rights changed
    delegation = save_tracked(delegation, user=acting_user, reason=f"Delegated {department.code} to {to_user}")
    if starts_on == today:
        transaction.on_commit(delegations_started_send)      # the two are told today; later ones the day they start
    return delegation


def delegations_started_send(*, today: date | None = None, dry_run: bool = False) -> list[Delegation]:
    """Email the delegate and the delegator of each delegation starting `today` (once each: the
    daily digests' schedule runs it too)."""
    from django.core.mail import send_mail

    from .reminders import claim_once
    today = today or timezone.localdate()
    starting = list(Delegation.objects.filter(starts_on=today, revoked_at__isnull=True)
                    .select_related("department", "from_user", "to_user").order_by("pk"))
    if dry_run:
        return starting
    for d in starting:
        if not claim_once("delegation", f"delegation:{d.pk}", today):
            continue
        dates = f"{d.starts_on:%d %b %Y} to {d.ends_on:%d %b %Y}"
        send_mail(f"Clearance: {d.department.code} delegated to {d.to_user} from today",
                  f"{d.from_user} delegated the {d.department.name} office's clearance queue to {d.to_user}, "
                  f"{dates}.\n\n{d.to_user} sees and decides its items meanwhile; each decision's history says "
                  f"\"on behalf of {d.from_user}\". It ends by itself after {d.ends_on:%d %b %Y}.\n"
                  + (f"\nReason: {d.reason}\n" if d.reason else "")
                  + f"\n{settings.PUBLIC_URL}/staff/core/delegation/\n",
                  None, [d.to_user.email, d.from_user.email])
    return starting


@transaction.atomic
def delegation_revoke(*, delegation: Delegation, acting_user) -> Delegation:
    if acting_user.pk != delegation.from_user_id and not acting_user.is_superuser:
        raise ValidationError("Only the reviewer who delegated or an administrator can end a delegation.")
    if delegation.revoked_at:
        raise ValidationError("This delegation was already ended.")
    delegation.revoked_at = timezone.now()
    permissions.forget_scope(delegation.to_user)
    return save_tracked(delegation, user=acting_user, reason="Delegation ended")
