"""A student's own clearance (part 2), as /student/ shows it: the same selectors
(core/selectors/student.py), the same services (request_submit, approval_resubmit,
notification_mark_read), the same download rule for certificates.

Everything answers from the signed-in account: the Student record linked to it, that student's
requests and holds, the notifications addressed to it. An id that belongs to someone else is a 404
— the same answer as an id of nothing — and nothing changes. Notifications are everyone's (staff
get them too); the rest needs the Student role.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from clearance_admin.downloads import protect
from core import files
from core.certificates_pdf import certificate_filename, certificate_pdf
from core.models import (REASON_MAX_LENGTH, Certificate, ClearanceApproval, ClearanceCycle, ClearanceRequest, Hold,
                         Notification)
from core.permissions import REGISTRY, STUDENT, may_download_certificate
from core.selectors.clearance import certificate_for_document
from core.selectors.student import (cycles_open_for_submission, notifications_of, student_certificates, student_holds,
                                    student_of, student_progress, unread_notification_count)
from core.services.approvals import approval_resubmit
from core.services.notifications import notification_mark_read, notifications_mark_all_read
from core.services.requests import request_submit

from .permissions import IsStudent, own_or_404
from .schema import ErrorSerializer
from .serializers import StrictSerializer

NO_STUDENT_RECORD = ("Your login is not linked to a student record yet, so there is no clearance to show. "
                     "Ask the registry to link {email} to your registration number.")


def my_student(request):
    """The Student record of the signed-in account, or 404 saying why."""
    student = student_of(request.user)
    if student is None:
        raise exceptions.NotFound(NO_STUDENT_RECORD.format(email=request.user.email))
    return student


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


# --- serializers (read: plain data the selectors return) ------------------------------------------

class CycleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    opens_on = serializers.DateField()
    closes_on = serializers.DateField()


class StudentSerializer(serializers.Serializer):
    registration_number = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)
    school = serializers.CharField(source="school.name")
    programme = serializers.CharField(source="programme.name")
    expected_graduation_year = serializers.IntegerField(help_text="The cohort.")
    is_resident = serializers.BooleanField()
    open_cycles = CycleSerializer(many=True, help_text="Cycles open now in which you may submit a request.")


class HoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    office = serializers.CharField(source="department.code")
    office_name = serializers.CharField(source="department.name")
    reason = serializers.CharField()
    amount = serializers.SerializerMethodField(help_text="KES, as a decimal string; null when no amount.")
    status = serializers.ChoiceField(choices=Hold.Status.choices)
    placed_at = serializers.DateTimeField()
    released_at = serializers.DateTimeField(allow_null=True)

    def get_amount(self, hold) -> str | None:
        return _money(hold.amount)


class ItemSerializer(serializers.Serializer):
    """One office's item of a request, as the student reads it."""

    id = serializers.IntegerField(source="approval.pk", help_text="The id to re-submit with.")
    office = serializers.CharField(source="department.code")
    office_name = serializers.CharField(source="department.name")
    stage = serializers.IntegerField(source="department.stage")
    status = serializers.ChoiceField(choices=ClearanceApproval.Status.choices)
    reason = serializers.CharField(source="approval.reason", help_text="The office's reason (reject, waive).")
    decided_at = serializers.DateTimeField(source="approval.decided_at", allow_null=True)
    your_response = serializers.CharField(source="approval.student_response")
    holds = HoldSerializer(many=True)
    amount = serializers.SerializerMethodField(help_text="What the office's active holds add up to (KES), or null.")
    days_waiting = serializers.IntegerField(allow_null=True, help_text="Days the item has waited; null unless it waits for the office and its stage is open.")
    is_overdue = serializers.BooleanField()
    waits_for = serializers.ListField(source="earlier_open", child=serializers.CharField(),
                                      help_text="Offices of earlier stages that must clear you first.")
    can_resubmit = serializers.BooleanField()
    next_step = serializers.CharField(help_text="What to do next about this item.")

    def get_amount(self, item) -> str | None:
        return _money(item.hold_amount)


class ClearanceSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="request.pk")
    cycle = CycleSerializer(source="request.cycle")
    status = serializers.ChoiceField(source="request.status", choices=ClearanceRequest.Status.choices)
    reason = serializers.ChoiceField(source="request.reason", choices=ClearanceRequest.Reason.choices)
    submitted_at = serializers.DateTimeField(source="request.submitted_at", allow_null=True)
    completed_at = serializers.DateTimeField(source="request.completed_at", allow_null=True)
    percent_cleared = serializers.IntegerField(source="percent")
    resubmissions_left = serializers.IntegerField()
    certificate = serializers.SerializerMethodField(help_text="The certificate's id, once issued and valid.")
    items = ItemSerializer(many=True)

    def get_certificate(self, view) -> int | None:
        c = view.certificate
        return c.pk if c is not None and c.is_valid else None


