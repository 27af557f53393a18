from django.db import migrations, models

# The platform's days from the merchants' days, which the deliveries keep since 0003.
BACKFILL = """
LOCK TABLE analytics_merchantday, analytics_productday IN EXCLUSIVE MODE;
INSERT INTO analytics_platformday (day, shard, orders, revenue)
SELECT day, merchant_id % 16, sum(orders), sum(revenue)
FROM analytics_merchantday
GROUP BY 1, 2;
ANALYZE analytics_platformday;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_rollups_backfill"),
    ]

    operations = [
        migrations.CreateModel(
            name="PlatformDay",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "day",
                        "shard",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("day", models.DateField()),
                ("shard", models.SmallIntegerField()),
                ("orders", models.IntegerField()),
                ("revenue", models.DecimalField(decimal_places=2, max_digits=16)),
            ],
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
