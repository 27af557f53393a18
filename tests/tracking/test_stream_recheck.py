"""Open live streams follow their caller's standing: in process, on the real Redis, each
stream iterated as the server would, its caller changed while it is open."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from rest_framework.test import APIRequestFactory, force_authenticate

from console.views import courier_stream_view
from delivery.services import courier_create
from events.services import events_publish
from events.streams import CourierMove, StreamEntry, streams_publish
from orders.models import Order
from tests import factories
from tests.market import build_market
from tests.tracking.tracked import order_with_courier
from tracking.apis import OrderStreamApi
from tracking.stream import KEEPALIVE, hub

# The stream's thread reads the caller in a connection of its own: the rows must be
# committed.
pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


@pytest.fixture(autouse=True)
def recheck_before_every_send(settings):
    settings.STREAM_RECHECK_SECONDS = 0


@pytest.fixture
def tracked(as_user):
    market = build_market(as_user)
    order, courier, courier_user = order_with_courier(market)
    events_publish()  # the placement's event, out of the way
    return {"order": order, "courier": courier, "courier_user": courier_user, "market": market}


def order_stream(user, order_id):
    request = APIRequestFactory().get(f"/api/v1/orders/{order_id}/stream/")
    force_authenticate(request, user=user, token=user.auth_token)
    response = OrderStreamApi.as_view()(request, order_id=order_id)
    assert response.status_code == 200
    return response


def console_stream(user):
    request = RequestFactory().get("/console/couriers/stream/")
    request.user = user or AnonymousUser()
    response = courier_stream_view(request)
    assert response.status_code == 200
    return response


def location(order_id: int, status: str) -> StreamEntry:
    return StreamEntry(
        order_id=order_id,
        event="location",
        status=status,
        data={"courier_id": 1, "location": {"type": "Point", "coordinates": [13.4, 52.5]}},
    )


def status(order_id: int, value: str) -> StreamEntry:
    return StreamEntry(
        order_id=order_id, event="status", status=value, data={"status": value, "at": "now"}
    )


def move(merchant_id: int) -> CourierMove:
    return CourierMove(courier={"id": 1, "name": "Kim"}, merchant_ids=(merchant_id,))


async def _after_change(response, change, entries, until: bytes | None) -> tuple[list, bool]:
    """The stream's messages (no comments) once it is open, `change()` made and `entries`
    published: up to the one holding `until`, or, with None, until the stream ends (False
    when it has not within 3 s)."""
    chunks = aiter(response.streaming_content)
    seen = []
    try:
        assert await anext(chunks) == KEEPALIVE
        await asyncio.to_thread(change)
        streams_publish(entries=entries)
        async with asyncio.timeout(3):
            while True:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    return seen, True
                if chunk != KEEPALIVE:
                    seen.append(chunk)
                    if until is not None and until in chunk:
                        return seen, False
    except TimeoutError:
        return seen, False
    finally:
        await chunks.aclose()
        for pipe in (hub.subscriber, hub.reader):
            if pipe is not None:
                pipe.close()


def ends_after(response, change, *entries) -> bool:
    """Whether the stream ends, showing nothing, once `change()` is made and `entries`
    published."""
    seen, ended = asyncio.run(_after_change(response, change, list(entries), until=None))
    return ended and not seen


def messages_until(response, change, *entries, until: bytes) -> list[bytes]:
    seen, _ = asyncio.run(_after_change(response, change, list(entries), until=until))
    return seen


def test_a_stream_ends_once_its_caller_is_deactivated(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    response = order_stream(customer, order.pk)

    def deactivate():
        User.objects.filter(pk=customer.pk).update(is_active=False)

    assert ends_after(response, deactivate, status(order.pk, "preparing"))


def test_a_reassigned_couriers_stream_ends(tracked):
    order = tracked["order"]
    response = order_stream(tracked["courier_user"], order.pk)
    other = courier_create(user=factories.user(), name="Lou", vehicle="bike", status="available")

    def reassign():
        Order.objects.filter(pk=order.pk).update(courier=other)

    assert ends_after(response, reassign, location(order.pk, "ready"))


def test_an_operator_no_longer_staff_sees_only_what_its_other_roles_let_it(tracked):
    order = tracked["order"]
    customer = tracked["market"]["customer"]
    User.objects.filter(pk=customer.pk).update(is_staff=True)
    response = order_stream(User.objects.get(pk=customer.pk), order.pk)

    def demote():
        User.objects.filter(pk=customer.pk).update(is_staff=False)

    seen = messages_until(
        response,
        demote,
        location(order.pk, "ready"),
        status(order.pk, "picked_up"),
        until=b"event: status",
    )
    # Its customer's stream goes on, without the courier's point before pickup.
    assert len(seen) == 1
    assert b"event: status" in seen[0]


def test_a_console_stream_ends_once_its_operator_is_no_longer_staff(tracked):
    operator = factories.user(is_staff=True)
    response = console_stream(operator)

    def demote():
        User.objects.filter(pk=operator.pk).update(is_staff=False)

    assert ends_after(response, demote, move(tracked["market"]["shop"].pk))


def test_a_stream_whose_caller_stands_as_before_goes_on(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    response = order_stream(customer, order.pk)
    seen = messages_until(
        response, lambda: None, status(order.pk, "preparing"), until=b"event: status"
    )
    assert len(seen) == 1
    assert b'"status":"preparing"' in seen[0]
