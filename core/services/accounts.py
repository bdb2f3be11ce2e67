"""Logins for students: by invitation from the registry, or by signing up with the registration
number and the email address the student records hold; either way an email with a one-time link to
set a password (a django-q2 task sends it after the transaction commits).

No message here tells anyone whether a student, an account or an address exists: a sign-up that
matches nothing looks exactly like one that matched. The link is one-time (it is bound to the
account's password, which setting one changes) and lasts ACCOUNT_LINK_DAYS."""
from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from .. import permissions
from ..bulk_load import any_of, fetch_in, insert_history_select, insert_new, quote
from ..history import bulk_update_tracked, save_tracked
from ..models import Student, User
from ._common import BulkResult, chunked

log = logging.getLogger(__name__)
SEND_TASK = "core.tasks.account_link_task"
SEND_MANY_TASK = "core.tasks.account_links_task"


class AccountLinkTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset token (bound to the password hash, the last login and the email, so
    it works once), with its own salt and lifetime: ACCOUNT_LINK_DAYS."""

    key_salt = "clearance.accounts.AccountLinkTokenGenerator"

    def check_token(self, user, token):
        if not (user and token):
            return False
        try:
            ts_b36, _ = token.split("-")
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        for secret in [self.secret, *self.secret_fallbacks]:
            if constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token):
                break
        else:
            return False
        return (self._num_seconds(self._now()) - ts) <= settings.ACCOUNT_LINK_DAYS * 86400


account_link_tokens = AccountLinkTokenGenerator()


def account_link(user) -> str:
    """The one-time address where `user` sets their password (the site's public URL)."""
    path = reverse("account_welcome", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                            account_link_tokens.make_token(user)])
    return f"{settings.PUBLIC_URL}{path}"


def _queue_link(user_id: int, kind: str) -> None:
    def enqueue():
        from django_q.tasks import async_task
        async_task(SEND_TASK, user_id, kind, task_name=f"account link for user #{user_id}")
    transaction.on_commit(enqueue)


LINKS_PER_TASK = 200


def _queue_links(user_ids: list[int], kind: str) -> None:
    """One link for each of these users, after commit: one task for one, a task per LINKS_PER_TASK for
    many (an import inviting 5,000 graduands queues 25 tasks, not 5,000)."""
    ids = list(user_ids)
    if len(ids) == 1:
        _queue_link(ids[0], kind)
        return

    def enqueue():
        from django_q.tasks import async_task
        for start in range(0, len(ids), LINKS_PER_TASK):
            part = ids[start:start + LINKS_PER_TASK]
            async_task(SEND_MANY_TASK, part, kind, task_name=f"{len(part)} account links from user #{part[0]}")
    if ids:
        transaction.on_commit(enqueue)


def _login_for(student: Student, *, acting_user, reason: str) -> tuple[User | None, str | None]:
    """The student's login, made when they have none (no password yet: the link sets it). Returns
    (user, None), or (None, why not) when it cannot be theirs."""
    email = (student.email or "").strip().lower()
    if not email:
        return None, "no email address in the student records"
    user = student.user
    if user is None:
        if User.objects.filter(email__iexact=email).exists():
            return None, "the email address belongs to another account; ask the IT office"
        user = User(email=email, full_name=student.full_name, is_staff=False)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                save_tracked(user, user=acting_user, reason=reason)
                student.user = user
                save_tracked(student, user=acting_user, reason=reason)
        except IntegrityError:
            return None, "the email address belongs to another account; ask the IT office"
    elif user.has_usable_password():
        return None, "already has a login (a forgotten password is reset from the sign-in page)"
    elif not user.is_active:
        return None, "the login is disabled; ask the IT office"
    user.groups.add(Group.objects.get(name=permissions.STUDENT))
    return user, None


INVITE_CHUNK = 2000      # students read, locked and given logins at a time: memory flat whatever the list


@transaction.atomic
def students_invite(*, student_ids, acting_user, reason: str = "", system: bool = False) -> BulkResult:
    """Send each selected student an invitation: a login (made if they have none) and a one-time
    link to set its password. Refused row by row: no email, an address another account (or another
    selected student) has, a login already in use. Only the registry (or an administrator) invites.
    Queries grow with batches, not rows: a batch of INVITE_CHUNK students is read and locked at once,
    the addresses in use looked up at once, the new logins and their history written in bulk (a
    graduand import invites 100,000 students a batch at a time, in one transaction). `system`:
    invitations a graduand import sends (the import checked who may apply it; `reason` names it)."""
    if not system and not (acting_user is not None and (permissions.has_role(acting_user, permissions.REGISTRY)
                                                        or acting_user.is_superuser)):
        raise ValidationError("Only the registry invites students.")
    result = BulkResult(unseen_where="not in your list")
    reason = reason or f"invited by {acting_user.email}"
    group = Group.objects.get(name=permissions.STUDENT)
    taken: set[str] = set()     # addresses in use, and those given to students of earlier batches
    invited: list[int] = []
    for part in chunked(list(dict.fromkeys(student_ids)), INVITE_CHUNK):
        ids = _invite_batch(part, result, taken, acting_user=acting_user, reason=reason)
        User.groups.through.objects.bulk_create([User.groups.through(user_id=pk, group_id=group.pk) for pk in ids],
                                                ignore_conflicts=True)
        invited += ids
    _queue_links(invited, "invitation")
    return result


