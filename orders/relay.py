"""The outbox relay: publishes order confirmations to Celery as soon as they commit.

Placing an order writes its confirmation to the outbox in the order's own transaction;
a trigger on the outbox NOTIFYs the `orders_outbox` channel, which PostgreSQL delivers
when that transaction commits. The relay LISTENs on that channel and publishes whatever
is pending at once, in batches, so the web process does no broker work per order.
Events (the `events` app) are their own outbox, with a channel of their own: the relay
records the webhook deliveries they owe, then hands over every owed delivery that is due:
new ones, retries whose time has come and those sent once but never recorded as
attempted (found by the sweep: nothing notifies when a delivery falls due).

Nothing depends on the notification arriving: the relay also sweeps every
`sweep_seconds`, Celery beat runs the same publishing every few seconds, and every
message stays pending in the database until the broker has taken it, then unsettled,
and sent again now and then, until its task has run (`outbox_resend`).
"""

import logging
import threading

import psycopg
from django.db import DatabaseError, close_old_connections, connections

from events.services import EVENTS_CHANNEL, events_publish, webhook_deliveries_publish
from geomarket.db.direct import direct_connection_params
from orders.services import outbox_publish, outbox_resend

logger = logging.getLogger(__name__)

CHANNEL = "orders_outbox"
BATCH = 500
RECONNECT_SECONDS = 1.0


# What a relay round publishes, in this order (the `outbox-relay` beat task too): events
# record their deliveries before the deliveries due are handed over.
PUBLISHERS = (outbox_publish, outbox_resend, events_publish, webhook_deliveries_publish)


def _publish_pending() -> int:
    total = 0
    for publish in PUBLISHERS:
        while (sent := publish(batch=BATCH)) == BATCH:
            total += sent
        total += sent
    return total


def _listener() -> psycopg.Connection:
    # A LISTEN belongs to one server session: through a transaction pooler it would be
    # left on a session lent to others, and the notifications with it.
    listener = psycopg.connect(**direct_connection_params(), autocommit=True)
    for channel in (CHANNEL, EVENTS_CHANNEL):
        listener.execute(f"LISTEN {channel}")
    return listener


def relay_outbox(*, sweep_seconds: float, stop: threading.Event) -> None:
    """Publish pending messages on every notification and every `sweep_seconds`, until
    `stop` is set."""
    while not stop.is_set():
        try:
            with _listener() as listener:
                while not stop.is_set():
                    # Published after listening, so nothing committed before is missed.
                    _publish_pending()
                    close_old_connections()
                    # Wakes at the first notification; those that came meanwhile are
                    # read with it, and one publishing round serves them all.
                    for _ in listener.notifies(timeout=sweep_seconds, stop_after=1):
                        pass
        except (psycopg.Error, DatabaseError) as exc:
            logger.warning("outbox relay: database unavailable, retrying: %r", exc)
            connections.close_all()
            stop.wait(RECONNECT_SECONDS)
    connections.close_all()
