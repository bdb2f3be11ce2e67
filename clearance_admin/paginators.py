"""Paginators for lists too long to count.

Django admin counts the whole filtered result for every page it shows (`paginator.count`), which
for a clerk's queue of 150,000 items costs more than the page: at 1,000,000 approvals the COUNT(*)
grew the queue page by half. `CappedCountPaginator` counts no further than a few pages past the
one asked for — exact below that, "more than N" above — so a page costs the same whatever the
table's size, and a clerk can still page on: every page asked for moves the cap with it.
"""
from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most `limit` rows: `limit` is `pages_ahead` pages past `page` (the page the
    request asks for). When more rows exist, `count` is `limit + 1` and `exact` is False; the
    template says "more than `limit`" (and clearance_admin.changelists never shows all of such a
    list). Few pages ahead, because a sparse filter ("waiting" for a stage-2 office: one pending
    item in sixty) reads sixty rows for every row it counts."""

    template_name = "admin_list/pagination_capped.html"

    def __init__(self, object_list, per_page, *, page: int = 1, pages_ahead: int = 3, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.limit = (max(page, 1) + pages_ahead) * self.per_page

    @cached_property
    def count(self) -> int:
        # no ORDER BY in the counted subquery: any `limit + 1` rows tell whether there are more
        return self.object_list.order_by()[: self.limit + 1].count()

    @property
    def exact(self) -> bool:
        return self.count <= self.limit
