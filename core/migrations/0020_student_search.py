"""Searching students by registration number or name through an index (core/sql/search.py):
pg_trgm and a GIN trigram index on PostgreSQL, an FTS5 trigram table kept by triggers on SQLite."""
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


def forwards(apps, schema_editor):
    from core.sql import search
    if schema_editor.connection.vendor == "postgresql":
        search.install_postgresql_search(schema_editor)
    elif schema_editor.connection.vendor == "sqlite":
        search.install_sqlite_search(schema_editor.connection)


def backwards(apps, schema_editor):
    from core.sql import search
    if schema_editor.connection.vendor == "postgresql":
        search.drop_postgresql_search(schema_editor)
    elif schema_editor.connection.vendor == "sqlite":
        search.drop_sqlite_search(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0019_mpesa_confirmations"),
    ]

    operations = [
        TrigramExtension(),         # runs on PostgreSQL only
        migrations.RunPython(forwards, backwards),
    ]
