"""The gown store over the API (part 3), as the clerks work it on /staff/ (clearance_admin/staff/
gowns.py): the list (out, overdue, deposits held, returned), issue by registration number, take
back, refund the deposit — each through core/services/gowns.py, for the gown office's staff only
(core.permissions.may_run_gown_store)."""
from __future__ import annotations

import django_filters as filters
from django.db.models import Q
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core import permissions
from core.imports.balances import normalize_reg
from core.models import NOTES_MAX_LENGTH, REASON_MAX_LENGTH, GownIssuance, Student
from core.selectors import gowns as gown_selectors
from core.services import gowns as gown_services

from .permissions import own_or_404
from .schema import ErrorSerializer
from .serializers import StrictSerializer

D = GownIssuance.DepositStatus
NOT_FOUND = {404: OpenApiResponse(ErrorSerializer, description="No such gown issue.")}


class RunsGownStore(BasePermission):
    message = "The gown store is run by the gown office's staff."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and permissions.may_run_gown_store(request.user))


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


class GownSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    gown_code = serializers.CharField()
    size = serializers.ChoiceField(choices=GownIssuance.Size.choices)
    student = serializers.CharField(source="student.registration_number")
    student_name = serializers.CharField(source="student.full_name")
    issued_at = serializers.DateTimeField()
    expected_return_on = serializers.DateField()
    returned_at = serializers.DateTimeField(allow_null=True)
    is_overdue = serializers.BooleanField()
    deposit = serializers.SerializerMethodField()
    deposit_status = serializers.ChoiceField(choices=D.choices)
    refunded_amount = serializers.SerializerMethodField()
    damage_notes = serializers.CharField()
    retained_reason = serializers.CharField()

    def get_deposit(self, g) -> str:
        return _money(g.deposit)

    def get_refunded_amount(self, g) -> str:
        return _money(g.refunded_amount)


class GownFilter(filters.FilterSet):
    view = filters.ChoiceFilter(method="by_view", choices=[("out", "out"), ("overdue", "overdue"),
                                                           ("held", "deposits held"), ("returned", "returned")])
    deposit_status = filters.ChoiceFilter(choices=D.choices)
    size = filters.ChoiceFilter(choices=GownIssuance.Size.choices)
    search = filters.CharFilter(method="by_search", max_length=100,
                                help_text="Gown code, registration number or student name.")

    class Meta:
        model = GownIssuance
        fields: list[str] = []

    def by_view(self, queryset, name, value):
        return {"out": gown_selectors.gowns_out, "overdue": gown_selectors.gowns_overdue,
                "held": gown_selectors.deposits_held}.get(value, lambda q: q.filter(returned_at__isnull=False))(queryset)

    def by_search(self, queryset, name, value):
        for word in value.split()[:5]:
            queryset = queryset.filter(Q(gown_code__icontains=word) | Q(student__registration_number__icontains=word)
                                       | Q(student__first_name__icontains=word) | Q(student__last_name__icontains=word))
        return queryset


class IssueSerializer(StrictSerializer):
    registration_number = serializers.CharField(max_length=40)
    gown_code = serializers.CharField(max_length=20)
    size = serializers.ChoiceField(choices=GownIssuance.Size.choices)
    expected_return_on = serializers.DateField(required=False, help_text="Default: GOWN_RETURN_DAYS from today.")
    deposit = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, max_value=1_000_000,
                                       required=False, help_text="KES; default the store's deposit.")


class GownListView(generics.ListCreateAPIView):
    """GET: the gowns, newest issue first (`?view=out|overdue|held|returned`). POST: issue a gown."""

    permission_classes = [RunsGownStore]
    serializer_class = GownSerializer
    filterset_class = GownFilter
    queryset = GownIssuance.objects.none()

    def get_queryset(self):
        return GownIssuance.objects.select_related("student")

    @extend_schema(tags=["gowns"], summary="The gown store's list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=["gowns"], request=IssueSerializer, responses={201: GownSerializer},
                   summary="Issue a gown",
                   description="Refused (400): the student's clearance is not completed (GOWN_REQUIRES_COMPLETED); "
                               "the student has a gown out; the gown is out with someone else; a return date in "
                               "the past; no student with that registration number.")
    def post(self, request, *args, **kwargs):
        data = IssueSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        student = Student.objects.filter(registration_number=normalize_reg(v["registration_number"])).first()
        if student is None:
            raise exceptions.ValidationError({"registration_number": ["No student has this registration number."]})
        gown = gown_services.gown_issue(student=student, gown_code=v["gown_code"], size=v["size"],
                                        acting_user=request.user, expected_return_on=v.get("expected_return_on"),
                                        deposit=v.get("deposit"))
        return Response(GownSerializer(gown).data, status=status.HTTP_201_CREATED)


class ReturnSerializer(StrictSerializer):
    damage_notes = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_LENGTH)


class RefundSerializer(StrictSerializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, max_value=1_000_000,
                                      required=False, allow_null=True, help_text="KES; default the whole deposit.")
    retained_reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH,
                                            help_text="Why part of the deposit is kept (required then).")


class GownReturnView(APIView):
    permission_classes = [RunsGownStore]

    @extend_schema(tags=["gowns"], request=ReturnSerializer, responses={200: GownSerializer, **NOT_FOUND},
                   summary="Take a gown back", description="Refused (400): already returned.")
    def post(self, request, pk: int):
        gown = own_or_404(GownIssuance.objects.all(), pk, what="gown issue")
        data = ReturnSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gown = gown_services.gown_return(gown=gown, acting_user=request.user,
                                         damage_notes=data.validated_data.get("damage_notes", ""))
        return Response(GownSerializer(GownIssuance.objects.select_related("student").get(pk=gown.pk)).data)


class GownRefundView(APIView):
    permission_classes = [RunsGownStore]

    @extend_schema(tags=["gowns"], request=RefundSerializer, responses={200: GownSerializer, **NOT_FOUND},
                   summary="Refund a gown's deposit",
                   description="Refused (400): not returned yet; already settled; damaged without an amount; an "
                               "amount above the deposit; a part refund without a reason or of an undamaged gown.")
    def post(self, request, pk: int):
        gown = own_or_404(GownIssuance.objects.all(), pk, what="gown issue")
        data = RefundSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        gown_services.gown_deposit_refund(gown=gown, acting_user=request.user, amount=v.get("amount"),
                                          retained_reason=v.get("retained_reason", ""))
        return Response(GownSerializer(GownIssuance.objects.select_related("student").get(pk=gown.pk)).data)


urlpatterns = [
    path("gowns/", GownListView.as_view(), name="gowns"),
    path("gowns/<int:pk>/return/", GownReturnView.as_view(), name="gown_return"),
    path("gowns/<int:pk>/refund/", GownRefundView.as_view(), name="gown_refund"),
]
