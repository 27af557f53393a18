"""GET orders/{id}/stream/ served by uvicorn, as in production, on the test database and
the real Redis: events through the service and the relay's publishing, resuming with
Last-Event-ID, keep-alive comments, tickets, every role's access and what each sees of the
courier, and no database connection or thread held by an open stream. In process, on the
real Redis: nothing published while a stream opens is lost to it."""

import asyncio
import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.test import APIRequestFactory, force_authenticate

from delivery.models import Courier
from delivery.services import courier_create, courier_ping
from events.services import events_publish
from events.streams import StreamEntry, order_stream_key, streams_publish
from merchants.models import Merchant
from orders.models import ACTIVE_DELIVERY_STATUSES, Order, OrderStatus
from orders.services import order_transition
from tests import factories, uvicorn_served
from tests.market import api_client_as, build_market, order_body
from tests.redis_server import RedisServer, SilencingProxy
from tests.tracking.tracked import order_with_courier
from tests.uvicorn_served import (
    KEEPALIVE_SECONDS,
    EventStream,
    key_prefix,
    same_keys,
    session_cookie,
)
from tracking.apis import OrderStreamApi
from tracking.stream import KEEPALIVE, hub

pytestmark = pytest.mark.django_db(transaction=True)

KEY_PREFIX = key_prefix("stream")
# Fewer pooled connections than the streams a test opens, and the event loop's pool of
# threads (cores + 4) is smaller too: a stream holding either would starve the others.
POOL_MAX = 2
SERVER_APP_NAME = "geomarket-stream-test-server"
OPEN_STREAMS = 12
# The contract's rule, written out: the statuses in which each role sees the courier.
SEES = {
    "customer": {"picked_up"},
    "owner": {"ready", "picked_up"},
    "courier": set(OrderStatus.values),
    "operator": set(OrderStatus.values),
}


def served(**env: str):
    """The application under uvicorn (`tests.uvicorn_served`), with `env` besides."""
    return uvicorn_served.served(
        prefix=KEY_PREFIX,
        DATABASE_POOL_MAX=str(POOL_MAX),
        # Its connections are told apart from those of other servers this test process
        # ran on the same database (the browser tests' live server keeps a pool), and
        # are its own, not a pooler's sessions that any client may have named last.
        PGAPPNAME=SERVER_APP_NAME,
        DATABASE_URL=uvicorn_served.direct_database_url(),
        **env,
    )


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), served() as base_url:
        yield base_url


@pytest.fixture
def base_url(server, settings):
    # The tests publish, and issue tickets, under the served process's keys.
    same_keys(settings, KEY_PREFIX)
    return server


class Stream(EventStream):
    """An order's open stream."""

    def __init__(self, base_url, order_id, **kwargs):
        super().__init__(f"{base_url}/api/v1/orders/{order_id}/stream/", **kwargs)

    def events_until_status(self, status: str) -> list[dict]:
        """The events up to the first `status` event giving `status`, that one included."""
        seen = []
        while True:
            seen.append(event := self.event())
            if event["event"] == "status" and f'"status":"{status}"' in event["data"]:
                return seen


@pytest.fixture
def streams():
    opened: list[Stream] = []

    def open_stream(*args, **kwargs) -> Stream:
        stream = Stream(*args, **kwargs)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


@pytest.fixture
def tracked(as_user):
    market = build_market(as_user)
    order, courier, courier_user = order_with_courier(market)
    operator = factories.user(is_staff=True)
    users = {
        "customer": market["customer"],
        "owner": market["owner"],
        "courier": courier_user,
        "operator": operator,
    }
    events_publish()  # the placement's event, out of the way
    return {"order": order, "courier": courier, "users": users, "market": market}


def token(user) -> dict:
    return {"Authorization": f"Token {user.auth_token.key}"}


def transition(tracked, to_status: str) -> None:
    """A status change through the service, then the relay's publishing."""
    order_transition(
        order_id=tracked["order"].pk, actor=tracked["users"]["operator"], to_status=to_status
    )
    assert events_publish() == 1


