"""Location pings on the ASGI event loop: the same effect and answer as Django's, only for
requests Django would answer with a 200, and Django whenever anything is off."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_redis import get_redis_connection

from delivery.models import Courier
from events.models import Event
from events.streams import order_stream_key
from geomarket.lane import async_db
from orders.models import Order
from tests import factories
from tests.delivery.placing import order_placed
from tests.delivery.test_tracks import track_rows as kept
from tests.search.served import closed_port, in_thread, served

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_pool_closed"),
]

PING = "/api/v1/couriers/me/location/"
BODY = {"lat": 52.5301, "lng": 13.4102, "heading": 90.0, "speed_mps": 4.2, "accuracy_m": 6.0}


def token_headers(user) -> dict:
    return {"Authorization": f"Token {user.auth_token.key}"}


def point_of(courier_id: int) -> tuple:
    courier = Courier.objects.get(pk=courier_id)
    return courier.location.y, courier.location.x, courier.location_updated_at


@pytest.fixture
def courier(make_courier):
    made = make_courier(status="offline")
    made.headers = token_headers(made.user)
    return made


async def test_a_ping_is_kept_and_answered_as_django_keeps_and_answers_it(
    courier, settings, django_entries
):
    headers = courier.headers
    async with served() as client:
        learned = await client.post(PING, json={**BODY, "lat": 52.5}, headers=headers)
        assert len(django_entries) == 1
        routed = await client.post(PING, json=BODY, headers=headers)
        assert len(django_entries) == 1
        settings.PING_ROUTE = False
        reference = await client.post(PING, json={**BODY, "lat": 52.6}, headers=headers)
    assert len(django_entries) == 2
    assert learned.status_code == routed.status_code == reference.status_code == 200
    assert dict(routed.headers) == {
        **dict(reference.headers),
        "content-length": str(len(routed.content)),
    }
    ours, theirs = routed.json(), reference.json()
    assert ours.keys() == theirs.keys()
    assert ours["courier_id"] == theirs["courier_id"] == courier.pk
    assert (ours["lat"], ours["lng"]) == (BODY["lat"], BODY["lng"])
    assert ours["recorded_at"] == ours["location_updated_at"]
    assert ours["recorded_at"].endswith("Z")
    assert theirs["recorded_at"].endswith("Z")
    rows = await in_thread(kept, courier.pk)
    assert [row[1:] for row in rows] == [
        (lat, BODY["lng"], 90.0, 4.2, 6.0) for lat in (52.5, BODY["lat"], 52.6)
    ]
    assert rows[1][0].isoformat().replace("+00:00", "Z") == ours["recorded_at"]


async def test_a_late_ping_is_kept_without_moving_the_courier(courier, django_entries):
    headers = courier.headers
    async with served() as client:
        await client.post(PING, json=BODY, headers=headers)
        _, _, moved_at = await in_thread(point_of, courier.pk)
        late = (moved_at - timedelta(minutes=5)).isoformat()
        answer = await client.post(
            PING, json={"lat": 52.4, "lng": 13.3, "recorded_at": late}, headers=headers
        )
    assert len(django_entries) == 1
    assert answer.status_code == 200
    assert answer.json()["recorded_at"] < answer.json()["location_updated_at"]
    assert await in_thread(point_of, courier.pk) == (BODY["lat"], BODY["lng"], moved_at)
    assert [row[1:3] for row in await in_thread(kept, courier.pk)] == [
        (52.4, 13.3),
        (BODY["lat"], BODY["lng"]),
    ]


async def test_a_routed_ping_keeps_values_too_small_for_its_columns_as_zero(
    courier, django_entries
):
    headers = courier.headers
    tiny = {"heading": 4.4e-212, "speed_mps": 1e-50, "accuracy_m": 5e-324}
    async with served() as client:
        await client.post(PING, json=BODY, headers=headers)
        answer = await client.post(PING, json={**BODY, **tiny}, headers=headers)
    assert len(django_entries) == 1
    assert answer.status_code == 200, answer.content
    assert [row[3:] for row in await in_thread(kept, courier.pk)] == [
        (BODY["heading"], BODY["speed_mps"], BODY["accuracy_m"]),
        (0.0, 0.0, 0.0),
    ]


async def test_only_couriers_plain_pings_are_routed(courier, django_entries):
    customer = await in_thread(lambda: token_headers(factories.user()))
    retired = courier.user
    headers = courier.headers
    async with served() as client:
        await client.post(PING, json=BODY, headers=headers)
        retired.is_active = False
        answers = {
            "customer": await client.post(PING, json=BODY, headers=customer),
            "unknown": await client.post(
                PING, json=BODY, headers={"Authorization": "Token " + "0" * 40}
            ),
            "anonymous": await client.post(PING, json=BODY),
            "out of range": await client.post(PING, json={**BODY, "lat": 91}, headers=headers),
            "missing lng": await client.post(PING, json={"lat": 52.5}, headers=headers),
            "from the future": await client.post(
                PING,
                json={**BODY, "recorded_at": (timezone.now() + timedelta(hours=1)).isoformat()},
                headers=headers,
            ),
            "not JSON": await client.post(
                PING, content=b"{lat", headers={**headers, "Content-Type": "application/json"}
            ),
            "NaN": await client.post(
                PING,
                content=b'{"lat": NaN, "lng": 13.4}',
                headers={**headers, "Content-Type": "application/json"},
            ),
            "a list": await client.post(PING, json=[BODY], headers=headers),
        }
        plain_elsewhere = {
            "with a cookie": await client.post(
                PING, json=BODY, headers={**headers, "Cookie": "sessionid=x"}
            ),
            "with a charset": await client.post(
                PING,
                json=BODY,
                headers={**headers, "Content-Type": "application/json; charset=utf-8"},
            ),
            "indented": await client.post(
                PING, json=BODY, headers={**headers, "Accept": "application/json; indent=2"}
            ),
        }
        await in_thread(retired.save, update_fields=["is_active"])
        answers["inactive"] = await client.post(PING, json=BODY, headers=headers)
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "customer": 403,
        "unknown": 401,
        "anonymous": 401,
        "out of range": 400,
        "missing lng": 400,
        "from the future": 400,
        "not JSON": 400,
        "NaN": 400,
        "a list": 400,
        "inactive": 401,
    }
    assert "lat" in answers["out of range"].json()
    assert {name: answer.status_code for name, answer in plain_elsewhere.items()} == {
        "with a cookie": 200,
        "with a charset": 200,
        "indented": 200,
    }
    assert plain_elsewhere["indented"].text.startswith("{\n  ")
    # Every one of them went to Django; only the first, plain, ping did too.
    assert len(django_entries) == 1 + len(answers) + len(plain_elsewhere)
    # The refused ones wrote nothing: the first ping and the three Django took.
    assert len(await in_thread(kept, courier.pk)) == 1 + len(plain_elsewhere)


async def test_a_revoked_token_takes_effect_at_once(courier, django_entries):
    headers = courier.headers
    async with served() as client:
        await client.post(PING, json=BODY, headers=headers)
        routed = await client.post(PING, json=BODY, headers=headers)
        await in_thread(lambda: courier.user.auth_token.delete())
        revoked = await client.post(PING, json=BODY, headers=headers)
    assert routed.status_code == 200
    assert revoked.status_code == 401
    assert len(django_entries) == 2
    assert len(await in_thread(kept, courier.pk)) == 2


def carrying(make_courier) -> tuple:
    placed = order_placed()
    order = Order.objects.select_related("merchant").get(pk=placed.pk)
    near = make_courier(lat=order.merchant.location.y + 0.03, lng=order.merchant.location.x)
    Order.objects.filter(pk=order.pk).update(courier=near)
    return order, token_headers(near.user)


async def test_a_routed_ping_records_geofences_and_feeds_the_orders_stream(
    make_courier, django_entries
):
    order, headers = await in_thread(carrying, make_courier)
    merchant = order.merchant.location
    stream = get_redis_connection("default")
    async with served() as client:
        away = {"lat": merchant.y + 0.02, "lng": merchant.x}
        await client.post(PING, json=away, headers=headers)
        before = len(stream.xrange(order_stream_key(order.pk)))
        arrived = await client.post(
            PING, json={"lat": merchant.y, "lng": merchant.x}, headers=headers
        )
    assert len(django_entries) == 1
    assert arrived.status_code == 200
    events = await in_thread(
        lambda: list(Event.objects.filter(order_id=order.pk).values_list("type", flat=True))
    )
    assert "courier.arrived_at_merchant" in events
    entries = stream.xrange(order_stream_key(order.pk))[before:]
    assert [fields[b"e"] for _, fields in entries] == [b"location", b"eta"]


async def test_when_the_database_fails_django_answers(courier, monkeypatch, django_entries):
    headers = courier.headers
    async with served() as client:
        await client.post(PING, json=BODY, headers=headers)
        unreachable = {**async_db._connection_kwargs(), "port": closed_port(), "connect_timeout": 1}
        monkeypatch.setattr(async_db, "_connection_kwargs", lambda alias="default": unreachable)
        monkeypatch.setattr(async_db, "_retry_at", 0.0)
        await async_db.pools.close()
        failed_over = await client.post(PING, json=BODY, headers=headers)
    assert failed_over.status_code == 200
    assert len(django_entries) == 2
    assert async_db.resting()
    assert len(await in_thread(kept, courier.pk)) == 2
