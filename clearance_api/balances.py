"""The finance system pushes fee balances (part 3): the same engine as /finance/ → Balance imports
(core/services/balances.py). `POST /api/balances/import/` previews a file or JSON rows (a large one
in the background, as the site does: `status` uploaded, `progress` rising; poll
`GET /api/balances/import/{id}/`); `POST …/{id}/apply/` applies the preview by id with the same
integrity rules: one apply at a time (the serialising lock; a second waits its turn, then is
refused, still previewed), a plan gone stale refused, row errors only with `skip_errors`; a large
import is applied by the task queue (`status` queued, then applying, applied)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import BalanceImport
from core.services import balances as balance_services

from .permissions import IsFinance, own_or_404
from .schema import ErrorSerializer
from .serializers import StrictSerializer
from .uploads import MAX_ROWS, UploadSerializer, rows_file

B = BalanceImport.Status
MAX_BALANCE = 100_000_000
NOT_FOUND = {404: OpenApiResponse(ErrorSerializer, description="No balance import with this id.")}


class BalanceRowSerializer(StrictSerializer):
    registration_number = serializers.CharField(max_length=60)
    tuition_balance = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=-MAX_BALANCE,
                                               max_value=MAX_BALANCE, help_text="KES; negative for a credit.")
    graduation_fee_paid = serializers.BooleanField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=500)


class BalanceImportSerializer(UploadSerializer, StrictSerializer):
    rows = BalanceRowSerializer(many=True, required=False, allow_empty=False, max_length=MAX_ROWS,
                                help_text="The balances as JSON rows (instead of `file`).")


class BalanceImportApplySerializer(StrictSerializer):
    skip_errors = serializers.BooleanField(default=False, help_text="Apply although some rows had errors (they are "
                                                                    "skipped).")


class BalanceImportResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=B.choices, help_text="uploaded (being previewed in the background), "
                                                                  "previewed, queued, applying, applied, failed, "
                                                                  "cancelled.")
    progress = serializers.IntegerField(help_text="Percent, while it runs in the background.")
    file_name = serializers.CharField(source="original_name")
    rows_total = serializers.IntegerField()
    changed = serializers.IntegerField(source="updated_count", help_text="Balances that change.")
    unchanged = serializers.IntegerField(source="unchanged_count")
    not_found = serializers.IntegerField(source="not_found_count")
    error_count = serializers.IntegerField()
    errors = serializers.JSONField(help_text="Rows with errors: row, column, reason.")
    warnings = serializers.ListField(child=serializers.CharField())
    applied_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField()


def _graduation(value) -> str:
    return "" if value is None else ("Yes" if value else "No")


class BalanceImportView(APIView):
    permission_classes = [IsFinance]

    @extend_schema(tags=["balances"], request={"application/json": BalanceImportSerializer,
                                               "multipart/form-data": BalanceImportSerializer},
                   responses={201: BalanceImportResultSerializer,
                              202: OpenApiResponse(BalanceImportResultSerializer,
                                                   description="Large: being previewed in the background.")},
                   summary="Preview fee balances (a file or JSON rows)",
                   description="Nothing changes but the import's record. Refused (400): an unreadable file "
                               "(empty, too big, not a spreadsheet, no header row), naming why.")
    def post(self, request):
        data = BalanceImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upload = v.get("file")
        if upload is None:
            rows = [dict(r, graduation_fee_paid=_graduation(r.get("graduation_fee_paid"))) for r in v["rows"]]
            upload = rows_file(rows, ["registration_number", "tuition_balance", "graduation_fee_paid", "notes"],
                               name="balances-api.csv", text_columns={"notes"})
        bi = balance_services.balances_import_submit(file=upload, acting_user=request.user)
        code = status.HTTP_202_ACCEPTED if bi.status == B.UPLOADED else status.HTTP_201_CREATED
        return Response(BalanceImportResultSerializer(bi).data, status=code)


class BalanceImportDetailView(APIView):
    permission_classes = [IsFinance]

    @extend_schema(tags=["balances"], responses={200: BalanceImportResultSerializer, **NOT_FOUND},
                   summary="A balance import: its status, progress and figures")
    def get(self, request, pk: int):
        return Response(BalanceImportResultSerializer(own_or_404(BalanceImport.objects.all(), pk,
                                                                 what="balance import")).data)


class BalanceImportApplyView(APIView):
    permission_classes = [IsFinance]

    @extend_schema(tags=["balances"], request=BalanceImportApplySerializer,
                   responses={200: BalanceImportResultSerializer,
                              202: OpenApiResponse(BalanceImportResultSerializer,
                                                   description="Large: queued; poll the import for its status."),
                              **NOT_FOUND},
                   summary="Apply a previewed balance import",
                   description="Refused (400, nothing written): already applied or being applied; not previewed; "
                               "row errors and not `skip_errors`; the records changed since the preview (preview "
                               "again); another import being applied for longer than the wait.")
    def post(self, request, pk: int):
        bi = own_or_404(BalanceImport.objects.all(), pk, what="balance import")
        data = BalanceImportApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        skip = data.validated_data["skip_errors"]
        if bi.rows_total > balance_services.ASYNC_ROWS:      # as the site: large ones through the task queue
            bi = balance_services.balances_import_apply_async(balance_import=bi, acting_user=request.user,
                                                              skip_errors=skip)
            bi.refresh_from_db()
            return Response(BalanceImportResultSerializer(bi).data, status=status.HTTP_202_ACCEPTED)
        balance_services.balances_import_apply(balance_import=bi, acting_user=request.user, skip_errors=skip)
        bi.refresh_from_db()
        return Response(BalanceImportResultSerializer(bi).data)


urlpatterns = [
    path("balances/import/", BalanceImportView.as_view(), name="balances_import"),
    path("balances/import/<int:pk>/", BalanceImportDetailView.as_view(), name="balances_import_detail"),
    path("balances/import/<int:pk>/apply/", BalanceImportApplyView.as_view(), name="balances_import_apply"),
]
