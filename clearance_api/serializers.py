"""Serializer pieces every API module uses: request bodies that refuse unknown fields (a typo in a
field name is a 400 that names it, not a value silently ignored), and the row-by-row result of a
bulk service (core.services._common.BulkResult) as the sites' bulk actions report it."""
from __future__ import annotations

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """A request body: unknown fields are refused, each named in `errors`."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        unknown = sorted(set(data) - {name for name, f in self.fields.items() if not f.read_only})
        value = super().to_internal_value(data)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return value


class RefusalSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    label = serializers.CharField()
    reason = serializers.CharField()


class BulkResultSerializer(serializers.Serializer):
    """What a bulk service did and refused: `done` ids, `refused` rows with the reason, and how many
    ids were not in the caller's scope (counted, never named: see BulkResult.unseen)."""

    done = serializers.ListField(child=serializers.IntegerField())
    refused = RefusalSerializer(many=True)
    unseen_count = serializers.SerializerMethodField()
    unseen_where = serializers.CharField()

    def get_unseen_count(self, result) -> int:
        return len(result.unseen)
