"""Cursor pagination for every list: stable under inserts (a queue that moves while a system pages
through it skips nothing and repeats nothing), and no COUNT(*) over a large table."""
from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    """`?cursor=` from the previous page's `next`/`previous`; `?page_size=` up to API_MAX_PAGE_SIZE
    (larger is cut to it; not a number: the default). Views set `ordering` (unique, or ending in a
    unique field) when "-pk" is not right."""

    page_size_query_param = "page_size"
    ordering = "-pk"

    @property
    def max_page_size(self):
        return settings.API_MAX_PAGE_SIZE

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            # a cursor that was edited by hand: the caller's mistake, said as one
            raise exceptions.ValidationError({"cursor": ["This cursor is not one the API gave; start from the "
                                                         "first page."]})
