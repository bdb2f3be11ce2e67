"""/api/ (mounted from clearance_admin/urls.py). One module per area; each area adds its paths or
its router's URLs to `urlpatterns` below, in its own block, so areas merge apart."""
from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from . import auth, students

app_name = "api"


class SchemaView(SpectacularAPIView):
    permission_classes = [AllowAny]
    authentication_classes = []


class DocsView(SpectacularSwaggerSplitView):
    permission_classes = [AllowAny]
    authentication_classes = []
    url_name = "api:schema"


urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(), name="docs"),
    # part 1: signing in (clearance_api/auth.py)
    path("auth/", include(auth.urlpatterns)),
    # part 2: a student's own clearance (clearance_api/students.py)
    *students.urlpatterns,
]

# part 4: the M-PESA Daraja callbacks (clearance_api/mpesa.py), under their secret
urlpatterns += [path("mpesa/", include("clearance_api.mpesa_urls"))]

# part 3: staff and systems (clearance_api/approvals.py, holds.py, balances.py, reports.py, gowns.py)
from . import approvals, balances, gowns, holds, reports  # noqa: E402  (each area's block stays its own)

urlpatterns += (approvals.urlpatterns + holds.urlpatterns + balances.urlpatterns + reports.urlpatterns
                + gowns.urlpatterns)

# --- staff and systems (parts 3 and 4): approvals.py, holds.py, imports.py, reports.py, gowns.py,
# mpesa.py each define `urlpatterns` (paths, or a router's .urls) and are added here, e.g.
#     from . import approvals
#     urlpatterns += approvals.urlpatterns
