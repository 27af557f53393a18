"""The rollups of the orders delivered before they were kept.

Plain SQL, frozen here: the same sums `analytics.services.rollups_rebuild` makes, as
they were when this migration was written.
"""

from django.db import migrations

FORWARD = """
LOCK TABLE analytics_merchantday, analytics_productday IN EXCLUSIVE MODE;
DELETE FROM analytics_productday;
DELETE FROM analytics_merchantday;
INSERT INTO analytics_merchantday (merchant_id, day, orders, revenue, delivery_time)
SELECT merchant_id, (delivered_at AT TIME ZONE 'UTC')::date, count(*), sum(total),
       sum(delivered_at - created_at)
FROM orders_order
WHERE status = 'delivered'
GROUP BY 1, 2;
INSERT INTO analytics_productday (merchant_id, product_id, day, units, revenue)
SELECT o.merchant_id, i.product_id, (o.delivered_at AT TIME ZONE 'UTC')::date,
       sum(i.quantity), sum(i.line_total)
FROM orders_orderitem i
JOIN orders_order o ON o.id = i.order_id
WHERE o.status = 'delivered'
GROUP BY 1, 2, 3;
ANALYZE analytics_merchantday;
ANALYZE analytics_productday;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_rollups"),
        ("orders", "0004_outbox_notify"),
    ]

    operations = [migrations.RunSQL(FORWARD, migrations.RunSQL.noop)]
