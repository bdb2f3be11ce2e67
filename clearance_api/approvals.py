"""The staff queue over the API (part 3): `GET /api/approvals/` is the /staff/ queue (the same scope,
core.permissions.approvals_for through core/selectors/staff.py, and its filters), and the decisions
call the same services as the queue's forms and bulk actions (core/services/approvals.py).

Every decision carries what the client saw: `seen`, the item's `state` from the GET. A decision on
an item that changed since is refused with who changed it and when (the services' integrity rule),
so a system deciding from a list it fetched a while ago never overrides a clerk. Another office's
item is a 404 (for one) or counted, never named (in bulk), as on the site.
"""
from __future__ import annotations

import datetime

import django_filters as filters
from django.db.models import Q
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import permissions
from core.models import NOTES_MAX_LENGTH, REASON_MAX_LENGTH, ClearanceApproval
from core.selectors import staff as staff_selectors
from core.services import approvals as approval_services

from .pagination import Cursor
from .permissions import IsStaffOrFinance, own_or_404
from .schema import ErrorSerializer
from .serializers import BulkResultSerializer, StrictSerializer

A = ClearanceApproval.Status
BULK_MAX = 1000
MAX_ID = 2**63 - 1
SEEN_HELP = ("The item's `state` as you read it (GET /api/approvals/). If the item changed since, the decision is "
             "refused naming who changed it and when: read it again and decide on what it is now.")
NOT_YOURS = {404: OpenApiResponse(ErrorSerializer, description="No such item in the offices you review.")}


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


# --- reading the queue ----------------------------------------------------------------------------

class OfficeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    stage = serializers.IntegerField()


class QueueStudentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    registration_number = serializers.CharField()
    name = serializers.CharField(source="full_name")
    school = serializers.CharField(source="school.code")
    programme = serializers.CharField(source="programme.code")
    cohort = serializers.IntegerField(source="expected_graduation_year")


class QueueHoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()
    amount = serializers.SerializerMethodField(help_text="KES as a decimal string, or null.")

    def get_amount(self, hold) -> str | None:
        return _money(hold.amount)


class ApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField(source="state_token", help_text="Send it back as `seen` with a decision.")
    status = serializers.ChoiceField(choices=A.choices)
    office = OfficeSerializer(source="department")
    student = QueueStudentSerializer(source="request.student")
    request = serializers.IntegerField(source="request_id")
    reason = serializers.CharField()
    notes = serializers.CharField()
    student_response = serializers.CharField()
    waiting_since = serializers.DateTimeField()
    days_waiting = serializers.IntegerField()
    is_overdue = serializers.BooleanField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.SerializerMethodField(help_text="Who decided (an e-mail), a balance import, or null.")
    holds = serializers.SerializerMethodField(help_text="This office's active holds on the student: while one is "
                                                        "there the item cannot be approved.")
    updated_at = serializers.DateTimeField()

    def get_decided_by(self, a) -> str | None:
        if a.decided_by_id:
            return a.decided_by.email
        return f"balance import #{a.decided_by_import_id}" if a.decided_by_import_id else None

    @extend_schema_field(QueueHoldSerializer(many=True))
    def get_holds(self, a):
        held = getattr(a.request.student, "active_holds", None)
        if held is None:        # not prefetched (one item): read them
            held = a.request.student.holds.filter(status="active").order_by("pk")
        return QueueHoldSerializer([h for h in held if h.department_id == a.department_id], many=True).data


