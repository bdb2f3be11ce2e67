"""Holds over the API (part 3), for office staff and finance officers as /staff/ and /finance/ work
them: the holds of the offices I review (core.permissions.holds_for), placing holds
(core/services/holds.py: holds_place, on the students the hold form lets me name), releasing and
waiving them, and an office system pushing its whole list through the office hold import
(core/services/hold_imports.py: preview, then apply by id; or both in one call).

A student's own holds are at /api/students/me/holds/ (clearance_api/students.py)."""
from __future__ import annotations

import django_filters as filters
from django.db.models import Q
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import permissions
from core.imports.balances import normalize_reg
from core.models import REASON_MAX_LENGTH, Hold, HoldImport
from core.selectors import staff as staff_selectors
from core.services import hold_imports as hold_import_services
from core.services import holds as hold_services

from .permissions import IsStaffOrFinance, own_or_404
from .schema import ErrorSerializer
from .serializers import BulkResultSerializer, StrictSerializer
from .uploads import MAX_ROWS, UploadSerializer, rows_file

H = Hold.Status
PLACE_MAX = 1000
MAX_AMOUNT = 10_000_000
NOT_YOURS = {404: OpenApiResponse(ErrorSerializer, description="No such hold among your offices' holds.")}


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


class StaffHoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    office = serializers.CharField(source="department.code")
    student = serializers.CharField(source="student.registration_number")
    student_name = serializers.CharField(source="student.full_name")
    reason = serializers.CharField()
    amount = serializers.SerializerMethodField(help_text="KES as a decimal string, or null.")
    source = serializers.ChoiceField(choices=Hold.Source.choices)
    status = serializers.ChoiceField(choices=H.choices)
    placed_at = serializers.DateTimeField()
    placed_by = serializers.SerializerMethodField()
    released_at = serializers.DateTimeField(allow_null=True)
    release_reason = serializers.CharField()

    def get_amount(self, hold) -> str | None:
        return _money(hold.amount)

    def get_placed_by(self, hold) -> str | None:
        return hold.placed_by.email if hold.placed_by_id else None


class HoldFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=H.choices)
    source = filters.ChoiceFilter(choices=Hold.Source.choices)
    office = filters.CharFilter(field_name="department__code", lookup_expr="iexact", max_length=20)
    student = filters.CharFilter(method="by_student", max_length=40, help_text="A registration number, any case.")
    search = filters.CharFilter(method="by_search", max_length=100,
                                help_text="Registration number, student name or reason.")

    class Meta:
        model = Hold
        fields: list[str] = []

    def by_student(self, queryset, name, value):
        return queryset.filter(student__registration_number=normalize_reg(value))

    def by_search(self, queryset, name, value):
        for word in value.split()[:5]:
            queryset = queryset.filter(Q(student__registration_number__icontains=word)
                                       | Q(student__first_name__icontains=word) | Q(student__last_name__icontains=word)
                                       | Q(reason__icontains=word))
        return queryset


class PlaceSerializer(StrictSerializer):
    office = serializers.CharField(max_length=20, help_text="The code of an office you review, e.g. LIB.")
    registration_numbers = serializers.ListField(
        child=serializers.CharField(max_length=40), allow_empty=False, max_length=PLACE_MAX,
        help_text=f"The students, at most {PLACE_MAX:,} (any case, spaces allowed).")
    reason = serializers.CharField(max_length=Hold._meta.get_field("reason").max_length,
                                   help_text="What is held (the student reads it).")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, max_value=MAX_AMOUNT,
                                      required=False, allow_null=True)


class PlaceResultSerializer(serializers.Serializer):
    result = BulkResultSerializer(help_text="`done`: the students' ids; refusals row by row.")
    holds = StaffHoldSerializer(many=True, help_text="The holds placed.")


