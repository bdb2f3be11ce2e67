"""Re-submissions and re-opens no longer restart an item's waiting time (issue 14): give back the
items they restarted their first `waiting_since`, the earliest one their history records. One
UPDATE with a subquery, whatever the table size; no history row is written for it (the clock's
earlier value is what the history already holds)."""

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F, Min, OuterRef, Subquery


def restore_first_waiting_since(apps, schema_editor):
    Approval = apps.get_model("core", "ClearanceApproval")
    History = apps.get_model("core", "HistoricalClearanceApproval")
    first = (History.objects.filter(id=OuterRef("pk")).order_by().values("id")
             .annotate(first=Min("waiting_since")).values("first"))
    restarted = Approval.objects.annotate(first=Subquery(first)).filter(first__lt=F("waiting_since"))
    Approval.objects.filter(pk__in=restarted.values("pk")).update(waiting_since=Subquery(first))


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0020_student_search'),
    ]

    operations = [
        migrations.AlterField(
            model_name='clearanceapproval',
            name='waiting_since',
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False, help_text='When it first became pending (the SLA clock): a re-submission or a re-open does not restart it.'),
        ),
        migrations.AlterField(
            model_name='historicalclearanceapproval',
            name='waiting_since',
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False, help_text='When it first became pending (the SLA clock): a re-submission or a re-open does not restart it.'),
        ),
        migrations.RunPython(restore_first_waiting_since, migrations.RunPython.noop),
    ]