class ApprovalFilter(filters.FilterSet):
    """The queue's filters, as on /staff/ (status, office, stage, school, programme, cohort, SLA,
    search), plus how long an item has waited."""

    status = filters.ChoiceFilter(choices=A.choices)
    office = filters.CharFilter(method="by_office", max_length=20, help_text="An office's code, e.g. LIB.")
    stage = filters.NumberFilter(field_name="department__stage", min_value=1, max_value=99)
    school = filters.CharFilter(field_name="request__student__school__code", lookup_expr="iexact", max_length=20,
                                help_text="A school's code, e.g. SCE.")
    programme = filters.CharFilter(field_name="request__student__programme__code", lookup_expr="iexact",
                                   max_length=20, help_text="A programme's code.")
    cohort = filters.NumberFilter(field_name="request__student__expected_graduation_year", min_value=1900,
                                  max_value=2200, help_text="Expected graduation year, e.g. 2026.")
    overdue = filters.ChoiceFilter(method="by_overdue", choices=[("true", "true"), ("false", "false")],
                                   help_text="true: pending past the office's SLA; false: the rest.")
    waiting_days = filters.NumberFilter(method="by_waiting", min_value=0, max_value=3650,
                                        help_text="Pending for at least this many days.")
    search = filters.CharFilter(method="by_search", max_length=100,
                                help_text="Registration number or student name (every word must match).")

    class Meta:
        model = ClearanceApproval
        fields: list[str] = []

    def by_office(self, queryset, name, value):
        return queryset.filter(department__code__iexact=value.strip())

    def by_overdue(self, queryset, name, value):
        if value == "true":
            return staff_selectors.approvals_overdue(queryset)
        return staff_selectors.approvals_not_overdue(queryset)

    def by_waiting(self, queryset, name, value):
        return queryset.filter(status=A.PENDING,
                               waiting_since__lte=timezone.now() - datetime.timedelta(days=int(value)))

    def by_search(self, queryset, name, value):
        for word in value.split()[:5]:
            queryset = queryset.filter(Q(request__student__registration_number__icontains=word)
                                       | Q(request__student__first_name__icontains=word)
                                       | Q(request__student__last_name__icontains=word))
        return queryset


class QueueCursor(Cursor):
    ordering = ("waiting_since", "pk")        # the queue's order: oldest waiting first


class ApprovalListView(generics.ListAPIView):
    """The items of the offices I review (or was delegated), oldest waiting first."""

    permission_classes = [IsStaffOrFinance]
    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter
    queryset = ClearanceApproval.objects.none()     # for the schema; the rows come from get_queryset

    pagination_class = QueueCursor

    def get_queryset(self):
        return (staff_selectors.staff_queue(self.request.user)
                .select_related("request__student__school", "decided_by"))

    @extend_schema(tags=["approvals"], summary="The clearance queue of my offices")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- deciding one ---------------------------------------------------------------------------------

class SeenSerializer(StrictSerializer):
    seen = serializers.CharField(max_length=64, help_text=SEEN_HELP)


class ApproveSerializer(SeenSerializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_LENGTH)


class ReasonSerializer(SeenSerializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="The student reads it.")
    notes = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_LENGTH)


class ReopenSerializer(SeenSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_LENGTH)


def _decide(decision: str, approval, user, data):
    seen = data["seen"]
    if decision == "approve":
        return approval_services.approval_approve(approval=approval, acting_user=user, notes=data.get("notes", ""),
                                                  seen=seen)
    if decision == "reject":
        return approval_services.approval_reject(approval=approval, acting_user=user, reason=data["reason"],
                                                 notes=data.get("notes", ""), seen=seen)
    if decision == "waive":
        return approval_services.approval_waive(approval=approval, acting_user=user, reason=data["reason"],
                                                notes=data.get("notes", ""), seen=seen)
    return approval_services.approval_reopen(approval=approval, acting_user=user, note=data.get("note", ""), seen=seen)


def _queue_item(user, pk):
    return (staff_selectors.staff_queue(user).select_related("request__student__school", "decided_by")
            .filter(pk=pk).first())


