"""The backfill of 0005 rewrote every merchant day, which leaves their pages not known to
be visible to all: until a vacuum marks them so, each probe of the running totals reads
the table too, not the index alone. VACUUM runs outside a transaction, hence a
migration of its own."""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0005_merchant_running_totals"),
    ]

    operations = [
        migrations.RunSQL("VACUUM ANALYZE analytics_merchantday", migrations.RunSQL.noop),
    ]
