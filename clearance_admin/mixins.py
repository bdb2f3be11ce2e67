"""Admin mixins shared by every site."""
from __future__ import annotations

from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin


class HistoryModelAdmin(SimpleHistoryAdmin, ModelAdmin):
    """unfold's look with simple-history's history pages. Reverting is for administrators only."""

    def revert_disabled(self, request, obj=None):
        return not request.user.is_superuser
