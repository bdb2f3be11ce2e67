"""Admin mixins shared by every site: history with unfold's look, scoping through core.permissions,
and reporting what a bulk action did and refused."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin

from core.services._common import BulkResult

from .exports import ListExportMixin
from .history import ChangesHelper, delta_of


SUPERUSER_SITE = "admin"


class HistoryModelAdmin(ListExportMixin, SimpleHistoryAdmin, ModelAdmin):
    """unfold's look with simple-history's history pages, and the list's Export (clearance_admin/exports.py). Reverting is for administrators only, in
    /admin/ only: a role site shows history read-only whoever looks at it, so a superuser passing
    through /registry/ cannot put a revoked request back to "completed" behind its services."""

    # The list: when, what, who, from which IP, why, and every field old → new (clearance_admin/history.py).
    object_history_list_template = "admin/history/object_history_list.html"
    # A version: unfold's page with the History link fixed, read-only where reverting is off.
    object_history_form_template = "admin/history/object_history_form.html"

    def revert_disabled(self, request, obj=None):
        return not (request.user.is_superuser and self.admin_site.name == SUPERUSER_SITE)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # revert_disabled only hides the button; the POST must be refused on the server too.
        if request.method == "POST" and self.revert_disabled(request):
            raise PermissionDenied("Only administrators may revert to an earlier version.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return ChangesHelper(self.model, historical_record)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        """Every tracked field, not only the editable ones simple-history compares (status and the
        decision's who and when are not editable: services write them)."""
        previous = None
        for current in historical_records:
            if previous is not None:
                delta = delta_of(previous, current)
                previous.history_delta_changes = self.get_historical_record_context_helper(
                    request, previous).context_for_delta_changes(delta)
            previous = current
        if previous is not None and previous.history_type == "+":
            previous.history_delta_changes = []      # the first record: nothing earlier to compare

    def render_history_view(self, request, template, context, **kwargs):
        """A version shown where it cannot be reverted has nothing to fill in: every field read-only
        (as Django's own view-only change page), form-only fields (a decision, an upload) left out."""
        adminform = context.get("adminform")
        if adminform is not None and context.get("revert_disabled"):
            context["adminform"] = self._read_only_form(adminform)
        return super().render_history_view(request, template, context, **kwargs)

    def _read_only_form(self, adminform):
        obj = adminform.form.instance

        def shown(name) -> bool:
            try:
                self.model._meta.get_field(name)
                return True
            except FieldDoesNotExist:
                return callable(name) or hasattr(self, name) or hasattr(obj, name)

        fieldsets = []
        for title, options in adminform.fieldsets:
            names = [n for n in flatten_fieldsets([(title, options)]) if shown(n)]
            if names:
                fieldsets.append((title, {**options, "fields": names}))
        # what the services write (status, who decided and when) is no form field, but is the version
        listed = set(flatten_fieldsets(fieldsets))
        recorded = [f.name for f in self.model._meta.concrete_fields
                    if not f.editable and not f.primary_key and f.name not in listed]
        if recorded:
            fieldsets.append(("Recorded by the workflow", {"fields": recorded}))
        return helpers.AdminForm(adminform.form, fieldsets, {}, flatten_fieldsets(fieldsets), model_admin=self)


class ReadOnlyAdminMixin:
    """Shown, never edited here: the records change through the services (actions, imports)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScopedAdminMixin:
    """Every list, detail page, action and hand-typed URL of a role site answers from `scope()`,
    which narrows the queryset through core.permissions. An object outside the scope is a 403 with
    a reason, never someone else's data."""

    scope_refusal = "This record is outside what your role may see."
    # True where the actions hand the posted ids to a service that counts those out of scope itself
    counts_unseen_itself = False

    def scope(self, request, queryset):
        raise NotImplementedError(f"{type(self).__name__} must say what each user may see")

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def response_action(self, request, queryset):
        """Django drops selected ids outside the queryset without a word; a forged or stale id is
        refused and counted instead, never named (the same answer for an id of nothing)."""
        unseen = 0
        if not self.counts_unseen_itself and request.POST.get("select_across") != "1":
            from .filters import parse_id
            ids = {parse_id(v) for v in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)} - {None}
            if ids:
                unseen = len(ids) - self.get_queryset(request).filter(pk__in=ids).count()
        response = super().response_action(request, queryset)
        if unseen:
            opts = self.model._meta
            noun = opts.verbose_name if unseen == 1 else opts.verbose_name_plural
            self.message_user(request, f"Refused: {unseen} selected {noun} {'is' if unseen == 1 else 'are'} not in "
                                       "your list; nothing was done to them.", messages.WARNING)
        return response

    def in_scope(self, request, obj) -> bool:
        return self.scope(request, self.model._default_manager.filter(pk=obj.pk)).exists()

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None and self.model._default_manager.filter(pk=_as_pk(self.model, object_id)).exists():
            raise PermissionDenied(self.scope_refusal)
        return obj

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and (obj is None or self.in_scope(request, obj))

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or self.in_scope(request, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or self.in_scope(request, obj))


def _as_pk(model, object_id):
    try:
        return model._meta.pk.to_python(object_id)
    except ValidationError:
        return None


class RoleModelAdmin(ScopedAdminMixin, HistoryModelAdmin):
    """Base of the ModelAdmins of the role sites."""

    show_full_result_count = False
    list_per_page = 50
    list_max_show_all = 1000


def report_bulk_result(modeladmin, request, result: BulkResult, *, done_verb: str, noun: str = "item") -> None:
    """One success line with the count, one warning listing every refused row with its reason, and
    one counting the selected rows outside the user's scope (never naming them)."""
    if result.done_count:
        plural = noun if result.done_count == 1 else f"{noun}s"
        modeladmin.message_user(request, f"{done_verb} {result.done_count} {plural}.", messages.SUCCESS)
    if result.refused:
        items = format_html_join("", "<li>{}: {}</li>", ((r.label, r.reason) for r in result.refused))
        modeladmin.message_user(
            request, format_html("Refused {}:<ul class=\"list-disc ml-5\">{}</ul>", len(result.refused), items),
            messages.WARNING)
    if result.unseen:
        # counted, never named: a row outside the user's scope (or no row at all) says nothing of itself
        modeladmin.message_user(request, f"Refused: {result.unseen_text(noun)}; nothing was done to them.",
                                messages.WARNING)
    if not result.done_count and not result.refused and not result.unseen:
        modeladmin.message_user(request, "Nothing was selected.", messages.INFO)


def run_service(modeladmin, request, func, **kwargs):
    """Call a service; a ValidationError becomes an error message (never a 500). Returns the
    service's result, or None when it refused."""
    try:
        return func(**kwargs)
    except ValidationError as exc:
        modeladmin.message_user(request, " ".join(exc.messages), messages.ERROR)
        return None
