"""The console's courier stream (`/console/couriers/stream/`) served by uvicorn on the test
database and the real Redis: a ping's move, through Django's view or the event loop's
route, reaches an operator's stream as the courier's answer; an owner's gets the moves of
the couriers carrying its orders and no other; who may not see the console may not open
it; a late ping moves nobody; keep-alive comments; resuming with Last-Event-ID; a Redis
that does not answer fails no ping."""

import json
import signal
import time
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from delivery.models import Courier
from delivery.selectors import courier_answer, couriers_on_map
from delivery.services import courier_create
from orders.models import Order
from tests import factories
from tests.console.shops import shop_with_order
from tests.market import api_client_as
from tests.redis_server import RedisServer
from tests.search.served import closed_port, in_thread
from tests.search.served import served as served_in_process
from tests.uvicorn_served import (
    KEEPALIVE_SECONDS,
    EventStream,
    key_prefix,
    same_keys,
    served,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)

KEY_PREFIX = key_prefix("courier-stream")
PING = "/api/v1/couriers/me/location/"
STREAM = "/console/couriers/stream/"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), served(prefix=KEY_PREFIX) as base_url:
        yield base_url


@pytest.fixture
def base_url(server, settings):
    # The pings publish under the served process's keys.
    same_keys(settings, KEY_PREFIX)
    return server


def rider(name: str, *, carrying: Order | None = None, status: str = "ready") -> Courier:
    """A courier at 13.4, 52.5, given the order `carrying`, put in `status` (ready: its
    owner sees where the courier is)."""
    courier = courier_create(
        user=factories.user(), name=name, vehicle="bike", capacity=2, status="available"
    )
    Courier.objects.filter(pk=courier.pk).update(location=Point(13.4, 52.5, srid=4326))
    if carrying is not None:
        Order.objects.filter(pk=carrying.pk).update(courier=courier, status=status)
    return courier


@pytest.fixture
def fleet():
    """Two merchants' owners, a courier carrying each one's order, and one carrying none."""
    mine_owner, _, mine_order = shop_with_order("Mine", 52.52)
    theirs_owner, _, theirs_order = shop_with_order("Theirs", 52.53)
    return {
        "owner": mine_owner,
        "other_owner": theirs_owner,
        "mine": rider("Mine's rider", carrying=mine_order),
        "theirs": rider("Theirs' rider", carrying=theirs_order),
        "free": rider("Free rider"),
        "operator": factories.user(is_staff=True),
    }


_steps = iter(range(1, 100_000))


def ping(courier: Courier) -> tuple[float, float]:
    """A ping through Django's view, each at a new point; the point (lng, lat)."""
    point = (13.4, 52.5 + next(_steps) * 1e-5)
    answer = api_client_as(courier.user).post(
        PING, {"lat": point[1], "lng": point[0]}, format="json"
    )
    assert answer.status_code == 200, answer.content
    return point


def open_stream(base_url, settings, user, **headers) -> EventStream:
    cookie, _ = session_cookie(settings, user)
    stream = EventStream(f"{base_url}{STREAM}", headers={**cookie, **headers})
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.message() == {"comment": "keep-alive"}  # open: subscribed
    return stream


@pytest.fixture
def streams():
    opened: list[EventStream] = []
    yield opened
    for stream in opened:
        stream.close()


def moved(stream: EventStream) -> dict:
    """The next move on the stream: the courier's answer."""
    event = stream.event()
    assert event["event"] == "courier"
    assert event["id"]
    return json.loads(event["data"])


def test_a_ping_through_django_reaches_an_operators_stream_as_the_couriers_answer(
    base_url, settings, fleet, streams
):
    streams.append(stream := open_stream(base_url, settings, fleet["operator"]))
    point = ping(fleet["mine"])
    courier = moved(stream)
    # As the console's snapshot (`couriers_on_map`) gives it.
    assert courier == courier_answer(courier_id=fleet["mine"].pk)
    assert courier["location"] == {"type": "Point", "coordinates": list(point)}
    assert courier["active_orders"] == 1


async def learned_then_routed(courier: Courier, django_entries) -> None:
    """Two pings of `courier`, at 13.41, 52.51 then 52.52, through the ASGI application:
    the first teaches the event loop's route, the second is the route's."""
    headers = {"Authorization": f"Token {courier.user.auth_token.key}"}
    async with served_in_process() as client:
        for lat in (52.51, 52.52):
            answer = await client.post(PING, json={"lat": lat, "lng": 13.41}, headers=headers)
            assert answer.status_code == 200
    assert len(django_entries) == 1


async def test_a_ping_through_the_event_loop_route_reaches_the_stream(
    base_url, settings, fleet, streams, django_entries, async_pool_closed
):
    stream = await in_thread(open_stream, base_url, settings, fleet["operator"])
    streams.append(stream)
    await learned_then_routed(fleet["free"], django_entries)
    first, second = moved(stream), moved(stream)
    assert [first["location"]["coordinates"], second["location"]["coordinates"]] == [
        [13.41, 52.51],
        [13.41, 52.52],
    ]
    assert second == await in_thread(courier_answer, courier_id=fleet["free"].pk)


def test_an_owner_sees_only_the_couriers_carrying_its_orders(base_url, settings, fleet, streams):
    streams.append(owners := open_stream(base_url, settings, fleet["owner"]))
    streams.append(operators := open_stream(base_url, settings, fleet["operator"]))
    for name in ("theirs", "free", "mine", "theirs", "free", "mine"):
        ping(fleet[name])
    seen = [moved(operators)["id"] for _ in range(6)]
    assert seen == [fleet[name].pk for name in ("theirs", "free", "mine") * 2]
    # Published in that order on one channel: the others' moves, had they come, would
    # have come first.
    assert [moved(owners)["id"] for _ in range(2)] == [fleet["mine"].pk] * 2
    assert owners.message() == {"comment": "keep-alive"}


