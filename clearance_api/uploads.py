"""What an office's or the finance office's system posts to an import: a file (multipart `file`),
or JSON rows turned into the same CSV the engine reads (core/imports), so both go through one
reader with its rules (headers, amounts, registration numbers in any spelling, row errors)."""
from __future__ import annotations

import csv
import io

from django.core.files.base import ContentFile
from rest_framework import serializers

from core.exports import neutralise

MAX_ROWS = 100_000


def rows_file(rows: list[dict], columns: list[str], *, name: str, text_columns=()) -> ContentFile:
    """JSON rows as a CSV upload with exactly `columns` as its header. Free text (`text_columns`)
    is neutralised as every CSV the project writes is (the file is kept and can be downloaded)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(c)) if c in text_columns else ("" if row.get(c) is None else row.get(c))
                         for c in columns])
    return ContentFile(out.getvalue().encode("utf-8"), name=name)


class UploadSerializer(serializers.Serializer):
    """`file` or `rows`, not both, not neither (subclasses add `rows` and their options)."""

    file = serializers.FileField(required=False, help_text="An xlsx or csv file, as the site's upload takes it.")

    def validate(self, attrs):
        has_file, has_rows = attrs.get("file") is not None, attrs.get("rows") is not None
        if has_file == has_rows:
            raise serializers.ValidationError({"non_field_errors": ["Send either `file` (multipart) or `rows` "
                                                                    "(JSON), one of them."]})
        return attrs
