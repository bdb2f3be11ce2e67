"""The M-PESA callbacks' URLs, included under /api/mpesa/ (clearance_api/mpesa.py)."""
from django.urls import path

from . import mpesa

app_name = "mpesa"
urlpatterns = [
    path("<str:secret>/c2b/validation/", mpesa.C2BValidationView.as_view(), name="c2b-validation"),
    path("<str:secret>/c2b/confirmation/", mpesa.C2BConfirmationView.as_view(), name="c2b-confirmation"),
]