def test_a_status_change_through_the_service_reaches_the_stream(base_url, tracked, streams):
    stream = streams(base_url, tracked["order"].pk, headers=token(tracked["users"]["customer"]))
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert "comment" in stream.message()  # open: subscribed before it says anything
    transition(tracked, "preparing")
    event = stream.event()
    assert event["event"] == "status"
    assert '"status":"preparing"' in event["data"]
    assert event["id"]


@pytest.mark.parametrize(("quantity", "status"), [(2, "confirmed"), (21, "rejected")])
def test_a_placement_gives_the_stream_the_orders_first_status(
    base_url, tracked, streams, quantity, status
):
    market = tracked["market"]
    placed = market["client"].post(
        "/api/v1/orders/", order_body(market, (market["bread"], quantity))
    )
    assert placed.json()["status"] == status
    stream = streams(base_url, placed.json()["id"], headers=token(market["customer"]))
    stream.message()
    assert events_publish() == 1
    event = stream.event()
    assert event["event"] == "status"
    assert f'"status":"{status}"' in event["data"]


def test_last_event_id_gives_what_was_missed_then_what_comes(base_url, tracked, streams):
    order = tracked["order"]
    first = streams(base_url, order.pk, headers=token(tracked["users"]["owner"]))
    first.message()
    transition(tracked, "preparing")
    seen = first.event()["id"]
    first.close()
    # Missed while away.
    transition(tracked, "ready")
    transition(tracked, "picked_up")
    again = streams(
        base_url, order.pk, headers={**token(tracked["users"]["owner"]), "Last-Event-ID": seen}
    )
    missed = [again.event(), again.event()]
    assert [
        '"status":"ready"' in missed[0]["data"],
        '"status":"picked_up"' in missed[1]["data"],
    ] == [
        True,
        True,
    ]
    assert seen < missed[0]["id"] < missed[1]["id"]
    # Then live, each once.
    transition(tracked, "delivered")
    assert '"status":"delivered"' in again.event()["data"]


# In process: the view's answer before the server iterates it, and the hub


@pytest.fixture
def own_keys(settings):
    same_keys(settings, KEY_PREFIX)


def stream_answer(user, order_id):
    """The stream's answer as the view gives it, before the server starts iterating it
    (which subscribes)."""
    request = APIRequestFactory().get(f"/api/v1/orders/{order_id}/stream/")
    force_authenticate(request, user=user, token=user.auth_token)
    response = OrderStreamApi.as_view()(request, order_id=order_id)
    assert response.status_code == 200
    return response


async def first_event(response) -> bytes:
    """The first message of an answer that is not a comment, within 3 s."""
    chunks = aiter(response.streaming_content)
    try:
        async with asyncio.timeout(3):
            while (chunk := await anext(chunks)) == KEEPALIVE:
                pass
        return chunk
    finally:
        await chunks.aclose()
        hub_close()


def hub_close():
    for pipe in (hub.subscriber, hub.reader):
        if pipe is not None:
            pipe.close()


def test_what_is_published_while_a_stream_opens_reaches_it(tracked, own_keys):
    response = stream_answer(tracked["users"]["customer"], tracked["order"].pk)
    # Between the view's answer and the stream's subscribing.
    transition(tracked, "preparing")
    event = asyncio.run(first_event(response))
    assert b"event: status" in event
    assert b'"status":"preparing"' in event


def test_a_busy_stream_still_gets_a_comment_every_interval(tracked, own_keys, settings):
    settings.ORDER_STREAM_KEEPALIVE_SECONDS = 0.2
    response = stream_answer(tracked["users"]["customer"], tracked["order"].pk)

    async def comments_while_entries_keep_coming() -> int:
        chunks = aiter(response.streaming_content)
        assert await anext(chunks) == KEEPALIVE  # the first, at once
        comments = 0
        try:
            for _ in range(14):
                # An entry every 0.05 s (a courier's points), so none is ever quiet.
                await asyncio.to_thread(
                    streams_publish,
                    entries=[status_entry(tracked["order"].pk, "picked_up")],
                )
                async with asyncio.timeout(3):
                    while await anext(chunks) == KEEPALIVE:
                        comments += 1
                await asyncio.sleep(0.05)
        finally:
            await chunks.aclose()
            hub_close()
        return comments

    assert asyncio.run(comments_while_entries_keep_coming()) >= 2


