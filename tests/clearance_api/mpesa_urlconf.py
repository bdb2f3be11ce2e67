"""Until /api/ exists on this branch: the project's URLs plus the M-PESA callbacks where /api/ puts them."""
from django.urls import include, path

from clearance_admin.urls import urlpatterns as project

urlpatterns = [path("api/mpesa/", include("clearance_api.mpesa_urls")), *project]