def test_an_owner_sees_a_move_as_its_snapshot_shows_the_courier(base_url, settings, fleet, streams):
    """A courier carrying an order of each merchant: each owner's stream shows it as the
    owner's snapshot does (no count of its orders, no status, no room left), the
    operator's as operators see it."""
    Order.objects.filter(courier=fleet["theirs"]).update(courier=fleet["mine"])
    streams.append(owners := open_stream(base_url, settings, fleet["owner"]))
    streams.append(others := open_stream(base_url, settings, fleet["other_owner"]))
    streams.append(operators := open_stream(base_url, settings, fleet["operator"]))
    ping(fleet["mine"])
    assert moved(operators) == courier_answer(courier_id=fleet["mine"].pk)
    for stream, owner in ((owners, fleet["owner"]), (others, fleet["other_owner"])):
        courier = moved(stream)
        assert set(courier) == {"id", "name", "vehicle", "location", "location_updated_at"}
        assert [courier] == couriers_on_map(merchant_id=owner.merchant.pk)


def test_an_owner_sees_a_courier_move_only_once_its_order_is_ready(
    base_url, settings, fleet, streams
):
    # Its merchant's order confirmed, then preparing: not yet the owner's to see.
    order = Order.objects.get(courier=fleet["mine"])
    streams.append(owners := open_stream(base_url, settings, fleet["owner"]))
    streams.append(operators := open_stream(base_url, settings, fleet["operator"]))
    points = {}
    for status in ("confirmed", "preparing", "ready", "picked_up"):
        Order.objects.filter(pk=order.pk).update(status=status)
        points[status] = ping(fleet["mine"])
        assert moved(operators)["id"] == fleet["mine"].pk
    # Published in that order: the moves while confirmed or preparing, had they come,
    # would have come first.
    assert [moved(owners)["location"]["coordinates"] for _ in range(2)] == [
        list(points["ready"]),
        list(points["picked_up"]),
    ]
    assert owners.message() == {"comment": "keep-alive"}


def test_a_late_ping_moves_nobody_on_the_stream(base_url, settings, fleet, streams):
    streams.append(stream := open_stream(base_url, settings, fleet["operator"]))
    ping(fleet["mine"])
    moved(stream)
    late = (timezone.now() - timedelta(minutes=5)).isoformat()
    answer = api_client_as(fleet["mine"].user).post(
        PING, {"lat": 52.4, "lng": 13.3, "recorded_at": late}, format="json"
    )
    assert answer.status_code == 200
    point = ping(fleet["mine"])
    assert moved(stream)["location"]["coordinates"] == list(point)


def test_those_who_may_not_see_the_console_may_not_open_the_stream(client, fleet):
    anonymous = client.get(STREAM)
    assert anonymous.status_code == client.get("/console/data/").status_code == 302
    assert anonymous["Location"].startswith("/console/login/")
    for user in (factories.user(), fleet["mine"].user):
        client.force_login(user)
        assert client.get(STREAM).status_code == client.get("/console/data/").status_code == 403


def test_a_quiet_stream_gets_a_comment_every_interval(base_url, settings, fleet, streams):
    streams.append(stream := open_stream(base_url, settings, fleet["operator"]))
    started = time.monotonic()
    for _ in range(3):
        assert stream.message() == {"comment": "keep-alive"}
    # One per interval (with room for a busy machine: a stream without them stays silent).
    assert time.monotonic() - started < 3 * KEEPALIVE_SECONDS + 2.5


def test_last_event_id_gives_the_moves_missed(base_url, settings, fleet, streams):
    streams.append(first := open_stream(base_url, settings, fleet["owner"]))
    ping(fleet["mine"])
    seen = first.event()["id"]
    first.close()
    missed = [ping(fleet["mine"]), ping(fleet["theirs"]), ping(fleet["mine"])]
    streams.append(
        again := open_stream(base_url, settings, fleet["owner"], **{"Last-Event-ID": seen})
    )
    assert [moved(again)["location"]["coordinates"] for _ in range(2)] == [
        list(missed[0]),
        list(missed[2]),
    ]


SILENT_REDIS_TIMEOUT = 4


def test_pings_are_answered_while_redis_does_not_answer(tmp_path, settings, fleet):
    """The first ping to find Redis silent waits the socket timeout; those after it, behind
    the breaker, do not. The timeout is long enough that a busy machine's slow ping is not
    taken for one that waited."""
    redis = RedisServer(tmp_path)
    redis.start()
    cache = settings.CACHES["default"]
    options = {**cache["OPTIONS"], "SOCKET_TIMEOUT": SILENT_REDIS_TIMEOUT}
    settings.CACHES = {"default": {**cache, "LOCATION": redis.url, "OPTIONS": options}}
    settings.CACHE_BREAKER_SECONDS = 5
    waits = []
    redis.process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            started = time.monotonic()
            ping(fleet["mine"])
            waits.append(time.monotonic() - started)
    finally:
        redis.process.send_signal(signal.SIGCONT)
        redis.stop()
    assert waits[0] >= SILENT_REDIS_TIMEOUT * 0.9, waits
    assert max(waits[1:]) < SILENT_REDIS_TIMEOUT / 2, waits


async def test_routed_pings_are_answered_while_redis_is_down(
    settings, fleet, django_entries, async_pool_closed
):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    await learned_then_routed(fleet["free"], django_entries)
