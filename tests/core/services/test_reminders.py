"""Around the clock: each reviewer's daily digest, escalation of overdue items to office heads (each
at most once a day), ended cycles closed; each a schedule made by migrate and a command with
--dry-run."""
from __future__ import annotations

import datetime

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from core import permissions
from core.models import ClearanceApproval, ClearanceCycle, Department
from core.services.reminders import SCHEDULES, cycles_close, digests_send, escalations_send
from tests import factories
from tests.conftest import _with_role

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 12, 4, 7, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def waiting(offices, cycle, open_request, make_reviewer):
    """Three students waiting on LIB (within 7 days): two overdue (10 and 9 days), one fresh; a
    LIB reviewer; the LIB head's address (the only head with one)."""
    Department.objects.filter(code="LIB").update(sla_days=7, head_email="Head.Library@Example.ac.ke")
    Department.objects.exclude(code="LIB").update(head_email="")
    students = [factories.StudentFactory(first_name=n) for n in ("Ann", "Ben", "Cy")]
    for s, days in zip(students, (10, 9, 1)):
        request = open_request(s)
        ClearanceApproval.objects.filter(request=request, department__code="LIB").update(
            waiting_since=NOW - datetime.timedelta(days=days))
    reviewer = _with_role(make_reviewer("LIB", email="lib@clearance.test", full_name="Lib Clerk"), permissions.STAFF)
    return {"students": students, "reviewer": reviewer}


def test_a_reviewer_gets_one_digest_a_day_of_what_waits(waiting):
    with time_machine.travel(NOW, tick=False):
        digests = digests_send()
        again = digests_send()
    mine = [d for d in digests if d.email == "lib@clearance.test"]
    assert len(mine) == 1 and mine[0].sent
    (office,) = mine[0].offices
    assert (office.code, office.waiting, office.overdue) == ("LIB", 3, 2)
    assert office.oldest == NOW - datetime.timedelta(days=10)
    (message,) = [m for m in mail.outbox if m.to == ["lib@clearance.test"]]
    assert "LIB — Library: 3 waiting, 2 overdue" in message.body
    assert f"department={office.link.rsplit('=', 1)[1]}" in message.body
    assert not [d for d in again if d.sent]                  # the same day: nothing sent twice
    with time_machine.travel(NOW + datetime.timedelta(days=1), tick=False):
        assert [d.email for d in digests_send() if d.sent] == ["lib@clearance.test"]


def test_nothing_waiting_no_digest(offices, make_reviewer):
    _with_role(make_reviewer("LIB", email="idle@clearance.test"), permissions.STAFF)
    assert digests_send(now=NOW) == [] and not mail.outbox


def test_overdue_items_go_to_the_head_once_a_day_each(waiting):
    with time_machine.travel(NOW, tick=False):
        (escalation,) = escalations_send()
        assert escalations_send() == []                       # each item at most once a day
    assert escalation.head_email == "head.library@example.ac.ke" and escalation.count == 2
    (message,) = mail.outbox
    assert message.to == ["head.library@example.ac.ke"]
    assert "LIB — Library (within 7 days): 2 overdue" in message.body
    assert "Ann" in message.body and "Ben" in message.body and "Cy" not in message.body
    # a day later, still waiting: told again (and Cy, 2 days now, is still within 7)
    with time_machine.travel(NOW + datetime.timedelta(days=1), tick=False):
        (tomorrow,) = escalations_send()
    assert tomorrow.count == 2 and len(mail.outbox) == 2


def test_ended_cycles_are_closed_in_their_history(db):
    ended = factories.ClearanceCycleFactory(name="2025 graduation", opens_on=datetime.date(2025, 1, 1),
                                            closes_on=datetime.date(2025, 12, 1))
    current = factories.ClearanceCycleFactory(name="2026 graduation")
    assert cycles_close(today=datetime.date(2026, 12, 4), dry_run=True) == [ended]
    assert not ClearanceCycle.objects.get(pk=ended.pk).is_closed
    assert cycles_close(today=datetime.date(2026, 12, 4)) == [ended]
    ended.refresh_from_db()
    current.refresh_from_db()
    assert ended.is_closed and not current.is_closed
    assert ended.history.first().history_change_reason == "system: Cycle closed: its end date (2025-12-01) passed"
    assert cycles_close(today=datetime.date(2026, 12, 4)) == []


def test_each_command_dry_run_prints_and_sends_nothing(waiting, capsys):
    with time_machine.travel(NOW, tick=False):
        call_command("send_digests", "--dry-run")
        call_command("escalate_overdue", "--dry-run")
        call_command("close_cycles", "--dry-run")
    out = capsys.readouterr().out
    assert "would send: lib@clearance.test — LIB 3 waiting, 2 overdue" in out
    assert "would send: head.library@example.ac.ke — LIB 2 overdue" in out
    assert "0 cycle(s) to close." in out
    assert not mail.outbox


def test_the_schedules_exist_after_migrate_and_say_when():
    from django_q.models import Schedule
    from core.services.reminders import reminders_schedule_ensure
    reminders_schedule_ensure()
    for name, (func, _) in SCHEDULES.items():
        schedule = Schedule.objects.get(name=name)
        assert schedule.func == func and schedule.schedule_type == Schedule.DAILY and schedule.next_run > timezone.now()
