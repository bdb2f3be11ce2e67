import time
import tracemalloc

from django.core.management.base import BaseCommand, CommandError

from core.demo import seed_demo


class Command(BaseCommand):
    help = ("Create (idempotently) demo offices, schools, an open cycle, users for every role and N students with "
            "requests in every state, holds, balances, payments and gowns.")

    def add_arguments(self, parser):
        parser.add_argument("--students", type=int, default=200, help="How many students in all (default 200).")
        parser.add_argument("--password", default="clearance2026", help="Password of every demo user.")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed (same seed, same data).")
        parser.add_argument("--measure", action="store_true", help="Print peak Python memory (slower).")

    def handle(self, *args, students, password, seed, measure, **options):
        if students < 1:
            raise CommandError("--students must be at least 1.")
        if len(password) < 8:
            raise CommandError("--password must have at least 8 characters.")
        started = time.perf_counter()
        if measure:
            tracemalloc.start()

        def progress(done, total):
            if total >= 20000:
                self.stdout.write(f"  {done:,}/{total:,} students", ending="\r")

        report = seed_demo(students=students, password=password, seed=seed, progress=progress)
        elapsed = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready: {report.students_created:,} students created ({report.students_total:,} in all), "
            f"{report.requests_created:,} clearance requests, in {elapsed:.1f}s."))
        if measure:
            _, peak = tracemalloc.get_traced_memory()
            self.stdout.write(f"Peak traced Python memory: {peak / 1e6:.0f} MB")
        self.stdout.write("Logins: admin@, registry@, finance@, fin@ lib@ hos@ sch@ spt@ gown@ reg@, student@clearance.test "
                          "(in progress), student.completed@ (completed, with a certificate), student.onhold@ (on hold)")
        self.stdout.write(f"Password for every demo user: {report.password}")
