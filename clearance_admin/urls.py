from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from core.views import health, verify_certificate

from . import accounts, finance, hold_imports, mpesa_confirmations, reconcile, registry, staff, student, student_imports, superuser  # noqa: F401  (register each site's admins)
from .observability import metrics_view
from .startup import has_secret_key
from .sites import finance_site, registry_site, staff_site, student_site, superuser_site

urlpatterns = [
    path("health/", health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/", include(accounts.urlpatterns)),      # first logins and forgotten passwords
    path("verify/<str:code>/", verify_certificate, name="verify_certificate"),
    path("staff/", staff_site.urls),
    path("finance/", finance_site.urls),
    path("registry/", registry_site.urls),
    path("student/", student_site.urls),
    path("admin/", superuser_site.urls),
    path("favicon.ico", RedirectView.as_view(url=static("core/favicon.ico"), permanent=True)),
    path("", RedirectView.as_view(url="/student/", permanent=False)),
]
if has_secret_key():
    # the REST API (clearance_api/, README "The API"). simplejwt reads SECRET_KEY when imported;
    # without one nothing serves (clearance_admin/startup.py), and the commands that serve nobody
    # (makemigrations, migrate, check) still load these URLs and run.
    urlpatterns.insert(-2, path("api/", include("clearance_api.urls")))

# No route serves MEDIA_ROOT, in any mode: stored files reach people only through each site's
# access-checked download view (clearance_admin/downloads.py, `<site>/files/<kind>/<id>/`).

# a refusal or a missing page inside a role site is shown in that site (clearance_admin/errors.py)
handler403 = "clearance_admin.errors.permission_denied"
handler404 = "clearance_admin.errors.page_not_found"
handler500 = "clearance_admin.errors.server_error"      # JSON under /api/
