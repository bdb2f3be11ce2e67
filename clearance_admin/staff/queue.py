"""The clearance queue as a clerk walks it: the default "waiting" view, the active filters shown as
removable chips, and the next item of the very list the clerk came from (its filters, search and
order kept through Django admin's `_changelist_filters`)."""
from __future__ import annotations

import copy
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.db.models import F, Q
from django.db.models.expressions import OrderBy
from django.http import QueryDict

from core.selectors import staff as staff_selectors

PRESERVED = "_changelist_filters"


class QueueFilter(admin.SimpleListFilter):
    """`?queue=waiting` (the default: pending items whose stage is open) or `?queue=all`. Choosing
    a status in the status filter (or the items of a balance import) steps this default aside, so
    `?status__exact=rejected` lists the rejected items (and the links in digests, reports and the
    finance pages keep meaning what they say). So does a search: a clerk who types a student's name
    or number is looking for that student's items, whatever their state."""

    title = "queue"
    parameter_name = "queue"
    WAITING, ALL = "waiting", "all"
    LABELS = {WAITING: "Waiting (stage open)", ALL: "Everything"}
    horizontal = True           # unfold draws the two choices side by side

    def __init__(self, request, params, model, model_admin):
        # a status chosen, or the items one balance import decided (the finance pages link to them):
        # the list says what it lists, whatever waits
        self.status_chosen = (any(key.startswith("status__") or key == "import" for key in request.GET)
                              or bool(request.GET.get(SEARCH_VAR, "").strip()))
        super().__init__(request, params, model, model_admin)
        # unfold's submit form keeps a choice through these (as for its field filters)
        self.lookup_kwarg = self.parameter_name
        self.lookup_val = [self.used_parameters[self.parameter_name]] if self.explicit else []

    @property
    def explicit(self) -> bool:
        return self.parameter_name in self.used_parameters

    @property
    def default_applied(self) -> bool:
        """Narrowing the list without a parameter saying so (export titles name it)."""
        return not self.explicit and self.value() == self.WAITING

    def lookups(self, request, model_admin):
        return list(self.LABELS.items())

    def value(self):
        value = super().value()
        if value in self.LABELS:
            return value
        # nothing chosen (or junk): the default, unless a status was chosen
        return None if self.status_chosen else self.WAITING

    def queryset(self, request, queryset):
        if self.value() == self.WAITING:
            return staff_selectors.approvals_waiting(queryset)
        return queryset

    def choices(self, changelist):
        for value, label in self.LABELS.items():
            yield {"selected": self.value() == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}


def filter_chips(cl) -> list[dict]:
    """One chip per active filter and for the search: its label and the list's URL without it
    (every other filter kept). The default "waiting" view is a chip too; removing it shows everything."""
    chips = []
    for spec in cl.filter_specs:
        if isinstance(spec, QueueFilter):
            value = spec.value()
            if value == QueueFilter.WAITING:
                chips.append(_chip("Queue", spec.LABELS[value], _query(cl, {spec.parameter_name: QueueFilter.ALL})))
            elif value == QueueFilter.ALL and spec.explicit:
                chips.append(_chip("Queue", spec.LABELS[value], _query(cl, drop=[spec.parameter_name])))
            continue
        params = [p for p in spec.expected_parameters() if p in cl.params]
        if not params:
            continue
        title = str(spec.title)
        chips.append(_chip(title[:1].upper() + title[1:], _selected_label(spec, cl, params), _query(cl, drop=params)))
    if cl.query:
        chips.append(_chip("Search", cl.query, _query(cl, drop=[SEARCH_VAR])))
    return chips


def _query(cl, new: dict | None = None, drop=()) -> str:
    """The list's query string with exactly these parameters dropped or set (the changelist's own
    helper drops every parameter that starts with a name: "q" would take "queue" with it)."""
    params = {k: v for k, v in cl.params.items() if k not in drop and k != PAGE_VAR}
    params.update(new or {})
    return "?" + urlencode(list(params.items()))


def _chip(title, label, url) -> dict:
    return {"title": title, "label": label, "url": url}


