"""What a stream ticket leaves in Redis: neither the ticket, which opens a stream, nor the
credential that asked for it, which signs its user in for far longer (a token for good)."""

import pytest
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token

from geomarket.accounts.selectors import Credential, CredentialKind
from tests.market import build_market, order_body
from tracking.services import stream_ticket_issue, stream_ticket_redeem

pytestmark = pytest.mark.django_db


def test_redis_holds_neither_the_ticket_nor_the_credential_that_asked_for_it(as_user):
    market = build_market(as_user)
    placed = market["client"].post("/api/v1/orders/", order_body(market, (market["bread"], 2)))
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    customer = market["customer"]
    credential = Credential(kind=CredentialKind.TOKEN, key=Token.objects.get(user=customer).key)
    ticket = stream_ticket_issue(user=customer, order_id=order_id, credential=credential).ticket
    redis = get_redis_connection("default")
    entries = [
        (key, redis.get(key))
        for key in redis.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*")
    ]
    assert entries
    for key, value in entries:
        for secret in (ticket.encode(), credential.key.encode()):
            assert secret not in key
            assert secret not in (value or b"")
    # The ticket opens it, once.
    holder = stream_ticket_redeem(ticket=ticket)
    assert (holder.user_id, holder.order_id, holder.credential) == (
        customer.pk,
        order_id,
        credential,
    )
    assert stream_ticket_redeem(ticket=ticket) is None
    assert stream_ticket_redeem(ticket=ticket[:-1] + ("A" if ticket[-1] != "A" else "B")) is None