def test_a_second_stream_of_an_order_waits_for_the_channel_to_be_subscribed(
    tracked, own_keys, monkeypatch
):
    channel = order_stream_key(tracked["order"].pk).encode()

    async def second_stream_hears() -> bytes:
        subscriber, _ = hub._pipes()
        execute = subscriber.execute

        async def slow_subscribe(*command):
            if command[0] == "SUBSCRIBE":
                await asyncio.sleep(0.3)
            return await execute(*command)

        monkeypatch.setattr(subscriber, "execute", slow_subscribe)
        first = asyncio.ensure_future(hub.follow(channel))
        await asyncio.sleep(0)  # the first stream's SUBSCRIBE is on its way
        second = await hub.follow(channel)
        try:
            streams_publish(entries=[status_entry(tracked["order"].pk, "preparing")])
            async with asyncio.timeout(3):
                return await second.get()
        finally:
            hub.leave(channel, second)
            hub.leave(channel, await first)
            hub_close()

    assert b'"status":"preparing"' in asyncio.run(second_stream_hears())


@pytest.mark.parametrize(
    "last_event_id", ["yesterday", f"{2**64}-0", f"0-{2**64}", "99999999999999999999-0"]
)
def test_a_malformed_last_event_id_is_a_400(base_url, tracked, last_event_id):
    answer = httpx.get(
        f"{base_url}/api/v1/orders/{tracked['order'].pk}/stream/",
        headers={**token(tracked["users"]["owner"]), "Last-Event-ID": last_event_id},
    )
    assert answer.status_code == 400
    assert "Last-Event-ID" in answer.json()


def test_the_last_id_redis_can_give_misses_nothing_and_the_stream_stays_open(
    base_url, tracked, streams
):
    last = f"{2**64 - 1}-{2**64 - 1}"
    stream = streams(
        base_url,
        tracked["order"].pk,
        headers={**token(tracked["users"]["owner"]), "Last-Event-ID": last},
    )
    assert stream.message() == {"comment": "keep-alive"}
    # Open past its first line: the keep-alive that follows it comes.
    assert stream.message() == {"comment": "keep-alive"}


def test_a_quiet_stream_gets_a_comment_every_interval(base_url, tracked, streams):
    stream = streams(base_url, tracked["order"].pk, headers=token(tracked["users"]["customer"]))
    started = time.monotonic()
    for _ in range(4):
        assert stream.message() == {"comment": "keep-alive"}
    # The first at once, then one per interval.
    # (With room for a busy machine: a stream without them would stay silent.)
    assert time.monotonic() - started < 3 * KEEPALIVE_SECONDS + 2.5


def ticket_for(user, order_id) -> dict:
    answer = api_client_as(user).post(f"/api/v1/orders/{order_id}/stream-ticket/")
    assert answer.status_code == 201, answer.content
    return answer.json()


def stream_status(base_url, order_id, **kwargs) -> int:
    with httpx.stream(
        "GET", f"{base_url}/api/v1/orders/{order_id}/stream/", timeout=5, **kwargs
    ) as answer:
        return answer.status_code


def test_a_ticket_opens_the_stream_once(base_url, tracked, streams):
    order = tracked["order"]
    issued = ticket_for(tracked["users"]["customer"], order.pk)
    expires_at = timezone.datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
    assert abs(expires_at - (timezone.now() + timedelta(seconds=60))) < timedelta(seconds=5)
    stream = streams(base_url, order.pk, params={"ticket": issued["ticket"]})
    assert stream.response.status_code == 200
    stream.message()
    transition(tracked, "preparing")
    assert '"status":"preparing"' in stream.event()["data"]
    assert stream_status(base_url, order.pk, params={"ticket": issued["ticket"]}) == 401


def test_a_ticket_expires(base_url, tracked, settings):
    settings.STREAM_TICKET_SECONDS = 1
    issued = ticket_for(tracked["users"]["customer"], tracked["order"].pk)
    time.sleep(1.5)
    assert stream_status(base_url, tracked["order"].pk, params={"ticket": issued["ticket"]}) == 401


