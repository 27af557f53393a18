from django.db import migrations, models


class Migration(migrations.Migration):
    """Retries become every owed delivery, first attempts included, counted as sent."""

    dependencies = [
        ("events", "0006_event_notify_per_row"),
    ]

    operations = [
        migrations.RenameModel(old_name="WebhookRetry", new_name="WebhookPending"),
        migrations.RenameIndex(
            model_name="webhookpending",
            new_name="webhook_pending_due_idx",
            old_name="webhook_retry_due_idx",
        ),
        migrations.AddField(
            model_name="webhookpending",
            name="sends",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
