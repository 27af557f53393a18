from django.db import migrations, models


class Migration(migrations.Migration):
    """A task claims its delivery for a while instead of carrying a send number: the first
    copy to reach a worker delivers, however many were sent."""

    dependencies = [
        ("events", "0007_webhook_pending"),
    ]

    operations = [
        migrations.RemoveField(model_name="webhookpending", name="sends"),
        migrations.AddField(
            model_name="webhookpending",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="webhookpending",
            name="claimed_by",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