class SubmitSerializer(StrictSerializer):
    cycle = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="An open cycle's id (see "
                                                                                 "/api/students/me/ open_cycles).")
    reason = serializers.ChoiceField(choices=ClearanceRequest.Reason.choices, default=ClearanceRequest.Reason.GRADUATION)


class ResubmitSerializer(StrictSerializer):
    response = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="What you did about the reason given.")
    file = serializers.FileField(required=False, allow_empty_file=False,
                                 help_text="Optional: a PDF, PNG or JPEG of at most 5 MB showing it (multipart).")

    def validate_file(self, upload):
        try:
            files.validate_response_file(upload)  # by content, as an office's evidence (the service checks again)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return upload


class NotificationSerializer(serializers.ModelSerializer):
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "title", "message", "kind", "link", "created_at", "read_at", "is_read"]

    def get_is_read(self, n) -> bool:
        return n.read_at is not None


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many were unread and are now read.")


class CertificateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cycle = serializers.CharField(source="request.cycle.name")
    code = serializers.SerializerMethodField(help_text="The verification code (null once revoked).")
    issued_at = serializers.DateTimeField()
    is_valid = serializers.BooleanField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    verify_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    def get_code(self, c) -> str | None:
        return c.code if c.is_valid else None

    def get_verify_url(self, c) -> str | None:
        return f"{settings.PUBLIC_URL}/verify/{c.code}/" if c.is_valid else None

    def get_pdf_url(self, c) -> str | None:
        return f"/api/certificates/{c.pk}/pdf/" if c.is_valid else None


# --- views ----------------------------------------------------------------------------------------

STUDENT_ERRORS = {404: OpenApiResponse(ErrorSerializer, description="Your login is not linked to a student "
                                                                     "record, or the id is not yours.")}


class StudentMeView(APIView):
    permission_classes = [IsStudent]

    @extend_schema(tags=["students"], responses={200: StudentSerializer, **STUDENT_ERRORS},
                   summary="My student record, and the cycles I may submit in")
    def get(self, request):
        student = my_student(request)
        student.open_cycles = cycles_open_for_submission(student)
        return Response(StudentSerializer(student).data)


class ClearancesView(APIView):
    """GET: my requests, newest first, each office's item with status, reason, amount and what to
    do next (a student has a handful: not paginated). POST: submit a request in an open cycle."""

    permission_classes = [IsStudent]

    @extend_schema(tags=["students"], responses={200: ClearanceSerializer(many=True), **STUDENT_ERRORS},
                   summary="My clearance requests, office by office")
    def get(self, request):
        return Response(ClearanceSerializer(student_progress(my_student(request)), many=True).data)

    @extend_schema(tags=["students"], request=SubmitSerializer,
                   responses={201: ClearanceSerializer, **STUDENT_ERRORS},
                   summary="Submit a clearance request in an open cycle")
    def post(self, request):
        student = my_student(request)
        data = SubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cycle = ClearanceCycle.objects.filter(pk=data.validated_data["cycle"]).first()
        if cycle is None:
            raise exceptions.ValidationError({"cycle": ["No such cycle."]})
        clearance = request_submit(student=student, cycle=cycle, acting_user=request.user,
                                   request_reason=data.validated_data["reason"])
        view = next(v for v in student_progress(student) if v.request.pk == clearance.pk)
        return Response(ClearanceSerializer(view).data, status=status.HTTP_201_CREATED)


class ResubmitView(APIView):
    """POST response (+ file) for a rejected item of my own request: it is pending again."""

    permission_classes = [IsStudent]

    @extend_schema(tags=["students"], request={"application/json": ResubmitSerializer,
                                               "multipart/form-data": ResubmitSerializer},
                   responses={200: ItemSerializer, **STUDENT_ERRORS},
                   summary="Re-submit a rejected item with a response (and a file)")
    def post(self, request, pk: int):
        student = my_student(request)
        approval = own_or_404(ClearanceApproval.objects.filter(request__student=student), pk,
                              what="clearance item")
        data = ResubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval_resubmit(approval=approval, acting_user=request.user, response=data.validated_data["response"],
                          file=data.validated_data.get("file"))
        item = next(i for v in student_progress(student) for i in v.items if i.approval.pk == approval.pk)
        return Response(ItemSerializer(item).data)