def test_a_ticket_opens_only_its_order(base_url, tracked, as_user):
    market = tracked["market"]
    other = market["client"].post("/api/v1/orders/", order_body(market, (market["bread"], 2)))
    issued = ticket_for(tracked["users"]["customer"], tracked["order"].pk)
    assert stream_status(base_url, other.json()["id"], params={"ticket": issued["ticket"]}) == 401
    # Spent by that try, too.
    assert stream_status(base_url, tracked["order"].pk, params={"ticket": issued["ticket"]}) == 401


def test_a_ticket_is_only_for_who_may_follow_the_order(tracked):
    answer = api_client_as(factories.user()).post(
        f"/api/v1/orders/{tracked['order'].pk}/stream-ticket/"
    )
    assert answer.status_code == 404
    anonymous = api_client_as(None).post(f"/api/v1/orders/{tracked['order'].pk}/stream-ticket/")
    assert anonymous.status_code == 401


def test_a_ticket_stream_is_its_users(base_url, tracked, streams):
    """A customer's ticket sees what the customer sees: no courier before pickup."""
    order = tracked["order"]
    Order.objects.filter(pk=order.pk).update(status="ready")
    issued = ticket_for(tracked["users"]["customer"], order.pk)
    stream = streams(base_url, order.pk, params={"ticket": issued["ticket"]})
    stream.message()
    ping_then_mark(tracked, "ready")
    assert [event["event"] for event in stream.events_until_status("ready")] == ["eta", "status"]


def test_strangers_other_couriers_and_anonymous_callers_are_refused(base_url, tracked):
    order_id = tracked["order"].pk
    other_courier = factories.user()
    courier_create(user=other_courier, name="Other", vehicle="bike", capacity=1, status="available")
    assert stream_status(base_url, order_id, headers=token(factories.user())) == 404
    assert stream_status(base_url, order_id, headers=token(other_courier)) == 404
    assert stream_status(base_url, order_id) == 401
    assert stream_status(base_url, order_id, params={"ticket": "no-such-ticket"}) == 401


def test_a_session_opens_the_stream(base_url, tracked, settings):
    cookie, session = session_cookie(settings, tracked["users"]["owner"])
    assert stream_status(base_url, tracked["order"].pk, headers=cookie) == 200
    session.flush()
    assert stream_status(base_url, tracked["order"].pk, headers=cookie) == 401


def status_entry(order_id: int, status: str) -> StreamEntry:
    """A status entry as the relay publishes it, straight to the order's stream."""
    return StreamEntry(
        order_id=order_id,
        event="status",
        status=status,
        data={"status": status, "at": "2026-01-01T00:00:00Z"},
    )


_pings = iter(range(1, 10_000))


def ping_then_mark(tracked, status: str) -> None:
    """A ping of the order's courier, then a status entry after it, as a mark: a stream
    has seen every location of the ping by the time it reads the mark."""
    shop = tracked["market"]["shop"]
    step = next(_pings) * 1e-5
    courier_ping(user=tracked["users"]["courier"], lat=shop.location.y - step, lng=shop.location.x)
    streams_publish(entries=[status_entry(tracked["order"].pk, status)])


def test_each_role_sees_the_courier_only_as_the_rule_says(base_url, tracked, streams):
    order = tracked["order"]
    opened = {
        role: streams(base_url, order.pk, headers=token(user))
        for role, user in tracked["users"].items()
    }
    for stream in opened.values():
        stream.message()
    for status in OrderStatus.values:
        Order.objects.filter(pk=order.pk).update(status=status)
        ping_then_mark(tracked, status)
        for role, stream in opened.items():
            locations = [
                event
                for event in stream.events_until_status(status)
                if event["event"] == "location"
            ]
            # Pings reach the streams of the courier's active orders only.
            expected = status in SEES[role] and status in ACTIVE_DELIVERY_STATUSES
            assert len(locations) == int(expected), (role, status)
            if expected:
                courier = Courier.objects.get(pk=tracked["courier"].pk)
                assert f'"courier_id":{courier.pk}' in locations[0]["data"]
                point = Point(courier.location.x, courier.location.y)
                assert f'"coordinates":[{point.x},{point.y}]' in locations[0]["data"]