class HoldListView(generics.ListCreateAPIView):
    """GET: the holds of the offices I review, newest first. POST: place a hold on students."""

    permission_classes = [IsStaffOrFinance]
    serializer_class = StaffHoldSerializer
    filterset_class = HoldFilter
    queryset = Hold.objects.none()

    def get_queryset(self):
        return permissions.holds_for(self.request.user).select_related("department", "student", "placed_by")

    @extend_schema(tags=["holds"], summary="Holds of my offices")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=["holds"], request=PlaceSerializer, responses={201: PlaceResultSerializer},
                   summary="Place a hold on students",
                   description="As the hold form: an office you review; registration numbers you may name (one "
                               "you may not is `not found`, as one nobody has; nothing is placed then). Refused "
                               "per student: already held by the office for the same reason.")
    def post(self, request, *args, **kwargs):
        data = PlaceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = request.user
        department = permissions.reviewable_departments(user).filter(code__iexact=v["office"].strip()).first()
        if department is None:
            raise serializers.ValidationError({"office": ["You do not review an office with this code."]})
        numbers = list(dict.fromkeys(n for n in (normalize_reg(x) for x in v["registration_numbers"]) if n))
        found = dict(staff_selectors.students_for_holds(user).filter(registration_number__in=numbers)
                     .values_list("registration_number", "pk"))
        unknown = [n for n in numbers if n not in found]
        if unknown or not numbers:
            raise serializers.ValidationError({"registration_numbers": [
                "Not found: " + ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20
                                                           else "") + "." if unknown else "Name at least one student."]})
        result = hold_services.holds_place(department=department, student_ids=[found[n] for n in numbers],
                                           reason=v["reason"], amount=v.get("amount"), acting_user=user)
        placed = (Hold.objects.filter(department=department, student_id__in=result.done, status=H.ACTIVE,
                                      reason=v["reason"].strip()).select_related("department", "student", "placed_by")
                  .order_by("pk"))
        return Response({"result": BulkResultSerializer(result).data,
                         "holds": StaffHoldSerializer(placed, many=True).data}, status=status.HTTP_201_CREATED)


class ReleaseSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True,
                                   max_length=Hold._meta.get_field("release_reason").max_length)


class WaiveSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=Hold._meta.get_field("release_reason").max_length,
                                   help_text="Why the office forgoes it.")


def end_view(verb: str, body, summary: str, description: str):
    class EndView(APIView):
        permission_classes = [IsStaffOrFinance]

        @extend_schema(tags=["holds"], request=body, responses={200: StaffHoldSerializer, **NOT_YOURS},
                       summary=summary, description=description, operation_id=f"holds_{verb}")
        def post(self, request, pk: int):
            hold = own_or_404(permissions.holds_for(request.user), pk, what="hold")
            data = body(data=request.data)
            data.is_valid(raise_exception=True)
            service = hold_services.hold_release if verb == "release" else hold_services.hold_waive
            service(hold=hold, acting_user=request.user, reason=data.validated_data.get("reason", ""))
            hold = Hold.objects.select_related("department", "student", "placed_by").get(pk=hold.pk)
            return Response(StaffHoldSerializer(hold).data)
    EndView.__name__ = EndView.__qualname__ = f"Hold{verb.title()}View"
    return EndView


ReleaseView = end_view("release", ReleaseSerializer, "Release a hold (the student settled it)",
                       "Refused (400): not active; a FIN hold that follows the imported balance (only a balance "
                       "import releases it).")
WaiveView = end_view("waive", WaiveSerializer, "Waive a hold (reason required)",
                     "Refused (400): not active; a hold that follows the imported balance.")


# --- an office system pushes its list ------------------------------------------------------------

class HoldRowSerializer(StrictSerializer):
    registration_number = serializers.CharField(max_length=60)
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True,
                                      min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT)


class HoldImportSerializer(UploadSerializer, StrictSerializer):
    office = serializers.CharField(max_length=20, help_text="The office whose list this is (you review it for every "
                                                            "student).")
    rows = HoldRowSerializer(many=True, required=False, allow_empty=False, max_length=MAX_ROWS,
                             help_text="The list as JSON rows (instead of `file`).")
    full_list = serializers.BooleanField(default=False, help_text="The whole list: the office's import holds of "
                                                                  "students not in it are released.")
    apply = serializers.BooleanField(default=False, help_text="Apply at once after the preview (refused, previewed "
                                                              "only, when there are row errors and not skip_errors).")
    skip_errors = serializers.BooleanField(default=False)


class HoldImportApplySerializer(StrictSerializer):
    skip_errors = serializers.BooleanField(default=False, help_text="Apply although some rows had errors (they are "
                                                                    "skipped).")


class HoldImportResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    office = serializers.CharField(source="department.code")
    status = serializers.ChoiceField(choices=HoldImport.Status.choices)
    full_list = serializers.BooleanField()
    rows_total = serializers.IntegerField()
    placed = serializers.IntegerField(source="placed_count")
    updated = serializers.IntegerField(source="updated_count")
    unchanged = serializers.IntegerField(source="unchanged_count")
    released = serializers.IntegerField(source="released_count")
    not_found = serializers.IntegerField(source="not_found_count")
    skipped = serializers.IntegerField(source="skipped_count")
    error_count = serializers.IntegerField()
    errors = serializers.JSONField(help_text="Rows with errors: row, column, reason.")
    warnings = serializers.ListField(child=serializers.CharField())
    applied_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField()


class HoldImportView(APIView):
    permission_classes = [IsStaffOrFinance]

    @extend_schema(tags=["holds"], request={"application/json": HoldImportSerializer,
                                            "multipart/form-data": HoldImportSerializer},
                   responses={201: HoldImportResultSerializer}, summary="Push an office's list of holds",
                   description="The office hold import: previewed (nothing changes but the import's record), then "
                               "applied by id (POST …/{id}/apply/), or both at once with `apply`. Refused: not an "
                               "office you review for every student; an unreadable file (400, naming why).")
    def post(self, request):
        data = HoldImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        department = permissions.reviewable_departments(request.user).filter(code__iexact=v["office"].strip()).first()
        if department is None or not permissions.may_import_holds(request.user, department):
            raise serializers.ValidationError({"office": ["You may not import holds into an office with this code: "
                                                          "only into one you review for every student."]})
        upload = v.get("file") or rows_file(v["rows"], ["registration_number", "reason", "amount"],
                                            name=f"{department.code.lower()}-holds-api.csv", text_columns={"reason"})
        hi = hold_import_services.hold_import_preview(file=upload, department=department, acting_user=request.user,
                                                      full_list=v["full_list"])
        if v["apply"]:
            hi = hold_import_services.hold_import_apply(hold_import=hi, acting_user=request.user,
                                                        skip_errors=v["skip_errors"])
        hi = HoldImport.objects.select_related("department").get(pk=hi.pk)
        return Response(HoldImportResultSerializer(hi).data, status=status.HTTP_201_CREATED)


def _my_import(request, pk):
    return own_or_404(permissions.hold_imports_for(request.user).select_related("department"), pk, what="hold import")


class HoldImportDetailView(APIView):
    permission_classes = [IsStaffOrFinance]

    @extend_schema(tags=["holds"], responses={200: HoldImportResultSerializer, 404: NOT_YOURS[404]},
                   summary="A hold import: its status and figures")
    def get(self, request, pk: int):
        return Response(HoldImportResultSerializer(_my_import(request, pk)).data)


class HoldImportApplyView(APIView):
    permission_classes = [IsStaffOrFinance]

    @extend_schema(tags=["holds"], request=HoldImportApplySerializer, responses={200: HoldImportResultSerializer,
                                                                       404: NOT_YOURS[404]},
                   summary="Apply a previewed hold import",
                   description="Refused (400): not previewed (applied, failed, cancelled); row errors and not "
                               "`skip_errors`; the office's holds changed since the preview (the import is marked "
                               "failed: preview the list again); another import of the office being applied.")
    def post(self, request, pk: int):
        hi = _my_import(request, pk)
        data = HoldImportApplySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hold_import_services.hold_import_apply(hold_import=hi, acting_user=request.user,
                                               skip_errors=data.validated_data["skip_errors"])
        return Response(HoldImportResultSerializer(_my_import(request, pk)).data)


urlpatterns = [
    path("holds/", HoldListView.as_view(), name="holds"),
    path("holds/import/", HoldImportView.as_view(), name="holds_import"),
    path("holds/import/<int:pk>/", HoldImportDetailView.as_view(), name="holds_import_detail"),
    path("holds/import/<int:pk>/apply/", HoldImportApplyView.as_view(), name="holds_import_apply"),
    path("holds/<int:pk>/release/", ReleaseView.as_view(), name="hold_release"),
    path("holds/<int:pk>/waive/", WaiveView.as_view(), name="hold_waive"),
]
