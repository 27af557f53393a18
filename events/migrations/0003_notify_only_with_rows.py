from django.db import migrations

# A statement-level trigger fires for an INSERT of no rows too, and a location ping's
# statement always runs its (usually empty) geofence INSERT into events_event: without
# this, every ping would NOTIFY, and PostgreSQL serialises the commits of notifying
# transactions (a database-wide lock), on the busiest write. Only statements that
# inserted rows notify now.
FORWARD = """
DROP TRIGGER events_event_notify ON events_event;
CREATE OR REPLACE FUNCTION events_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('events_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_event_notify
    AFTER INSERT ON events_event REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION events_event_notify();
"""

BACKWARD = """
DROP TRIGGER events_event_notify ON events_event;
CREATE OR REPLACE FUNCTION events_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_event_notify
    AFTER INSERT ON events_event
    FOR EACH STATEMENT EXECUTE FUNCTION events_event_notify();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0002_event_notify")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
