from django.db import migrations

# Every transaction that writes to the outbox notifies the relay (`orders.relay`) as it
# commits: PostgreSQL delivers a NOTIFY only on commit, once per transaction and channel.
NOTIFY_SQL = """
CREATE FUNCTION orders_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_outbox_notify
    AFTER INSERT ON orders_outboxmessage
    FOR EACH STATEMENT EXECUTE FUNCTION orders_outbox_notify();
"""

DROP_SQL = """
DROP TRIGGER orders_outbox_notify ON orders_outboxmessage;
DROP FUNCTION orders_outbox_notify();
"""


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_analytics_indexes")]

    operations = [migrations.RunSQL(NOTIFY_SQL, DROP_SQL)]
