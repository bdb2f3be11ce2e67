"""/student/ — a student sees only their own clearance: progress office by office with reasons and
amounts, submit and re-submit, their notifications.

Everything here answers from the logged-in user: the Student record linked to request.user, the
approvals of that student's requests, the notifications addressed to request.user. An id that
belongs to someone else is a 404 (re-submit) or a 403 (notification), and nothing changes.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from core.models import ClearanceApproval, ClearanceCycle, ClearanceRequest, Notification
from core.selectors.student import student_of, unread_notification_count
from core.services.approvals import approval_resubmit
from core.services.notifications import notification_mark_read, notifications_email_set
from core.services.requests import request_submit

from .mixins import ScopedAdminMixin
from .exports import ListExportMixin, register_my_exports
from .sites import student_site as site

site.index_template = "student/index.html"
site.login_template = "student/login.html"      # with the way to a first login

NO_STUDENT_RECORD = ("Your login is not linked to a student record yet, so there is no clearance to show. "
                     "Ask the registry to link {email} to your registration number.")


def unread_badge(request) -> str:
    """Sidebar badge on "Notifications": how many are unread (settings UNFOLD_STUDENT)."""
    count = getattr(request, "unread_notification_count", None)  # the dashboard may have counted already
    return str(count if count is not None else unread_notification_count(request.user))


def _back_to_index():
    return HttpResponseRedirect(reverse("student:index", current_app=site.name))


def _int_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such cycle.")


@require_POST
def submit_view(request):
    """POST cycle=<id> [reason=graduation|withdrawal|transfer] → request_submit."""
    student = student_of(request.user)
    if student is None:
        messages.error(request, NO_STUDENT_RECORD.format(email=request.user.email))
        return _back_to_index()
    try:
        cycle = ClearanceCycle.objects.get(pk=_int_or_404(request.POST.get("cycle")))
    except ClearanceCycle.DoesNotExist:
        raise Http404("No such cycle.")
    reason = request.POST.get("reason") or ClearanceRequest.Reason.GRADUATION
    if reason not in ClearanceRequest.Reason.values:
        messages.error(request, "Choose graduation, withdrawal or transfer as the reason for clearance.")
        return _back_to_index()
    try:
        clearance = request_submit(student=student, cycle=cycle, acting_user=request.user, request_reason=reason)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        count = clearance.approvals.count()
        messages.success(request, f"Your clearance request for {cycle} is submitted: {count} offices will "
                                  f"review it. Follow each office's decision below.")
    return _back_to_index()


@require_POST
def resubmit_view(request, approval_id: int):
    """POST response=<text> [file=<PDF, PNG or JPEG>] → approval_resubmit, for an item of the
    user's own request only. A refused file (by its content) changes nothing and says why."""
    approval = (ClearanceApproval.objects.select_related("department")
                .filter(pk=approval_id, request__student__user=request.user).first())
    if approval is None:
        # Someone else's item (or none at all): the same answer, so ids reveal nothing.
        raise Http404("No such clearance item of yours.")
    uploads = request.FILES.getlist("file")
    if len(uploads) > 1:
        messages.error(request, f"{approval.department.name}: send one file with your response (a PDF, PNG or JPEG).")
        return _back_to_index()
    upload = uploads[0] if uploads else None
    try:
        approval_resubmit(approval=approval, acting_user=request.user, response=request.POST.get("response", ""),
                          file=upload)
    except ValidationError as exc:
        messages.error(request, f"{approval.department.name}: " + " ".join(exc.messages))
    else:
        sent = f" with {upload.name}" if upload is not None else ""
        messages.success(request, f"Re-submitted to {approval.department.name}{sent}; it is pending again and the "
                                  f"office will read your response.")
    return _back_to_index()


@require_POST
def email_setting_view(request):
    """POST on=1|0: the student's notification emails on or off (the notifications stay here)."""
    on = request.POST.get("on") == "1"
    notifications_email_set(user=request.user, on=on)
    messages.success(request, "Emails of your notifications are on." if on else
                     "Emails of your notifications are off; they are still listed here.")
    return _back_to_index()


def _student_urls():
    return [
        path("settings/email/", site.admin_view(email_setting_view), name="student_email_setting"),
        path("clearance/submit/", site.admin_view(submit_view), name="student_submit"),
        path("clearance/items/<int:approval_id>/resubmit/", site.admin_view(resubmit_view),
             name="student_resubmit"),
    ]


# UnfoldAdminSite.get_urls() adds the site's extra_urls before the model URLs.
site.extra_urls = _student_urls


