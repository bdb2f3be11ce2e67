"""Dashboard callbacks, one per site (settings UNFOLD_* → DASHBOARD_CALLBACK). Each adds the figures
its site's index template shows; the figures come from core.selectors."""
from __future__ import annotations


def admin_dashboard(request, context):
    """/admin/: people per role, the clearance in figures, and the state of the task queue."""
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.db.models import Count, Q
    from django.urls import reverse
    from django.utils import timezone
    from django_q.conf import Conf
    from django_q.models import Failure, OrmQ, Schedule, Success

    from core import permissions
    from core.models import ClearanceRequest, Student, User

    R = ClearanceRequest.Status
    since = timezone.now() - timedelta(days=1)
    counts = dict(Group.objects.filter(name__in=permissions.ROLES)
                  .annotate(n=Count("user", filter=Q(user__is_active=True))).values_list("name", "n"))
    users = User.objects.aggregate(active=Count("pk", filter=Q(is_active=True)),
                                   superusers=Count("pk", filter=Q(is_active=True, is_superuser=True)))
    by_status = dict(ClearanceRequest.objects.values_list("status").annotate(n=Count("pk")).order_by())
    open_requests = sum(by_status.get(s, 0) for s in (R.PENDING, R.IN_PROGRESS, R.ON_HOLD))
    failures = Failure.objects.filter(stopped__gte=since).count()
    queued = OrmQ.objects.using(Conf.ORM).count() if Conf.ORM else None
    next_schedule = Schedule.objects.filter(next_run__isnull=False).order_by("next_run").first()

    def link(name):
        return reverse(f"admin:{name}", current_app="admin")

    context.update(
        kpis=[
            {"title": "Active users", "value": f"{users['active']:,}",
             "footer": f"{users['superusers']:,} administrators (superusers)", "link": link("core_user_changelist")},
            {"title": "Students", "value": f"{Student.objects.count():,}", "footer": "with a student record",
             "link": link("core_student_changelist")},
            # open = pending + in progress + on hold; completed ones are counted apart, never as open
            {"title": "Open requests", "value": f"{open_requests:,}",
             "footer": f"{open_requests - by_status.get(R.ON_HOLD, 0):,} in progress, "
                       f"{by_status.get(R.ON_HOLD, 0):,} on hold · {by_status.get(R.COMPLETED, 0):,} completed, "
                       f"not counted here",
             "link": link("core_clearancerequest_changelist")},
            {"title": "Failed tasks (24 h)", "value": f"{failures:,}",
             "footer": f"{Success.objects.filter(stopped__gte=since).count():,} succeeded in the same time",
             "link": link("django_q_failure_changelist"), "alert": failures > 0},
        ],
        roles=[{"name": role, "count": counts.get(role, 0)} for role in permissions.ROLES],
        request_statuses=[{"name": label, "count": by_status.get(value, 0)} for value, label in R.choices],
        queue={
            "queued": queued,
            "broker": "ORM (database)" if Conf.ORM else "Redis",
            "failures": failures,
            "schedules": Schedule.objects.count(),
            "next_schedule": next_schedule,
        },
    )
    return context


def student_dashboard(request, context):
    """/student/: the logged-in student's own requests office by office, holds and what they can do."""
    from core.models import REASON_MAX_LENGTH, ClearanceRequest
    from core.selectors.student import (cycles_open_for_submission, student_active_holds, student_of,
                                        student_payments, student_progress, unread_notification_count,
                                        unread_notifications)
    student = student_of(request.user)
    request.unread_notification_count = unread_notification_count(request.user)  # the sidebar badge reuses it
    context.update(student=student, unread_count=request.unread_notification_count,
                   unread_notes=unread_notifications(request.user) if request.unread_notification_count else [])
    if student is None:
        return context
    holds = student_active_holds(student)
    context.update(
        holds=holds,
        progress=student_progress(student, holds=holds),
        open_cycles=cycles_open_for_submission(student),
        request_reasons=ClearanceRequest.Reason.choices,
        response_max_length=REASON_MAX_LENGTH,
        payments=student_payments(student),
    )
    return context


def finance_dashboard(request, context):
    """/finance/: the financial summary (core.selectors.finance, a few aggregate queries)."""
    from django.urls import reverse

    from core.selectors.finance import finance_summary

    def link(name, query=""):
        return reverse(f"finance:{name}", current_app="finance") + query

    context.update(
        summary=finance_summary(),
        links={
            "owing": link("core_financerecord_changelist", "?balance=owing"),
            "credit": link("core_financerecord_changelist", "?balance=credit"),
            "grad_unpaid": link("core_financerecord_changelist", "?graduation_fee_status__exact=unpaid"),
            "holds": link("core_hold_changelist", "?status=active"),
            "payments": link("core_payment_changelist"),
            "unverified": link("core_payment_changelist", "?verified=no"),
            "verify_by_code": link("core_payment_verify_by_code"),
            "record_payment": link("core_payment_add"),
            "place_hold": link("core_hold_add"),
            "imports": link("core_balanceimport_changelist"),
        },
    )
    return context


