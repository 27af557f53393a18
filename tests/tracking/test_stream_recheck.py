"""Open live streams follow their caller's standing: in process, on the real Redis, each
stream iterated as the server would, its caller changed while it is open."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIRequestFactory, force_authenticate

from console.views import courier_stream_view
from delivery.services import courier_create
from events.services import events_publish
from events.streams import CourierMove, StreamEntry, streams_publish
from orders.models import Order
from tests import factories
from tests.market import build_market
from tests.tracking.tracked import order_with_courier
from tracking.apis import OrderStreamApi, OrderStreamTicketApi
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


def signed_in(user):
    """A session signed in as `user`, as a sign-in makes one (`flush()` signs it out)."""
    client = Client()
    client.force_login(user)
    return client.session


def by_session(request, user, session):
    """`request` as the session middleware and Django's authentication leave it."""
    request.session, request.user = session, user
    return request


def as_caller(request, user, session):
    """`request` signed in by `session`, else by `user`'s token."""
    if session is not None:
        return by_session(request, user, session)
    force_authenticate(request, user=user, token=Token.objects.get(user=user))
    return request


def order_stream(user, order_id, *, session=None, ticket=None):
    """The order's stream opened by `user`'s token, or by `session`, or by `ticket`."""
    path = f"/api/v1/orders/{order_id}/stream/"
    if ticket is not None:
        request = APIRequestFactory().get(path, {"ticket": ticket})
    else:
        request = as_caller(APIRequestFactory().get(path), user, session)
    response = OrderStreamApi.as_view()(request, order_id=order_id)
    assert response.status_code == 200
    return response


def stream_ticket(user, order_id, *, session=None) -> str:
    """A ticket to the order's stream, asked for by `user`'s token or by `session`."""
    path = f"/api/v1/orders/{order_id}/stream-ticket/"
    request = as_caller(APIRequestFactory().post(path), user, session)
    response = OrderStreamTicketApi.as_view()(request, order_id=order_id)
    assert response.status_code == 201
    return response.data["ticket"]


def console_stream(user, session=None):
    request = RequestFactory().get("/console/couriers/stream/")
    response = courier_stream_view(by_session(request, user, session or signed_in(user)))
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


def test_a_stream_ends_once_its_token_is_deleted(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    response = order_stream(customer, order.pk)

    def revoke():
        Token.objects.filter(user=customer).delete()

    assert ends_after(response, revoke, status(order.pk, "preparing"))


def test_a_stream_ends_once_its_token_is_made_anew(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    response = order_stream(customer, order.pk)

    def renew():
        Token.objects.filter(user=customer).delete()
        Token.objects.create(user=customer)

    assert ends_after(response, renew, status(order.pk, "preparing"))


def test_a_stream_ends_once_its_session_signs_out(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    session = signed_in(customer)
    response = order_stream(customer, order.pk, session=session)
    assert ends_after(response, session.flush, status(order.pk, "preparing"))


def test_a_stream_opened_by_a_session_goes_on_while_it_is_signed_in(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    response = order_stream(customer, order.pk, session=signed_in(customer))
    seen = messages_until(
        response, lambda: None, status(order.pk, "preparing"), until=b"event: status"
    )
    assert len(seen) == 1


@pytest.mark.parametrize("by_token", [False, True])
def test_a_ticket_stream_ends_once_the_credential_that_asked_for_it_is_gone(tracked, by_token):
    customer, order = tracked["market"]["customer"], tracked["order"]
    session = None if by_token else signed_in(customer)
    ticket = stream_ticket(customer, order.pk, session=session)
    response = order_stream(customer, order.pk, ticket=ticket)

    def sign_out():
        if by_token:
            Token.objects.filter(user=customer).delete()
        else:
            session.flush()

    assert ends_after(response, sign_out, status(order.pk, "preparing"))


def test_a_ticket_whose_token_is_gone_opens_nothing(tracked):
    customer, order = tracked["market"]["customer"], tracked["order"]
    ticket = stream_ticket(customer, order.pk)
    Token.objects.filter(user=customer).delete()
    request = APIRequestFactory().get(f"/api/v1/orders/{order.pk}/stream/", {"ticket": ticket})
    assert OrderStreamApi.as_view()(request, order_id=order.pk).status_code == 401


def test_a_console_stream_ends_once_its_session_signs_out(tracked):
    operator = factories.user(is_staff=True)
    session = signed_in(operator)
    response = console_stream(operator, session)

    def sign_out():
        Session.objects.filter(pk=session.session_key).delete()

    assert ends_after(response, sign_out, move(tracked["market"]["shop"].pk))