def _selected_label(spec, cl, params) -> str:
    if isinstance(spec, admin.SimpleListFilter):
        value = str(spec.value())
        return next((str(label) for key, label in spec.lookup_choices if str(key) == value), value)
    for choice in spec.choices(cl):  # a field's filter: the choice it marks selected, not "All"
        if choice.get("selected") and any(p in choice.get("query_string", "") for p in params):
            return str(choice["display"])
    return ", ".join(str(cl.params[p]) for p in params)


# --- walking the list --------------------------------------------------------------------------------

def preserved_filters(request) -> str:
    """The list's query string the clerk came from, as the admin carries it on item pages."""
    return request.GET.get(PRESERVED, "")


def queue_queryset(modeladmin, request, filters: str):
    """The list as the clerk had it — filters, search and order from `filters` (a changelist query
    string) — as a queryset, without counting or fetching a page. None for parameters the list
    itself would refuse."""
    listing = copy.copy(request)
    listing.GET = QueryDict(filters)
    listing.POST = QueryDict()
    base = modeladmin.get_changelist(listing)

    class Walk(base):
        def get_results(self, request):   # only the filtered, ordered queryset is wanted
            self.result_list, self.result_count, self.full_result_count = [], 0, 0
            self.can_show_all, self.multi_page, self.paginator = False, False, None

    list_display = modeladmin.get_list_display(listing)
    if modeladmin.get_actions(listing):   # as the changelist counts its columns (the `o` parameter)
        list_display = ["action_checkbox", *list_display]
    try:
        cl = Walk(listing, modeladmin.model, list_display,
                  modeladmin.get_list_display_links(listing, list_display),
                  modeladmin.get_list_filter(listing), modeladmin.date_hierarchy,
                  modeladmin.get_search_fields(listing), modeladmin.get_list_select_related(listing),
                  modeladmin.list_per_page, modeladmin.list_max_show_all, modeladmin.list_editable, modeladmin,
                  modeladmin.get_sortable_by(listing), modeladmin.search_help_text)
    except (IncorrectLookupParameters, ValueError):
        return None
    return cl.queryset


def _ordering(queryset) -> list[tuple[str, bool]]:
    """(field path, descending) of the list's order; the changelist always ends it on the pk."""
    order = []
    for item in queryset.query.order_by:
        if isinstance(item, str):
            name = item.lstrip("-")
            order.append(("pk" if name == "id" else name, item.startswith("-")))
        elif isinstance(item, OrderBy) and isinstance(item.expression, F):
            order.append((item.expression.name, item.descending))
    if not any(name == "pk" for name, _ in order):
        order.append(("pk", False))
    return order


def queue_cursor(queryset, obj) -> dict | None:
    """Where `obj` stands in the list's order (its values of the ordering fields), read before a
    decision moves it; None when the list cannot be read."""
    if queryset is None:
        return None
    fields = [name for name, _ in _ordering(queryset)]
    row = queryset.model._default_manager.filter(pk=obj.pk).values(*fields).first()
    return row


def next_after(queryset, cursor: dict, *, exclude: int | None = None) -> int | None:
    """The id of the first item of the list after `cursor` in the list's own order (keyset: the
    items equal on the first fields and beyond on the next one), whatever page it is on."""
    if queryset is None or cursor is None:
        return None
    after = Q()
    equal = Q()
    for name, descending in _ordering(queryset):
        value = cursor.get(name)
        if value is None:
            continue      # no order to compare on a missing value; the later fields decide
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": value})
        after |= equal & step
        equal &= Q(**{name: value})
    after = queryset.filter(after).prefetch_related(None)
    if exclude is not None:   # the item just decided, wherever its new values put it
        after = after.exclude(pk=exclude)
    return after.values_list("pk", flat=True).first()


def with_filters(url: str, filters: str, **extra) -> str:
    """`url` carrying the list's filters (and `extra` parameters) as the admin's item links do."""
    query = QueryDict(mutable=True)
    if filters:
        query[PRESERVED] = filters
    for key, value in extra.items():
        query[key] = value
    return f"{url}?{query.urlencode()}" if query else url