def registry_dashboard(request, context):
    """/registry/: completion of the open cycle(s), requests per status, the offices holding most
    students, and completed-but-now-held (core.selectors.registry, a few aggregate queries)."""
    import json
    from urllib.parse import urlencode

    from django.urls import reverse

    from core.models import ClearanceRequest
    from core.selectors.registry import registry_overview

    R = ClearanceRequest.Status
    overview = registry_overview()
    requests = reverse("registry:core_clearancerequest_changelist", current_app="registry")
    # a single cycle can be a filter on the list; several open cycles are left unfiltered
    cycle_query = {"cycle__id__exact": overview["cycles"][0].pk} if len(overview["cycles"]) == 1 else {}
    variants = {R.PENDING: "", R.IN_PROGRESS: "info", R.ON_HOLD: "warning", R.COMPLETED: "success",
                R.REVOKED: "danger"}
    departments = overview["departments"]
    counts = overview["status_counts"]

    def filtered(**query):
        return f"{requests}?{urlencode({**cycle_query, **query})}"

    overdue = sum(d["overdue"] for d in departments)
    kpis = [
        {"key": "completed", "title": "Completed", "value": counts[R.COMPLETED], "href": filtered(status__exact=R.COMPLETED),
         "footer": f"of {overview['completion']['total']} requests ({overview['completion']['rate']}%)"},
        {"key": "on-hold", "title": "On hold", "value": counts[R.ON_HOLD], "href": filtered(status__exact=R.ON_HOLD),
         "footer": "an office rejected or holds something"},
        {"key": "pending", "title": "Waiting for offices", "value": counts[R.PENDING] + counts[R.IN_PROGRESS],
         "href": filtered(status__in=f"{R.PENDING},{R.IN_PROGRESS}"), "footer": "pending or in progress"},
        {"key": "overdue", "title": "Overdue items", "value": overdue, "href": filtered(overdue="yes"),
         "footer": "office decisions past their SLA", "alert": overdue > 0},
    ]
    over_time, by_school, medians = overview["over_time"], overview["by_school"], overview["median_days"]
    # unfold's chart components read the data from a data attribute (no inline script: the CSP)
    charts = {
        "over_time": json.dumps({"labels": over_time["labels"], "datasets": [
            {"label": f"Completed per {over_time['unit']}", "data": over_time["counts"],
             "borderColor": "var(--color-primary-600)", "backgroundColor": "var(--color-primary-600)"}]}),
        "by_school": json.dumps({"labels": [r["code"] for r in by_school], "datasets": [
            {"label": "Completed", "data": [r["completed"] for r in by_school], "backgroundColor": "#16a34a"},
            {"label": "Waiting", "data": [r["waiting"] for r in by_school], "backgroundColor": "#94a3b8"},
            {"label": "On hold", "data": [r["on_hold"] for r in by_school], "backgroundColor": "#f59e0b"}]}),
        "by_school_options": json.dumps({"scales": {"x": {"stacked": True}, "y": {"stacked": True}}}),
        "offices": json.dumps({"labels": [d["code"] for d in departments], "datasets": [
            {"label": "Median days to decision", "data": [medians.get(d["department"].pk, 0) for d in departments],
             "backgroundColor": "var(--color-primary-600)"},
            {"label": "Overdue items", "data": [d["overdue"] for d in departments], "backgroundColor": "#dc2626"}]}),
    }
    context.update(registry={
        **overview,
        "statuses": [{"status": value, "label": label, "variant": variants[value],
                      "count": overview["status_counts"][value],
                      "href": f"{requests}?{urlencode({**cycle_query, 'status__exact': value})}"}
                     for value, label in R.choices],
        "department_table": {
            "headers": ["Office", "Held", "Pending", "Rejected", "Overdue", "SLA (days)", "Median days to decision"],
            "rows": [[f"{d['code']} — {d['name']}", d["held"], d["pending"], d["rejected"], d["overdue"],
                      d["sla_days"], medians.get(d["department"].pk, "—")] for d in departments],
        },
        "kpis": kpis,
        "charts": charts,
        "links": {
            "requests": requests,
            "held": f"{requests}?held=yes",
            "open_cohort": (reverse("registry:core_clearancerequest_open_for_cohort", current_app="registry")
                            if request.user.has_perm("core.add_clearancerequest") else None),
        },
    })
    return context


def staff_dashboard(request, context):
    """/staff/: my queue by office (pending, overdue), overdue total, oldest waiting, decided this week;
    for the gown store's clerks, gowns out, overdue returns and deposits held with the scan box."""
    from django.urls import reverse

    from core import permissions
    from core.selectors.gowns import gown_store_figures
    from core.selectors.staff import staff_dashboard_figures
    figures = staff_dashboard_figures(request.user)
    if permissions.may_run_gown_store(request.user):
        changelist = reverse("staff:core_gownissuance_changelist", current_app="staff")
        context.update(gown_store={
            "figures": gown_store_figures(),
            "scan_url": reverse("staff:core_gownissuance_scan", current_app="staff"),
            "view_urls": {view: f"{changelist}?view={view}" for view in ("out", "overdue", "held")},
        })
    context.update(queue=figures, kpis=[
        {"title": "Pending", "value": f"{figures['pending']:,}", "icon": "pending_actions"},
        {"title": "Overdue", "value": f"{figures['overdue']:,}", "icon": "alarm", "alert": figures["overdue"] > 0},
        {"title": "Oldest waiting", "icon": "hourglass_bottom",
         "value": f"{figures['oldest_days']} days" if figures["oldest"] is not None else "—"},
        {"title": "Decided this week", "value": f"{figures['decided_this_week']:,}", "icon": "task_alt"},
    ])
    return context