class ReadStateFilter(admin.SimpleListFilter):
    title = "read"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("no", "Unread"), ("yes", "Read")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(read_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(read_at__isnull=False)
        return queryset


@admin.register(Notification, site=site)
class MyNotificationAdmin(ScopedAdminMixin, ListExportMixin, ModelAdmin):
    """The student's own notifications; read-only except for marking them read."""

    list_display = ["title_display", "kind_display", "created_at", "read_display"]
    list_display_links = ["title_display"]
    list_filter = [ReadStateFilter, "kind"]
    search_fields = ["title", "message"]
    fields = ["title", "message", "kind", "link_display", "created_at", "read_at"]
    readonly_fields = fields
    actions = ["mark_read"]
    show_full_result_count = False
    list_per_page = 50
    scope_refusal = "This notification is not yours."
    change_form_outer_after_template = "student/notification_mark_read.html"
    # cards with each message whole; no row checkboxes (the bulk action is "Mark all as read")
    change_list_template = "student/notification_list.html"

    def scope(self, request, queryset):
        return queryset.filter(user=request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_mark_read_permission(self, request, obj=None):
        return request.user.has_perm("core.change_notification") and (obj is None or self.in_scope(request, obj))

    @display(description="Notification")
    def title_display(self, obj):
        return format_html("<strong>{}</strong><br><span class=\"text-font-subtle-light dark:text-font-subtle-dark\">"
                           "{}</span>", obj.title, obj.message) if obj.read_at is None else \
            format_html("{}<br><span class=\"text-font-subtle-light dark:text-font-subtle-dark\">{}</span>",
                        obj.title, obj.message)

    @display(description="Kind", label={
        Notification.Kind.APPROVED: "success", Notification.Kind.COMPLETED: "success",
        Notification.Kind.REJECTED: "danger", Notification.Kind.REVOKED: "danger",
        Notification.Kind.HOLD: "warning", Notification.Kind.OVERDUE: "warning", Notification.Kind.INFO: "info"})
    def kind_display(self, obj):
        return obj.kind, obj.get_kind_display()

    @display(description="Link")
    def link_display(self, obj):
        # only links inside this site are followed; anything else is shown as text
        if obj.link.startswith(f"/{site.name}/"):
            return format_html('<a class="text-primary-600 underline" href="{}">Open</a>', obj.link)
        return obj.link or "—"

    @display(description="Read", label={"unread": "info", "read": "success"})
    def read_display(self, obj):
        return ("unread", "Unread") if obj.read_at is None else ("read", f"Read {obj.read_at:%d %b}")

    @action(description="Mark as read", permissions=["mark_read"], icon="mark_email_read")
    def mark_read(self, request, queryset):
        marked = 0
        for notification in queryset.filter(read_at__isnull=True):
            try:
                notification_mark_read(notification=notification, acting_user=request.user)
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, f"{notification.title}: {exc}", messages.ERROR)
            else:
                marked += 1
        if marked:
            self.message_user(request, f"Marked {marked} notification{'s' if marked != 1 else ''} as read.",
                              messages.SUCCESS)
        else:
            self.message_user(request, "Those notifications were already read.", messages.INFO)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/read/", self.admin_site.admin_view(self.mark_one_read_view),
                 name="%s_%s_mark_read" % info),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}),
                         "has_unread": self.get_queryset(request).filter(read_at__isnull=True).exists()}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Opening a notification marks it read."""
        if request.method == "GET":
            notification = self.get_object(request, object_id)      # someone else's: 403, as every path
            if notification is not None and notification.read_at is None and \
                    self.has_mark_read_permission(request, notification):
                notification_mark_read(notification=notification, acting_user=request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    def mark_one_read_view(self, request, object_id):
        """POST: mark one notification read (from its page). Another user's id is a 403."""
        if request.method != "POST":
            return redirect(reverse("student:core_notification_change", args=[object_id], current_app=site.name))
        notification = self.get_object(request, object_id)  # 403 when it is someone else's
        if notification is None:
            raise Http404("No such notification.")
        if not self.has_mark_read_permission(request, notification):
            raise PermissionDenied(self.scope_refusal)
        try:
            notification_mark_read(notification=notification, acting_user=request.user)
        except PermissionDenied:
            raise
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, "Marked as read.", messages.SUCCESS)
        return redirect(reverse("student:core_notification_changelist", current_app=site.name))


# long exports wait here (clearance_admin/exports.py)
register_my_exports(site)
