"""Dashboard callbacks, one per site (settings UNFOLD_* → DASHBOARD_CALLBACK). Each adds the figures
its site's index template shows; the figures come from core.selectors."""
from __future__ import annotations


def admin_dashboard(request, context):
    from core.models import BalanceImport, ClearanceRequest, Student
    context.update(kpis=[
        {"title": "Students", "value": f"{Student.objects.count():,}"},
        {"title": "Open requests", "value": f"{ClearanceRequest.objects.exclude(status__in=['completed', 'revoked']).count():,}"},
        {"title": "Imports", "value": f"{BalanceImport.objects.count():,}"},
    ])
    return context
