"""One definition of who is calling: the event-loop lane reads the token and judges the
operator exactly as DRF's authentication and `IsOperator` do."""

import itertools
import random
from datetime import date
from io import BytesIO

import pytest
from django.core.handlers.asgi import ASGIRequest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from analytics.selectors import DateRange, fetch_rows, revenue_statement
from geomarket.accounts.selectors import operator_token_statement
from geomarket.api.authentication import token_key
from geomarket.api.permissions import IsOperator
from geomarket.lane.token_routes import token_caller
from geomarket.sql import fetch_all
from tests import factories

pytestmark = pytest.mark.django_db

FLAGS = ("is_staff", "is_superuser", "is_active")


def drf_request(http_request) -> Request:
    return Request(
        http_request,
        authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES],
    )


def drf_lets_operator_in(key: str) -> bool:
    """What the configured authentication and `IsOperator` decide for this token."""
    request = drf_request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {key}"))
    try:
        request.user  # noqa: B018
    except AuthenticationFailed:
        return False
    return IsOperator().has_permission(request, None)


def guard_lets_operator_in(key: str) -> bool:
    """What the operator check alone, and the guarded reports, decide for this token."""
    alone = bool(fetch_all(*operator_token_statement(key=key)))
    # A report over a day has a row for that day, with or without orders, unless its
    # guard refuses the key.
    day = DateRange(date(2026, 3, 1), date(2026, 3, 1))
    reports = {
        bool(fetch_rows(revenue_statement(range_=day, operator_key=key))),
        bool(fetch_rows(revenue_statement(range_=day, merchant_id=1, operator_key=key))),
    }
    assert reports == {alone}, key
    return alone


def test_the_sql_guard_and_is_operator_agree_for_every_kind_of_user():
    decisions = {}
    for values in itertools.product((False, True), repeat=len(FLAGS)):
        user = factories.user()
        for flag, value in zip(FLAGS, values, strict=True):
            setattr(user, flag, value)
        user.save(update_fields=FLAGS)
        key = user.auth_token.key
        decisions[values] = (drf_lets_operator_in(key), guard_lets_operator_in(key))
    assert {v: drf for v, (drf, _) in decisions.items()} == {
        v: sql for v, (_, sql) in decisions.items()
    }
    # Both sides let someone in, and keep someone out: the comparison is not vacuous.
    assert {drf for drf, _ in decisions.values()} == {False, True}


def test_an_unknown_key_is_refused_by_both():
    assert not drf_lets_operator_in("0" * 40)
    assert not guard_lets_operator_in("0" * 40)


def asgi_scope(authorization: bytes) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/analytics/revenue/",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"authorization", authorization)],
    }


def drf_authenticates(authorization: bytes, user) -> bool:
    """Whether DRF, given the request as Django's ASGI handler builds it, finds `user`."""
    request = drf_request(ASGIRequest(asgi_scope(authorization), BytesIO()))
    try:
        return request.user == user
    except AuthenticationFailed:
        return False


def headers_around(key: bytes) -> list[bytes]:
    fixed = [
        b"Token " + key,
        b"token " + key,
        b"TOKEN " + key,
        b"tOkEn " + key,
        b"Token  " + key,
        b"  Token " + key,
        b"Token " + key + b"   ",
        b"Token\t" + key,
        b"Token\x0b" + key,
        b"Token\x0c" + key,
        b"Token\r" + key,
        # Not whitespace to `bytes.split`, though `str.split` splits on them.
        b"Token\xa0" + key,
        b"Token\x85" + key,
        b"Token\xe2\x80\x83" + key,
        b"Token",
        b"Token ",
        b"",
        b"   ",
        b"Bearer " + key,
        b"Tokens " + key,
        b"Token" + key,
        b"Token " + key + b" extra",
        b"Token " + key + b" " + key,
        b"Token " + key[:20] + b" " + key[20:],
        b"Token " + key.upper(),
        b"Token " + key + "\u00e9".encode(),
        b"Token " + key + b"\xe9",
        b"Token \xff" + key,
        "T\u00f6ken ".encode() + key,
        b"Basic dXNlcjpwYXNz",
        b"Token," + key,
        b"Token " + key + b",",
    ]
    # Random headers from the same pieces, for orders no one thought of.
    pieces = [b"Token", b"token", b" ", b"  ", b"\t", b"\xa0", b"\xe9", b",", b"x", key]
    rng = random.Random(17)
    generated = [b"".join(rng.choices(pieces, k=rng.randint(1, 5))) for _ in range(300)]
    return fixed + generated


def test_the_lane_reads_the_token_as_drf_does():
    user = factories.user(is_staff=True)
    key = user.auth_token.key
    cases = headers_around(key.encode())
    for authorization in cases:
        drf = drf_authenticates(authorization, user)
        assert (token_key(authorization) == key) is drf, authorization
        assert (token_caller(asgi_scope(authorization)) is not None) is drf, authorization
    # Both outcomes occur among the cases.
    assert {drf_authenticates(a, user) for a in cases} == {False, True}