class MyHoldsView(generics.ListAPIView):
    """Every hold placed on me (active, released, waived), newest first. Staff see holds of their
    offices at /api/holds/."""

    permission_classes = [IsStudent]
    serializer_class = HoldSerializer
    queryset = Hold.objects.none()          # for the schema; the rows come from get_queryset

    def get_queryset(self):
        return student_holds(my_student(self.request))

    @extend_schema(tags=["students"], responses={200: HoldSerializer(many=True), **STUDENT_ERRORS},
                   summary="My holds")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class NotificationsView(generics.ListAPIView):
    """My notifications, newest first; `?unread=true` for the unread ones only."""

    permission_classes = [IsAuthenticated]
    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()

    def get_queryset(self):
        queryset = notifications_of(self.request.user)
        unread = self.request.query_params.get("unread")
        if unread is not None:
            if unread not in ("true", "false"):
                raise exceptions.ValidationError({"unread": ["Use true or false."]})
            queryset = queryset.filter(read_at__isnull=unread == "true")
        return queryset

    @extend_schema(tags=["notifications"], summary="My notifications", parameters=[
        OpenApiParameter("unread", OpenApiTypes.STR, enum=["true", "false"], required=False,
                         description="true: unread only; false: read only.")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class NotificationReadView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["notifications"], request=None, responses={200: NotificationSerializer},
                   summary="Mark one notification read")
    def post(self, request, pk: int):
        notification = own_or_404(notifications_of(request.user), pk, what="notification")
        notification = notification_mark_read(notification=notification, acting_user=request.user)
        return Response(NotificationSerializer(notification).data)


class NotificationsReadAllView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["notifications"], request=None, responses={200: MarkedSerializer},
                   summary="Mark all my notifications read")
    def post(self, request):
        return Response({"marked": notifications_mark_all_read(acting_user=request.user)})


class UnreadCountView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["notifications"], responses={200: UnreadCountSerializer},
                   summary="How many of my notifications are unread")
    def get(self, request):
        return Response({"unread": unread_notification_count(request.user)})


class CertificatesView(generics.ListAPIView):
    """My certificates (a revoked one is listed as revoked, without its code or PDF)."""

    permission_classes = [IsStudent]
    serializer_class = CertificateSerializer
    queryset = Certificate.objects.none()

    def get_queryset(self):
        return student_certificates(my_student(self.request))

    @extend_schema(tags=["students"], responses={200: CertificateSerializer(many=True), **STUDENT_ERRORS},
                   summary="My certificates")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CertificatePdfView(APIView):
    """The certificate's PDF, made now from the database: for the student it belongs to while it is
    valid, and for the registry (core.permissions.may_download_certificate, as the sites' download
    view); 404 otherwise, whether or not it exists."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["students"], responses={
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF, as an attachment."),
        404: OpenApiResponse(ErrorSerializer, description="No such certificate of yours.")},
        summary="A certificate's PDF")
    def get(self, request, pk: int):
        document = certificate_for_document(pk)
        if document is None or not any(may_download_certificate(request.user, document.certificate, as_role=role)
                                       for role in (STUDENT, REGISTRY)):
            raise exceptions.NotFound("No such certificate of yours.")
        response = HttpResponse(certificate_pdf(document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{certificate_filename(document.certificate)}"'
        return protect(response)


urlpatterns = [
    path("students/me/", StudentMeView.as_view(), name="student_me"),
    path("students/me/holds/", MyHoldsView.as_view(), name="student_holds"),
    path("clearances/", ClearancesView.as_view(), name="clearances"),
    path("approvals/<int:pk>/resubmit/", ResubmitView.as_view(), name="approval_resubmit"),
    path("notifications/", NotificationsView.as_view(), name="notifications"),
    path("notifications/read-all/", NotificationsReadAllView.as_view(), name="notifications_read_all"),
    path("notifications/unread-count/", UnreadCountView.as_view(), name="notifications_unread_count"),
    path("notifications/<int:pk>/read/", NotificationReadView.as_view(), name="notification_read"),
    path("certificates/", CertificatesView.as_view(), name="certificates"),
    path("certificates/<int:pk>/pdf/", CertificatePdfView.as_view(), name="certificate_pdf"),
]
