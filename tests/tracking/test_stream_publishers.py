"""An order's status changes reach its Redis stream in the order they were made, whatever
publishes them: two publishers at once (the outbox relay and the `outbox-relay` beat
task), or one that meets an event row another session holds."""

import json
import time

import psycopg
import pytest
from django_redis import get_redis_connection

from events import services
from events.models import Event
from events.services import events_feed_positions_assign, events_publish
from events.streams import order_stream_key
from geomarket.sql import own_connection_params
from orders.services import order_transition
from tests import factories
from tests.market import build_market
from tests.threads import TIMEOUT_SECONDS, Worker, behind_an_uncommitted_write
from tests.tracking.tracked import order_with_courier

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moving(as_user):
    """`move(status)`: the operator moves an order to `status` (its placement's status
    already published)."""
    order, _courier, _user = order_with_courier(build_market(as_user))
    operator = factories.user(is_staff=True)
    events_publish()

    def move(to_status: str):
        return order_transition(order_id=order.pk, actor=operator, to_status=to_status)

    move.order = order
    return move


def _statuses(order_id: int) -> list[str]:
    entries = get_redis_connection("default").xrange(order_stream_key(order_id))
    return [json.loads(fields[b"d"])["status"] for _id, fields in entries]


def _until_ended_or_waiting(worker: Worker) -> None:
    """Wait until `worker` has ended or a session of this database waits on a lock."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    with psycopg.connect(**own_connection_params(), autocommit=True) as observer:
        while (
            worker.is_alive()
            and not observer.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND cardinality(pg_blocking_pids(pid)) > 0"
            ).fetchone()
        ):
            assert time.monotonic() < deadline, "the second publisher neither ended nor waited"
            time.sleep(0.01)


def _in_thread(call):
    worker = Worker(call)
    worker.start()
    return worker


def test_a_later_status_published_beside_an_earlier_one_does_not_overtake_it(moving, monkeypatch):
    moving("preparing")
    entries_of = services.stream_entries_of
    second: list[Worker] = []

    def entries_of_first_batch(events):
        if not second:
            # The first publisher has taken `preparing` and not yet published it: the
            # order moves on, and a second publisher runs, to its end or until it waits.
            _in_thread(lambda: moving("ready")).outcome()
            second.append(_in_thread(events_publish))
            _until_ended_or_waiting(second[0])
        return entries_of(events)

    monkeypatch.setattr(services, "stream_entries_of", entries_of_first_batch)
    assert events_publish() == 1
    assert second[0].outcome() == 1
    assert _statuses(moving.order.pk) == ["confirmed", "preparing", "ready"]


def test_a_publisher_does_not_pass_an_event_whose_row_another_session_holds(moving):
    moving("preparing")
    moving("ready")
    events_feed_positions_assign()
    held = Event.objects.get(order_id=moving.order.pk, data__to_status="preparing").pk
    # Another session holds its row until it commits, as a feed read placing it does.
    published = behind_an_uncommitted_write(
        "SELECT 1 FROM events_event WHERE id = %s FOR UPDATE", [held], events_publish
    )
    assert published == 2
    assert _statuses(moving.order.pk) == ["confirmed", "preparing", "ready"]
