"""A read sent with the token's lookup (`read_with_token`): DRF decides who the caller is
from the same token row as without it, and the read's row comes back beside it in the
same statement."""

import pytest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from geomarket.api.authentication import TokenAuthentication, read_with_token

pytestmark = pytest.mark.django_db

ROW_SQL = "SELECT %(a)s::int AS a, %(b)s::text AS b WHERE %(a)s::int > 0"


def drf_request(key: str | None) -> Request:
    headers = {} if key is None else {"HTTP_AUTHORIZATION": f"Token {key}"}
    return Request(APIRequestFactory().post("/", **headers))


def authenticated(key: str, *, sql: str = ROW_SQL, params: dict | None = None):
    request = drf_request(key)
    companion = read_with_token(request, sql=sql, params=params or {"a": 7, "b": "x"})
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        return ("refused", exc.detail), companion
    user, token = found
    return ("accepted", user.pk, token.key, user._profile_ids), companion


def alone(key: str):
    try:
        user, token = TokenAuthentication().authenticate(drf_request(key))
    except AuthenticationFailed as exc:
        return "refused", exc.detail
    return "accepted", user.pk, token.key, user._profile_ids


def test_the_read_comes_back_in_the_tokens_one_statement(make_user, django_assert_num_queries):
    user = make_user()
    with django_assert_num_queries(1) as captured:
        outcome, companion = authenticated(user.auth_token.key)
    assert outcome == alone(user.auth_token.key)
    assert (companion.read, companion.row) == (True, (7, "x"))
    assert "authtoken_token" in captured.captured_queries[0]["sql"]


def test_a_read_without_a_row_is_read_as_none(make_user, django_assert_num_queries):
    user = make_user()
    with django_assert_num_queries(1):
        outcome, companion = authenticated(user.auth_token.key, params={"a": 0, "b": "x"})
    assert outcome[0] == "accepted"
    assert (companion.read, companion.row) == (True, None)


def test_every_token_is_judged_as_without_the_read(make_user):
    active, inactive = make_user(), make_user()
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    for key in [active.auth_token.key, inactive.auth_token.key, "0" * 40]:
        outcome, companion = authenticated(key)
        assert outcome == alone(key), key
        # A refused caller's request reads nothing of it.
        assert companion.read is (outcome[0] == "accepted"), key


def test_a_request_not_authenticated_by_token_leaves_the_read_to_its_caller():
    request = drf_request(None)
    companion = read_with_token(request, sql=ROW_SQL, params={"a": 1, "b": "x"})
    assert TokenAuthentication().authenticate(request) is None
    assert companion.read is False


FAILING_SQL = "SELECT 1 / %(a)s::int AS quotient"


@pytest.mark.django_db(transaction=True)
def test_a_failing_read_leaves_the_caller_authenticated_and_the_read_unread(make_user):
    user = make_user()
    outcome, companion = authenticated(user.auth_token.key, sql=FAILING_SQL, params={"a": 0})
    # The caller meets the read's error where it reads it alone, after authentication.
    assert companion.read is False
    assert outcome == alone(user.auth_token.key)


def test_a_failing_read_inside_a_transaction_is_the_callers_error(make_user):
    from django.db import DataError

    user = make_user()
    # The failed statement has aborted the transaction: nothing could be looked up again.
    with pytest.raises(DataError):
        authenticated(user.auth_token.key, sql=FAILING_SQL, params={"a": 0})


def test_a_read_may_not_name_the_tokens_parameter(make_user):
    user = make_user()
    with pytest.raises(ValueError, match="key"):
        authenticated(user.auth_token.key, sql="SELECT %(key)s::text", params={"key": "x"})
