import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# An endpoint takes its events by its creator's right to them (events.selectors). Those
# created before the creator was recorded: a merchant's is its owner's, who holds the right
# to its events now; one of every merchant's has no creator known, and stays null.
BACKFILL = """
UPDATE events_webhookendpoint e SET created_by_id = m.owner_id
FROM merchants_merchant m
WHERE m.id = e.merchant_id AND e.created_by_id IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0009_webhook_pending_handed_at"),
        ("merchants", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
