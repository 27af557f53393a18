from django.db import migrations, models

# Each statement writing orders adds one row per status whose count or totals it changed
# (transition tables hold the rows it inserted, updated or deleted). About one statement
# in 64 then folds every committed row into one per status, when no other writer is
# folding: it deletes only rows its snapshot sees, in one statement with the insert of
# their sums, so every snapshot's sums stay exact, and plain writers take no row lock.
TALLY_SQL = """
CREATE FUNCTION orders_tally_compact() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock(hashtextextended('orders_tally_compact', 0)) THEN
        WITH gone AS (DELETE FROM orders_orderstatustally RETURNING status, orders, total)
        INSERT INTO orders_orderstatustally (status, orders, total)
        SELECT status, sum(orders), sum(total) FROM gone GROUP BY status;
    END IF;
END
$$;

CREATE FUNCTION orders_tally_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO orders_orderstatustally (status, orders, total)
        SELECT status, count(*), sum(total) FROM tally_new GROUP BY status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO orders_orderstatustally (status, orders, total)
        SELECT status, -count(*), -sum(total) FROM tally_old GROUP BY status;
    ELSE
        INSERT INTO orders_orderstatustally (status, orders, total)
        SELECT status, sum(n), sum(t)
        FROM (
            SELECT status, 1 AS n, total AS t FROM tally_new
            UNION ALL
            SELECT status, -1, -total FROM tally_old
        ) change
        GROUP BY status
        HAVING sum(n) <> 0 OR sum(t) <> 0;
    END IF;
    IF random() < 1.0 / 64 THEN
        PERFORM orders_tally_compact();
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_tally_insert AFTER INSERT ON orders_order
    REFERENCING NEW TABLE AS tally_new FOR EACH STATEMENT EXECUTE FUNCTION orders_tally_add();
CREATE TRIGGER orders_tally_update AFTER UPDATE ON orders_order
    REFERENCING OLD TABLE AS tally_old NEW TABLE AS tally_new
    FOR EACH STATEMENT EXECUTE FUNCTION orders_tally_add();
CREATE TRIGGER orders_tally_delete AFTER DELETE ON orders_order
    REFERENCING OLD TABLE AS tally_old FOR EACH STATEMENT EXECUTE FUNCTION orders_tally_add();

-- The orders so far, counted while the triggers' lock keeps writers out.
LOCK TABLE orders_order IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO orders_orderstatustally (status, orders, total)
SELECT status, count(*), sum(total) FROM orders_order GROUP BY status;
"""

UNTALLY_SQL = """
DROP TRIGGER orders_tally_insert ON orders_order;
DROP TRIGGER orders_tally_update ON orders_order;
DROP TRIGGER orders_tally_delete ON orders_order;
DROP FUNCTION orders_tally_add();
DROP FUNCTION orders_tally_compact();
"""


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_order_created_idx")]

    operations = [
        migrations.CreateModel(
            name="OrderStatusTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("status", models.CharField(max_length=16)),
                ("orders", models.BigIntegerField()),
                ("total", models.DecimalField(decimal_places=2, max_digits=18)),
            ],
        ),
        migrations.RunSQL(TALLY_SQL, UNTALLY_SQL),
    ]
