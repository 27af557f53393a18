from django.db import migrations

# Every transaction that records events notifies the outbox relay (`orders.relay`) as it
# commits: PostgreSQL delivers a NOTIFY only on commit, once per transaction and channel.
NOTIFY_SQL = """
CREATE FUNCTION events_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_event_notify
    AFTER INSERT ON events_event
    FOR EACH STATEMENT EXECUTE FUNCTION events_event_notify();
"""

DROP_SQL = """
DROP TRIGGER events_event_notify ON events_event;
DROP FUNCTION events_event_notify();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunSQL(NOTIFY_SQL, DROP_SQL)]
