"""Events are written in the transaction of the change they describe, and read through a
cursor feed scoped to the caller."""

import psycopg
import pytest
from django.db import transaction
from rest_framework.renderers import JSONRenderer

from delivery.services import courier_create
from events.models import Event
from events.selectors import CURSOR_UNREACHED, cursor_decode, cursor_encode
from events.serializers import EventSerializer
from events.services import EVENT_INSERT_SQL, event_record
from geomarket.api.fields import GIVEN_MORE_THAN_ONCE
from geomarket.sql import own_connection_params
from inventory.services import inventory_adjust
from orders.services import order_transition, orders_courier_set
from tests import factories
from tests.market import ORDERS, order_body

EVENTS = "/api/v1/events/"


def _types(**filters) -> list[str]:
    return list(Event.objects.filter(**filters).order_by("id").values_list("type", flat=True))


def _place(market, *lines) -> dict:
    response = market["client"].post(ORDERS, order_body(market, *lines), format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
def test_placing_records_placed_and_rejected_orders(market):
    placed = _place(market, (market["bread"], 2))
    rejected = _place(market, (market["bread"], 99))
    event = Event.objects.get(order_id=placed["id"])
    assert (event.type, event.merchant_id) == ("order.placed", market["shop"].pk)
    assert event.data["status"] == "confirmed"
    # money as the API writes it: a decimal string
    assert event.data["total"] == placed["total"]
    event = Event.objects.get(order_id=rejected["id"])
    assert event.type == "order.rejected"
    assert event.data["rejection_reason"] == "insufficient_stock"
    assert event.data["shortages"] == [
        {"product_id": market["bread"].pk, "requested": 99, "available": 18}
    ]
    # Written with the order, not sent yet: the relay hands them to the broker.
    assert not Event.objects.filter(published_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_transition_records_its_event_and_a_rolled_back_one_none(market):
    order_id = _place(market, (market["bread"], 2))["id"]
    order_transition(order_id=order_id, actor=market["owner"], to_status="preparing")
    event = Event.objects.get(order_id=order_id, type="order.status_changed")
    assert event.data == {"from_status": "confirmed", "to_status": "preparing", "reason": ""}

    class Undone(Exception):
        pass

    def ready_then_undone():
        with transaction.atomic():
            order_transition(order_id=order_id, actor=market["owner"], to_status="ready")
            assert _types(order_id=order_id)[-1] == "order.status_changed"
            raise Undone

    with pytest.raises(Undone):
        ready_then_undone()
    assert _types(order_id=order_id) == ["order.placed", "order.status_changed"]


@pytest.mark.django_db
def test_an_assignment_records_order_assigned_and_seeding_none(market):
    order_id = _place(market, (market["bread"], 2))["id"]
    courier = courier_create(user=factories.user(), name="C", vehicle="bike", status="available")
    orders_courier_set(assignments=[(order_id, courier.pk)], touch_updated_at=False)
    assert _types(order_id=order_id) == ["order.placed"]
    orders_courier_set(assignments=[(order_id, courier.pk)])
    event = Event.objects.get(order_id=order_id, type="order.assigned")
    assert (event.merchant_id, event.data) == (market["shop"].pk, {"courier_id": courier.pk})


@pytest.mark.django_db
@pytest.mark.parametrize("lines", [1, 2], ids=["one line", "several lines"])
def test_stock_falling_to_its_threshold_records_low_stock_once(market, lines):
    # bread: 20 in stock at 3.00, threshold 5; milk: 10 in stock; orders from 5.00
    extra = [(market["milk"], 1)] if lines == 2 else []
    _place(market, (market["bread"], 14), *extra)
    assert _types(type="inventory.low_stock") == []
    _place(market, (market["bread"], 2), *extra)
    event = Event.objects.get(type="inventory.low_stock")
    assert event.order_id is None
    assert event.merchant_id == market["shop"].pk
    assert event.data == {
        "product_id": market["bread"].pk,
        "quantity": 4,
        "low_stock_threshold": 5,
    }
    # below the threshold already: no new event
    _place(market, (market["bread"], 2), *extra)
    assert len(_types(type="inventory.low_stock")) == 1


@pytest.mark.django_db
def test_an_adjustment_to_the_threshold_records_low_stock(market):
    inventory = market["milk"].inventory
    inventory_adjust(inventory_id=inventory.pk, delta=-4)
    assert _types(type="inventory.low_stock") == []
    inventory_adjust(inventory_id=inventory.pk, delta=-1)
    assert Event.objects.get(type="inventory.low_stock").data["quantity"] == 5


def _feed(client, **params):
    return client.get(EVENTS, params)


def _record(merchant_id: int, n: int, type: str = "order.placed") -> list[int]:
    return [
        event_record(type=type, merchant_id=merchant_id, order_id=None, data={"n": i}).pk
        for i in range(n)
    ]


@pytest.mark.django_db
def test_the_feed_is_scoped_to_the_caller(market, as_user):
    other = factories.merchant(owner=factories.user())
    mine = _record(market["shop"].pk, 2)
    theirs = _record(other.pk, 1)
    answer = _feed(market["owner_client"]).json()
    assert [event["id"] for event in answer["events"]] == mine
    assert set(answer["events"][0]) == {
        "id",
        "type",
        "created_at",
        "merchant_id",
        "order_id",
        "data",
    }
    operator = as_user(factories.user(is_staff=True))
    assert [e["id"] for e in _feed(operator).json()["events"]] == sorted(mine + theirs)
    assert _feed(market["client"]).status_code == 403
    assert _feed(as_user(None)).status_code == 401


@pytest.mark.django_db
def test_the_cursor_walks_the_feed_oldest_first(market):
    ids = _record(market["shop"].pk, 5)
    client = market["owner_client"]
    first = _feed(client, limit=2).json()
    assert [e["id"] for e in first["events"]] == ids[:2]
    second = _feed(client, limit=2, after=first["next_cursor"]).json()
    assert [e["id"] for e in second["events"]] == ids[2:4]
    last = _feed(client, limit=2, after=second["next_cursor"]).json()
    assert [e["id"] for e in last["events"]] == ids[4:]
    # nothing new: the same cursor to poll with
    empty = _feed(client, after=last["next_cursor"]).json()
    assert empty == {"events": [], "next_cursor": last["next_cursor"]}
    assert cursor_decode(last["next_cursor"]) == Event.objects.get(pk=ids[4]).feed_position


@pytest.mark.django_db
def test_a_cursor_past_the_feeds_last_event_is_400(market):
    """A cursor the feed has not reached is not one it gave: another deployment's, or
    one from before the database was reset. Read after it, the feed would answer nothing
    until it got there, and then pass every event before it."""
    _record(market["shop"].pk, 2)
    client = market["owner_client"]
    kept = _feed(client).json()["next_cursor"]
    Event.objects.all().delete()
    _record(market["shop"].pk, 1)
    refused = _feed(client, after=kept)
    assert refused.status_code == 400
    assert refused.json() == {"after": [CURSOR_UNREACHED]}
    end = _feed(client).json()["next_cursor"]
    beyond = cursor_encode(cursor_decode(end) + 1)
    # one past every position there can be, too
    for cursor in (beyond, "__________8"):
        assert _feed(client, after=cursor).json() == {"after": [CURSOR_UNREACHED]}
    assert _feed(client, after=end).json() == {"events": [], "next_cursor": end}


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_after_a_later_one_is_not_passed_by_the_cursor(market):
    shop = market["shop"].pk
    client = market["owner_client"]
    with psycopg.connect(**own_connection_params()) as slow:
        # A transaction takes an id, then commits after another transaction's event.
        (slow_id,) = slow.execute(
            f"{EVENT_INSERT_SQL} VALUES ('order.placed', now(), %s, NULL, '{{}}') RETURNING id",
            [shop],
        ).fetchone()
        quick = event_record(type="order.placed", merchant_id=shop, data={})
        assert slow_id < quick.pk
        first = _feed(client).json()
        slow.commit()
    second = _feed(client, after=first["next_cursor"]).json()
    assert [e["id"] for e in first["events"]] == [quick.pk]
    assert [e["id"] for e in second["events"]] == [slow_id]
    assert _feed(client, after=second["next_cursor"]).json()["events"] == []


@pytest.mark.django_db
def test_the_feed_filters_by_type_and_refuses_what_it_does_not_know(market):
    placed = _record(market["shop"].pk, 1)
    low = _record(market["shop"].pk, 1, type="inventory.low_stock")
    client = market["owner_client"]
    answer = _feed(client, types="inventory.low_stock").json()
    assert [e["id"] for e in answer["events"]] == low
    answer = _feed(client, types="order.placed,inventory.low_stock").json()
    assert [e["id"] for e in answer["events"]] == placed + low
    for params in (
        {"types": "order.placed,order.eaten"},
        {"types": "order.placed,"},
        {"after": "not-a-cursor"},
        {"after": cursor_encode(1)[:-1] + "!"},
        {"limit": 501},
        {"limit": 0},
    ):
        assert _feed(client, **params).status_code == 400, params


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["after", "types", "limit"])
def test_a_feed_parameter_given_twice_is_400_naming_it(market, name):
    """Read as its last copy, `?after=a&after=b` would answer from `b` as if `a` were not
    there."""
    _record(market["shop"].pk, 3)
    twice = {
        "after": [cursor_encode(1), cursor_encode(2)],
        "types": ["order.placed", "inventory.low_stock"],
        "limit": ["1", "2"],
    }
    response = _feed(market["owner_client"], **{name: twice[name]})
    assert response.status_code == 400
    assert response.json() == {name: [GIVEN_MORE_THAN_ONCE]}


@pytest.mark.django_db
def test_the_limit_defaults_to_100_and_reaches_500(market):
    Event.objects.bulk_create(
        Event(type="order.placed", created_at="2026-01-01T00:00Z", merchant_id=market["shop"].pk)
        for _ in range(501)
    )
    client = market["owner_client"]
    assert len(_feed(client).json()["events"]) == 100
    assert len(_feed(client, limit=500).json()["events"]) == 500


@pytest.mark.django_db
def test_the_feeds_events_are_answered_as_their_serializer_renders_them(market):
    """The feed renders rows of a compiled statement (`EVENT`); the serializer renders
    event objects. The same bytes, for each kind of read."""
    shop = market["shop"].pk
    event_record(
        type="order.placed",
        merchant_id=shop,
        order_id=7,
        data={
            "total": "12.50",
            "nested": {"b": [1, 2.5, None, True]},
            "text": 'Caf\u00e9 "\u2028"',
        },
    )
    event_record(type="inventory.low_stock", merchant_id=shop, order_id=None, data={})
    render = JSONRenderer().render
    for params, types in (({}, None), ({"types": "inventory.low_stock"}, ["inventory.low_stock"])):
        events = Event.objects.filter(merchant_id=shop).order_by("feed_position")
        if types:
            events = events.filter(type__in=types)
        answer = _feed(market["owner_client"], **params).json()["events"]
        assert render(answer) == render(EventSerializer(events, many=True).data), params
        assert [event["type"] for event in answer] == [event.type for event in events]