def _invite_batch(ids: list[int], result: BulkResult, taken: set[str], *, acting_user, reason: str) -> list[int]:
    """One batch of students_invite: their logins found or made; returns the invited users' ids."""
    students = {s.pk: s for s in Student.objects.select_related("user").select_for_update(of=("self",))
                .filter(pk__in=ids)}
    wanted = {(s.email or "").strip().lower() for s in students.values() if s.user_id is None} - {""} - taken
    if wanted:
        taken |= set(User.objects.annotate(address=Lower("email")).filter(address__in=wanted)
                     .values_list("address", flat=True))
    new_logins, invited = [], []
    for pk in ids:
        student = students.get(pk)
        if student is None:
            result.refuse_unseen(pk)
            continue
        user, why = _login_to_make(student, taken)
        if why:
            result.refuse(pk, student.registration_number, why)
            continue
        if user is None:
            new_logins.append(student)
            continue
        invited.append(user.pk)
        result.done.append(pk)
    try:
        with transaction.atomic():
            invited += _logins_make(new_logins, acting_user=acting_user, reason=reason)
            result.done += [s.pk for s in new_logins]
    except IntegrityError:
        # an address taken meanwhile by another process: one by one, so only its row is refused
        for student in new_logins:
            student.user = None
            user, why = _login_for(student, acting_user=acting_user, reason=reason)
            if user is None:
                result.refuse(student.pk, student.registration_number, why)
            else:
                invited.append(user.pk)
                result.done.append(student.pk)
    return invited


def _login_to_make(student: Student, taken: set[str]) -> tuple[User | None, str | None]:
    """What inviting `student` takes: (their login, None) when it can be invited, (None, None) when
    one is to be made (its address is then counted as taken), (None, why not) when it cannot."""
    email = (student.email or "").strip().lower()
    if not email:
        return None, "no email address in the student records"
    user = student.user
    if user is None:
        if email in taken:
            return None, "the email address belongs to another account; ask the IT office"
        taken.add(email)
        return None, None
    if user.has_usable_password():
        return None, "already has a login (a forgotten password is reset from the sign-in page)"
    if not user.is_active:
        return None, "the login is disabled; ask the IT office"
    return user, None


def _logins_make(students: list[Student], *, acting_user, reason: str) -> list[int]:
    """A login without a password for each student (the link sets it), linked to them, with history;
    returns their ids.
    Written as plain rows (an import invites thousands at once): inserted with executemany, read back
    by address, their history copied by the database, the students' links written per batch."""
    if not students:
        return []
    now = timezone.now()
    addresses = [s.email.strip().lower() for s in students]
    insert_new(User, [dict(email=address, full_name=s.full_name, is_staff=False, date_joined=now,
                           password=UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30))   # as set_unusable_password
                      for s, address in zip(students, addresses)])
    email = User._meta.get_field("email")
    id_of = {address: pk for pk, address in fetch_in(
        f"SELECT {quote('id')}, {quote('email')} FROM {quote(User._meta.db_table)} WHERE {{ids}}", [],
        quote("email"), email, addresses)}
    for start in range(0, len(addresses), 5000):
        where, params = any_of(quote("email"), addresses[start:start + 5000], email)
        insert_history_select(User, where, params, history_type="+", user=acting_user, reason=reason, when=now)
    bulk_update_tracked([{"id": s.pk, "user_id": id_of[address]} for s, address in zip(students, addresses)],
                        Student, ["user"], user=acting_user, reason=reason)
    return [id_of[address] for address in addresses]


def student_sign_up(*, registration_number: str, email: str) -> None:
    """A student asks for a login: when the registration number and the email address are those the
    student records hold (case and spaces aside) and the student has no password yet, the link goes
    to that address. Otherwise nothing happens — and the caller cannot tell (no enumeration)."""
    reg = " ".join((registration_number or "").split()).upper()
    address = (email or "").strip().lower()
    if not reg or not address:
        return
    with transaction.atomic():
        student = (Student.objects.select_related("user").select_for_update(of=("self",))
                   .filter(registration_number__iexact=reg, email__iexact=address).first())
        if student is None:
            log.info("sign-up for %s matched no student", reg)
            return
        user, why = _login_for(student, acting_user=None, reason="signed up with the registration number and email")
        if user is None:
            log.info("sign-up for %s: nothing sent (%s)", reg, why)
            return
        _queue_link(user.pk, "sign-up")


SUBJECTS = {"invitation": "Your Clearance login", "sign-up": "Set your Clearance password"}


def account_links_send(*, user_ids, kind: str) -> tuple[int, int]:
    """Email each of `user_ids` their link (one task's share of a bulk invitation): (sent, failed).
    A failure to send one is logged and does not stop the others."""
    sent = failed = 0
    for user_id in user_ids:
        try:
            sent += account_link_send(user_id=user_id, kind=kind)
        except Exception:
            failed += 1
            log.exception("%s link to user #%s not sent", kind, user_id)
    return sent, failed


def account_link_send(*, user_id: int, kind: str) -> bool:
    """Email the one-time link (the task's work). False when there is nothing to send any more: the
    account is gone, disabled, or has a password already."""
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.is_active or user.has_usable_password():
        return False
    link = account_link(user)
    days = settings.ACCOUNT_LINK_DAYS
    body = (f"Hello {user.full_name or user.email},\n\n"
            f"{'The registry has invited you to' if kind == 'invitation' else 'You asked to'} follow your graduation "
            f"clearance in Clearance. Set your password here (the link works once, for {days} days):\n\n{link}\n\n"
            f"Then sign in at {settings.PUBLIC_URL}/student/ with {user.email}.\n\n"
            "If you did not expect this, ignore this email: nothing happens until the link is used.\n")
    send_mail(SUBJECTS.get(kind, SUBJECTS["sign-up"]), body, None, [user.email])
    log.info("%s link sent to user #%s", kind, user.pk)
    return True
