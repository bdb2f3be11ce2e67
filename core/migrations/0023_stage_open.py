"""ClearanceApproval.stage_open: stored for the queue's "waiting" (issue 14 item 7), filled from the
approvals as they are (an item whose request has an uncleared item in an earlier stage is closed)."""

from django.db import migrations, models

# the SQL of core.services.status.approvals_refresh_stage_open as it was written with this migration
FILL = """
UPDATE core_clearanceapproval SET stage_open = NOT stage_open WHERE id IN (
  SELECT a.id FROM core_clearanceapproval a WHERE a.stage_open <> (NOT EXISTS (
    SELECT 1 FROM core_clearanceapproval b JOIN core_department bd ON bd.id = b.department_id
    WHERE b.request_id = a.request_id AND b.status NOT IN ('approved', 'waived')
      AND bd.stage < (SELECT ad.stage FROM core_department ad WHERE ad.id = a.department_id))))
"""


def statistics(apps, schema_editor):
    # PostgreSQL plans the office's "waiting" (department, pending, stage open) as if the three were
    # independent: some 70,000 of 1,000,000 rows for the registry where 551 match, so it scanned the
    # table for the page count (33 ms) instead of reading the index (0.5 ms). Statistics on
    # the three together give it the real share. SQLite has no such statistics (nor needs them).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE STATISTICS IF NOT EXISTS core_approval_queue (mcv) "
                              "ON department_id, status, stage_open FROM core_clearanceapproval")


def no_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS core_approval_queue")


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0022_response_file_and_office_location'),
    ]

    operations = [
        migrations.AddField(
            model_name='clearanceapproval',
            name='stage_open',
            field=models.BooleanField(default=True, editable=False),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name='clearanceapproval',
            index=models.Index(fields=['department', 'status', 'stage_open', 'waiting_since', 'id'], name='approval_waiting'),
        ),
        migrations.RunPython(statistics, no_statistics),
    ]
