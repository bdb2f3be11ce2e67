"""A live race on a seeded database (PostgreSQL): at the same instant two overlapping balance imports
(each previewed first, then confirmed together), LIB and HOS clerks deciding requests, and finance
placing and releasing holds. Run check_consistency after it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/race .venv/bin/python manage.py migrate
    DATABASE_URL=… .venv/bin/python manage.py seed_demo --students 3000
    DATABASE_URL=… .venv/bin/python scripts/race_check.py && DATABASE_URL=… .venv/bin/python manage.py check_consistency
"""
import io, os, random, sys, time
from multiprocessing import get_context
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearance_admin.settings")
import django
django.setup()
from decimal import Decimal
import openpyxl
from django.core.files.base import ContentFile
from django.core.exceptions import ValidationError
from django.db import connections

def xlsx(rows):
    wb = openpyxl.Workbook(); wb.active.append(["Reg No", "Balance"])
    for r in rows: wb.active.append(r)
    out = io.BytesIO(); wb.save(out); return ContentFile(out.getvalue(), name="b.xlsx")

def importer(seed, go):
    connections.close_all()
    from core.models import Student, User
    from core.services.balances import balances_import_preview, balances_import_apply
    rng = random.Random(seed)
    officer = User.objects.get(email="finance@clearance.test")
    regs = list(Student.objects.values_list("registration_number", flat=True))
    bi = balances_import_preview(file=xlsx([[r, rng.choice([0, 0, 250, 1200, 3000])] for r in regs]), acting_user=officer)
    go.wait()
    try:
        balances_import_apply(balance_import=bi, acting_user=officer)
        print(f"import {seed}: applied #{bi.pk}")
    except ValidationError as exc:
        print(f"import {seed}: refused: {exc.messages[0][:140]}")

def clerk(code, go, n=300):
    connections.close_all()
    from core.models import ClearanceApproval, User
    from core.services import approvals as s
    user = User.objects.get(email=f"{code.lower()}@clearance.test")
    rng = random.Random(code)
    go.wait()
    done = refused = 0
    ids = list(ClearanceApproval.objects.filter(department__code=code, status="pending").values_list("pk", flat=True)[:n])
    for pk in ids:
        a = ClearanceApproval.objects.get(pk=pk)
        try:
            if rng.random() < 0.6:
                s.approval_approve(approval=a, acting_user=user, seen=a.state_token)
            else:
                s.approval_reject(approval=a, acting_user=user, reason="Not returned", seen=a.state_token)
            done += 1
        except ValidationError:
            refused += 1
    print(f"clerk {code}: {done} decided, {refused} refused")

def holds(go, n=200):
    connections.close_all()
    from core.models import Department, Hold, Student, User
    from core.services.holds import holds_place, holds_release
    officer = User.objects.get(email="finance@clearance.test")
    fin = Department.objects.get(code="FIN")
    ids = list(Student.objects.order_by("?").values_list("pk", flat=True)[:n])
    go.wait()
    for sid in ids:
        holds_place(department=fin, student_ids=[sid], reason="Cheque bounced", amount=500, acting_user=officer)
    placed = list(Hold.objects.filter(department=fin, source="manual", status="active").values_list("pk", flat=True)[: n // 2])
    for pk in placed:
        holds_release(hold_ids=[pk], acting_user=officer, reason="Cheque cleared")
    print(f"finance: {len(ids)} holds placed, {len(placed)} released")

if __name__ == "__main__":
    ctx = get_context("fork")
    go = ctx.Event()
    connections.close_all()
    procs = [ctx.Process(target=importer, args=(1, go)), ctx.Process(target=importer, args=(2, go)),
             ctx.Process(target=clerk, args=("LIB", go)), ctx.Process(target=clerk, args=("HOS", go)),
             ctx.Process(target=holds, args=(go,))]
    for p in procs: p.start()
    time.sleep(25)   # let both imports finish their previews
    t = time.time(); go.set()
    for p in procs: p.join()
    print(f"all done in {time.time() - t:.1f}s")