def test_a_late_ping_reaches_no_stream(base_url, tracked, streams):
    order = tracked["order"]
    stream = streams(base_url, order.pk, headers=token(tracked["users"]["operator"]))
    stream.message()
    ping_then_mark(tracked, "confirmed")
    assert [event["event"] for event in stream.events_until_status("confirmed")] == [
        "location",
        "eta",
        "status",
    ]
    shop = tracked["market"]["shop"]
    courier_ping(
        user=tracked["users"]["courier"],
        lat=shop.location.y,
        lng=shop.location.x,
        recorded_at=timezone.now() - timedelta(minutes=5),
    )
    streams_publish(entries=[status_entry(order.pk, "preparing")])
    assert [event["event"] for event in stream.events_until_status("preparing")] == ["status"]


def test_open_streams_hold_no_connection_and_no_thread(base_url, tracked, streams):
    order = tracked["order"]
    user = tracked["users"]["customer"]
    # Opened all at once: each opening's view runs on a thread of its own.
    with ThreadPoolExecutor(OPEN_STREAMS) as pool:
        opened = list(
            pool.map(
                lambda _: streams(base_url, order.pk, headers=token(user)), range(OPEN_STREAMS)
            )
        )
    for stream in opened:
        assert stream.response.status_code == 200
        stream.message()
    # Requests through Django still get a connection and a thread at once.
    started = time.monotonic()
    answer = httpx.get(f"{base_url}/api/v1/orders/{order.pk}/tracking/", headers=token(user))
    assert answer.status_code == 200
    assert time.monotonic() - started < 2.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [SERVER_APP_NAME],
        )
        # At least one: the filter does match the server's connections.
        assert 1 <= cursor.fetchone()[0] <= POOL_MAX
    # And every stream still gets its events.
    transition(tracked, "preparing")
    for stream in opened:
        assert '"status":"preparing"' in stream.event()["data"]


def test_a_stream_closed_by_its_client_leaves_its_channel(base_url, tracked, streams):
    channel = order_stream_key(tracked["order"].pk)
    redis = get_redis_connection("default")
    stream = streams(base_url, tracked["order"].pk, headers=token(tracked["users"]["owner"]))
    stream.message()
    assert redis.pubsub_numsub(channel) == [(channel.encode(), 1)]
    stream.close()
    deadline = time.monotonic() + 3
    while redis.pubsub_numsub(channel) != [(channel.encode(), 0)]:
        assert time.monotonic() < deadline, "still subscribed"
        time.sleep(0.05)


@pytest.mark.parametrize("status", ["preparing", "picked_up"])
def test_the_estimate_comes_with_each_point_as_tracking_gives_it(
    base_url, tracked, streams, status
):
    order = tracked["order"]
    customer = tracked["users"]["customer"]
    Order.objects.filter(pk=order.pk).update(status=status)
    # While preparing, both count the merchant's learned preparation time.
    Merchant.objects.filter(pk=order.merchant_id).update(learned_prep_time_s=123)
    stream = streams(base_url, order.pk, headers=token(customer))
    stream.message()
    ping_then_mark(tracked, status)
    (eta,) = [event for event in stream.events_until_status(status) if event["event"] == "eta"]
    tracking = api_client_as(customer).get(f"/api/v1/orders/{order.pk}/tracking/").json()
    assert json.loads(eta["data"]) == {"eta_s": tracking["eta_s"]}


def test_a_stopping_server_ends_its_open_streams(base_url, tracked):
    """A stream never ends by itself: the server gives it a few seconds, not forever."""
    stream = None
    try:
        with served() as own_url:
            stream = Stream(own_url, tracked["order"].pk, headers=token(tracked["users"]["owner"]))
            stream.message()
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 15
    finally:
        if stream is not None:
            stream.close()


