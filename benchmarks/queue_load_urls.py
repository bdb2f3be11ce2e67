"""The project's URLs and, at /baseline-admin/, an admin site with a default `admin.ModelAdmin`
for ClearanceApproval: no list_display, filters, select_related or paginator of this project's —
what `site.register(ClearanceApproval)` gives. The site is unfold's AdminSite with nothing set,
because unfold's templates (first in INSTALLED_APPS) are the ones every admin page of this
project renders with, and they need its site. It lets in any active user holding the model's
view permission (the clerks do) and shows every office's items."""
from django.contrib import admin
from django.urls import path
from unfold.sites import UnfoldAdminSite

from clearance_admin.urls import handler403, handler404, urlpatterns as project_urlpatterns  # noqa: F401
from core.models import ClearanceApproval


class BaselineSite(UnfoldAdminSite):
    site_header = "Baseline: Django's default admin"

    def has_permission(self, request):
        return request.user.is_active and request.user.has_perm("core.view_clearanceapproval")


baseline_site = BaselineSite(name="baseline")
baseline_site.register(ClearanceApproval, admin.ModelAdmin)

urlpatterns = [path("baseline-admin/", baseline_site.urls), *project_urlpatterns]
