"""An order's rate limit checked while its token is looked up (`RateLimitedMixin`'s
foresight): the check is sent, keyed by the user the token authenticated as before, ahead
of the token's statement; when DRF then finds no such caller the slots it took are given
back, so every answer and every budget is as if it had been checked after."""

import pytest
from rest_framework.authtoken.models import Token

from geomarket import ratelimit
from geomarket.api import authentication
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db

FAR = {"type": "Point", "coordinates": [0.0, 0.0]}


def refused_order(market):
    return order_body(market, (market["bread"], 2), location=FAR)


@pytest.fixture
def events(monkeypatch):
    """What the order view does, in order: the limit's check sent, the token looked up."""
    seen = []
    sent, fetch = ratelimit.hit_all_sent, authentication._TokenLookup._fetch

    def hit_all_sent(checks):
        seen.append(("limit", [identity for _, identity in checks]))
        return sent(checks)

    def looked_up(self, sql, params):
        seen.append(("token", None))
        return fetch(self, sql, params)

    monkeypatch.setattr(ratelimit, "hit_all_sent", hit_all_sent)
    monkeypatch.setattr(authentication._TokenLookup, "_fetch", looked_up)
    return seen


def test_a_known_tokens_limit_is_sent_before_its_lookup(market, settings, events):
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 5
    client, customer = market["client"], market["customer"]
    first = client.post(ORDERS, refused_order(market))
    buckets = [f"user:{customer.pk}", "ip:127.0.0.1"]
    # A token this process has not seen yet is looked up first, as without foresight.
    assert events == [("token", None), ("limit", buckets)]
    events.clear()
    second = client.post(ORDERS, refused_order(market))
    assert events == [("limit", buckets), ("token", None)]
    assert [first.status_code, second.status_code] == [400, 400]
    assert second.content == first.content
    assert [first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"]] == ["4", "3"]


def test_a_known_user_over_the_limit_is_429_whatever_the_body(market, settings, events):
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 1
    client = market["client"]
    assert client.post(ORDERS, refused_order(market)).status_code == 400
    events.clear()
    over = client.post(ORDERS, refused_order(market))
    assert events[0][0] == "limit"
    assert over.status_code == 429
    assert set(over.json()) == {"detail", "retry_after"}


@pytest.mark.parametrize("lapse", ["token deleted", "user inactive"])
def test_a_known_token_refused_now_takes_no_slot(market, settings, as_user, events, lapse):
    """The check went out for the user the token named before; the token no longer
    authenticates: 401, and neither the user's nor the address's budget is spent."""
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 2
    settings.ORDER_IP_RATE_LIMIT_PER_MINUTE = 2
    customer, stale = market["customer"], market["client"]
    assert stale.post(ORDERS, refused_order(market)).status_code == 400
    if lapse == "token deleted":
        Token.objects.filter(user=customer).delete()
    else:
        customer.is_active = False
        customer.save(update_fields=["is_active"])
    events.clear()
    for _ in range(3):
        answer = stale.post(ORDERS, refused_order(market))
        assert answer.status_code == 401
        assert "X-RateLimit-Remaining" not in answer
    assert events[0][0] == "limit"
    if lapse == "token deleted":
        Token.objects.create(user=customer)
    else:
        customer.is_active = True
        customer.save(update_fields=["is_active"])
    customer.refresh_from_db()
    again = as_user(customer)
    answers = [again.post(ORDERS, refused_order(market)) for _ in range(2)]
    # One slot of each budget was spent before; the refused requests took none.
    assert [answer.status_code for answer in answers] == [400, 429]
    assert answers[0]["X-RateLimit-Remaining"] == "0"


def test_a_refused_request_takes_no_slot_of_the_address_either(market, settings, as_user):
    settings.ORDER_IP_RATE_LIMIT_PER_MINUTE = 2
    customer = market["customer"]
    assert market["client"].post(ORDERS, refused_order(market)).status_code == 400
    Token.objects.filter(user=customer).delete()
    assert market["client"].post(ORDERS, refused_order(market)).status_code == 401
    neighbour = as_user(factories.user())
    statuses = [neighbour.post(ORDERS, refused_order(market)).status_code for _ in range(2)]
    assert statuses == [400, 429]


def test_giving_back_undoes_a_hit_and_only_a_hit_let_through(settings):
    limiter = ratelimit.RateLimiter(scope="test:give-back", limit=2)
    checks = [(limiter, "user:1")]
    first = ratelimit.hit_all(checks)
    assert [result.remaining for result in first] == [1]
    ratelimit.give_back(checks, first)
    assert [result.remaining for result in ratelimit.hit_all(checks)] == [1]
    assert [result.remaining for result in ratelimit.hit_all(checks)] == [0]
    refused = ratelimit.hit_all(checks)
    assert [result.allowed for result in refused] == [False]
    # A refused hit took nothing: nothing is given back, the bucket stays full.
    ratelimit.give_back(checks, refused)
    assert [result.allowed for result in ratelimit.hit_all(checks)] == [False]
