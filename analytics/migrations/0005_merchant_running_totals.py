"""The merchants' running totals (`MerchantDay.orders_to_date` and its siblings), made
from the days already kept: plain SQL, frozen here."""

from datetime import timedelta
from decimal import Decimal

from django.db import migrations, models

BACKFILL = """
LOCK TABLE analytics_merchantday IN EXCLUSIVE MODE;
UPDATE analytics_merchantday d
SET orders_to_date = t.orders_to_date,
    revenue_to_date = t.revenue_to_date,
    delivery_time_to_date = t.delivery_time_to_date
FROM (
    SELECT merchant_id, day,
           sum(orders) OVER w AS orders_to_date,
           sum(revenue) OVER w AS revenue_to_date,
           sum(delivery_time) OVER w AS delivery_time_to_date
    FROM analytics_merchantday
    WINDOW w AS (PARTITION BY merchant_id ORDER BY day)
) t
WHERE d.merchant_id = t.merchant_id AND d.day = t.day;
"""

INDEX = models.Index(
    fields=["merchant_id", "day"],
    include=["orders_to_date", "revenue_to_date", "delivery_time_to_date"],
    name="analytics_merchantday_totals",
)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_platform_days"),
    ]

    operations = [
        migrations.AddField(
            model_name="merchantday",
            name="orders_to_date",
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="merchantday",
            name="revenue_to_date",
            field=models.DecimalField(decimal_places=2, default=Decimal(0), max_digits=16),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="merchantday",
            name="delivery_time_to_date",
            field=models.DurationField(default=timedelta(0)),
            preserve_default=False,
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddIndex(model_name="merchantday", index=INDEX),
    ]
