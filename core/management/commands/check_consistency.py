"""python manage.py check_consistency [--limit N]

Prints each violated invariant of DESIGN.md ("Invariants") on a line, `<rule>: <label>: <message>`,
then a summary. Exit status: 0 when there is none, 1 when there is any (also when --limit stopped
the listing early)."""
from __future__ import annotations

import sys
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from core.selectors.consistency import RULES, consistency_snapshot, iter_consistency_violations

CLEAN = ("No violations: every request's status is derived from its approvals, every balance above the "
         "threshold has its one hold of that amount, every finance approval follows the holds, and every "
         "item the queue shows as waiting has its earlier stages cleared.")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Command(BaseCommand):
    help = ("Check the invariants on this database (request status derived; rule 5: holds follow the stored "
            "balance, finance approvals follow the holds). Prints each violation; exit status 1 if any.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, metavar="N",
                            help="Stop after printing N violations (still saying whether there are more).")

    def handle(self, *args, limit=None, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be 1 or more.")
        per_rule = Counter()
        more = False
        with consistency_snapshot():
            for violation in iter_consistency_violations():
                if limit is not None and sum(per_rule.values()) >= limit:
                    more = True         # one more exists; reading no further
                    break
                self.stdout.write(str(violation))
                per_rule[violation.rule] += 1
        shown = sum(per_rule.values())
        if not shown:
            self.stdout.write(self.style.SUCCESS(CLEAN))
            return
        breakdown = ", ".join(f"{per_rule[rule]} {rule}" for rule in RULES if per_rule[rule])
        if more:
            summary = (f"{_plural(shown, 'violation')} shown ({breakdown}), and there are more: stopped at "
                       f"--limit {limit}.")
        else:
            summary = f"{_plural(shown, 'violation')} ({breakdown})."
        self.stdout.write(self.style.ERROR(summary))
        sys.exit(1)