# Redis stops while streams are open


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis of the test's own, which it stops and starts again, for the cache (and so
    the streams) of this process and of the server it serves."""
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": server.url, "KEY_PREFIX": KEY_PREFIX}
    }
    yield server
    if server.process.poll() is None:
        server.stop()


def ends_cleanly(stream: Stream, *, within: float) -> None:
    """The stream ends within `within` seconds, as an answer ends: cut off, reading it
    raises."""
    deadline = time.monotonic() + within
    for _ in stream.lines:
        assert time.monotonic() < deadline, "still open"


def test_open_streams_end_when_redis_stops_and_resume_once_it_is_back(own_redis, tracked, streams):
    order = tracked["order"]
    with served(REDIS_URL=own_redis.url, CELERY_BROKER_URL=settings.CELERY_BROKER_URL) as url:
        opened = {
            role: streams(url, order.pk, headers=token(user))
            for role, user in tracked["users"].items()
        }
        for stream in opened.values():
            stream.message()
        transition(tracked, "preparing")
        seen = {role: stream.event()["id"] for role, stream in opened.items()}

        own_redis.stop()
        for stream in opened.values():
            ends_cleanly(stream, within=5)
        customer = token(tracked["users"]["customer"])
        # Other requests are answered meanwhile, and so is a stream opening, which ends
        # at once: an EventSource tries again, as it does after any stream that ends.
        started = time.monotonic()
        tracking = httpx.get(f"{url}/api/v1/orders/{order.pk}/tracking/", headers=customer)
        assert tracking.status_code == 200
        assert tracking.json()["status"] == "preparing"
        assert time.monotonic() - started < 2.0
        during = streams(url, order.pk, headers=customer)
        assert during.response.status_code == 200
        ends_cleanly(during, within=5)
        transition(tracked, "ready")  # lost to the streams, as Redis is

        own_redis.start()
        again = {
            role: streams(
                url, order.pk, headers={**token(tracked["users"][role]), "Last-Event-ID": last}
            )
            for role, last in seen.items()
        }
        for stream in again.values():
            stream.message()
        transition(tracked, "picked_up")
        for stream in again.values():
            event = stream.event()
            assert '"status":"picked_up"' in event["data"]
            assert event["id"] > seen["customer"]
            # Before the server stops, which would give an open stream seconds to end.
            stream.close()


def test_while_redis_does_not_answer_stream_openings_wait_for_it_once(own_redis, tracked, settings):
    """Each opening holds a thread while it reads where the order's stream stands: the
    first to find Redis silent waits the socket timeout, those after it do not wait."""
    settings.CACHE_BREAKER_SECONDS = 5
    customer, order_id = tracked["users"]["customer"], tracked["order"].pk
    waits = []
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            started = time.monotonic()
            stream_answer(customer, order_id)
            waits.append(time.monotonic() - started)
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    assert waits[0] >= 0.9
    assert max(waits[1:]) < 0.5, waits


def resumed(base_url, order_id, headers: dict, last_event_id: str, *, within: float) -> dict:
    """The next event, as an EventSource gets it: reconnecting with the last id it saw
    each time the stream ends."""
    deadline = time.monotonic() + within
    while True:
        stream = Stream(base_url, order_id, headers={**headers, "Last-Event-ID": last_event_id})
        try:
            return stream.event()
        except AssertionError:
            assert time.monotonic() < deadline, "no event came"
        finally:
            stream.close()


def test_streams_on_a_redis_connection_gone_silent_end_and_resume(own_redis, tracked, streams):
    order = tracked["order"]
    customer = token(tracked["users"]["customer"])
    proxy = SilencingProxy(own_redis.port)
    try:
        with served(REDIS_URL=proxy.url, CELERY_BROKER_URL=settings.CELERY_BROKER_URL) as url:
            stream = streams(url, order.pk, headers=customer)
            stream.message()
            transition(tracked, "preparing")
            seen = stream.event()["id"]
            proxy.silence()
            # Straight to Redis: the server's connections hear nothing of it.
            transition(tracked, "ready")
            ends_cleanly(stream, within=5)
            event = resumed(url, order.pk, customer, seen, within=10)
            assert '"status":"ready"' in event["data"]
    finally:
        proxy.close()
