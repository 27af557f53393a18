from django.db import migrations

# A statement-level trigger with a transition table fires for every INSERT, rows or not,
# and builds its table: a location ping's statement always runs its (nearly always empty)
# geofence INSERT into events_event, and that firing was a fifth of the ping's time in
# PostgreSQL. A row-level trigger fires only for rows inserted; PostgreSQL sends one
# notification per transaction for the same channel and payload, however many rows.
FORWARD = """
DROP TRIGGER events_event_notify ON events_event;
CREATE OR REPLACE FUNCTION events_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_event_notify
    AFTER INSERT ON events_event
    FOR EACH ROW EXECUTE FUNCTION events_event_notify();
"""

BACKWARD = """
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


class Migration(migrations.Migration):
    dependencies = [("events", "0005_event_feed_position")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