def decision_view(decision: str, body: type[StrictSerializer], summary: str, description: str):
    class DecisionView(APIView):
        permission_classes = [IsStaffOrFinance]

        @extend_schema(tags=["approvals"], request=body, responses={200: ApprovalSerializer, **NOT_YOURS},
                       summary=summary, description=description, operation_id=f"approvals_{decision}")
        def post(self, request, pk: int):
            approval = own_or_404(permissions.approvals_for(request.user), pk, what="clearance item")
            data = body(data=request.data)
            data.is_valid(raise_exception=True)
            _decide(decision, approval, request.user, data.validated_data)
            return Response(ApprovalSerializer(_queue_item(request.user, approval.pk)).data)
    DecisionView.__name__ = DecisionView.__qualname__ = f"{decision.title()}View"
    return DecisionView


ApproveView = decision_view("approve", ApproveSerializer, "Approve an item",
                            "Refused (400, the reason in `detail`): changed since you read it; an earlier stage open; "
                            "an active hold of your office; already approved or waived; rejected (re-open it first).")
RejectView = decision_view("reject", ReasonSerializer, "Reject an item (reason required)",
                           "Refused: changed since you read it; already rejected with this reason; waived; a finance "
                           "item while finance follows the holds (place a FIN hold instead).")
WaiveView = decision_view("waive", ReasonSerializer, "Waive an item (reason required)",
                          "Refused: changed since you read it; already approved or waived.")
ReopenView = decision_view("reopen", ReopenSerializer, "Re-open a rejected item",
                           "Refused: changed since you read it; not rejected; a finance item while finance follows "
                           "the holds.")


# --- deciding many --------------------------------------------------------------------------------

class BulkItemSerializer(StrictSerializer):
    id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    seen = serializers.CharField(max_length=64, help_text=SEEN_HELP)


class BulkSerializer(StrictSerializer):
    decision = serializers.ChoiceField(choices=["approve", "reject", "waive", "reopen"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_LENGTH,
                                   help_text="Required to reject or waive; the students read it.")
    notes = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_LENGTH)
    items = BulkItemSerializer(many=True, allow_empty=False, max_length=BULK_MAX,
                               help_text=f"At most {BULK_MAX:,}: each id with the `state` you read.")

    def validate(self, attrs):
        if attrs["decision"] in ("reject", "waive") and not (attrs.get("reason") or "").strip():
            raise serializers.ValidationError({"reason": [f"Write the reason to {attrs['decision']}; the students "
                                                          "read it."]})
        return attrs


class BulkView(APIView):
    """One decision for many items, row by row as the queue's bulk actions: what was done, what was
    refused and why (stale ones naming who changed them and when), and how many were not yours."""

    permission_classes = [IsStaffOrFinance]

    @extend_schema(tags=["approvals"], request=BulkSerializer, responses={200: BulkResultSerializer},
                   summary="Decide many items at once")
    def post(self, request):
        data = BulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        seen = {item["id"]: item["seen"] for item in v["items"]}
        ids, user = list(seen), request.user
        decision, reason, notes = v["decision"], (v.get("reason") or "").strip(), v.get("notes", "")
        if decision == "approve":
            result = approval_services.approvals_approve(approval_ids=ids, acting_user=user, notes=notes, seen=seen)
        elif decision == "reject":
            result = approval_services.approvals_reject(approval_ids=ids, acting_user=user, reason=reason,
                                                        notes=notes, seen=seen)
        elif decision == "waive":
            result = approval_services.approvals_waive(approval_ids=ids, acting_user=user, reason=reason,
                                                       notes=notes, seen=seen)
        else:
            result = approval_services.approvals_reopen(approval_ids=ids, acting_user=user, note=notes, seen=seen)
        return Response(BulkResultSerializer(result).data)


urlpatterns = [
    path("approvals/", ApprovalListView.as_view(), name="approvals"),
    path("approvals/bulk/", BulkView.as_view(), name="approvals_bulk"),
    path("approvals/<int:pk>/approve/", ApproveView.as_view(), name="approval_approve"),
    path("approvals/<int:pk>/reject/", RejectView.as_view(), name="approval_reject"),
    path("approvals/<int:pk>/waive/", WaiveView.as_view(), name="approval_waive"),
    path("approvals/<int:pk>/reopen/", ReopenView.as_view(), name="approval_reopen"),
]
