import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0018_api_keys'),
    ]

    operations = [
        migrations.CreateModel(
            name='MpesaConfirmation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('trans_id', models.CharField(max_length=10, unique=True, verbose_name='M-PESA code')),
                ('trans_time', models.DateTimeField(verbose_name='paid at')),
                ('amount', models.DecimalField(decimal_places=2, max_digits=12, verbose_name='amount (KES)')),
                ('bill_ref', models.CharField(blank=True, help_text='BillRefNumber: the account the payer typed.', max_length=100, verbose_name='account typed')),
                ('msisdn', models.CharField(blank=True, max_length=20, verbose_name='phone')),
                ('payer_name', models.CharField(blank=True, max_length=255)),
                ('short_code', models.CharField(blank=True, max_length=20, verbose_name='Pay Bill')),
                ('transaction_type', models.CharField(blank=True, max_length=40)),
                ('received_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False)),
                ('source_ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='from')),
                ('outcome', models.CharField(choices=[('recorded', 'Payment recorded and verified'), ('verified', 'Recorded payment verified'), ('already_verified', 'Already verified'), ('mismatch', 'Amount differs from the recorded payment'), ('unmatched', 'No student: to record by hand')], max_length=20)),
                ('match', models.CharField(choices=[('payment', 'Recorded payment'), ('exact', 'Registration number'), ('typo', 'Clear typo of one number'), ('ambiguous', 'Ambiguous'), ('none', 'No match')], max_length=10)),
                ('detail', models.CharField(blank=True, max_length=255)),
                ('candidates', models.JSONField(blank=True, default=list, help_text='Ambiguous: the candidate students\' ids.')),
                ('payload', models.JSONField(blank=True, default=dict, help_text='The callback\'s body as Daraja sent it.')),
                ('payment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.payment')),
                ('student', models.ForeignKey(blank=True, help_text='The student it was recorded for; unmatched with a clear typo: the one it probably is.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.student')),
            ],
            options={
                'verbose_name': 'M-PESA confirmation',
                'verbose_name_plural': 'M-PESA confirmations',
                'ordering': ['-received_at', '-pk'],
                'constraints': [models.CheckConstraint(condition=models.Q(('trans_id__regex', '^[A-Z0-9]{10}$')), name='mpesa_confirmation_code_format'), models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='mpesa_confirmation_amount_positive')],
            },
        ),
    ]
