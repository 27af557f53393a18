"""The compiled token lookup (`geomarket.api.authentication.TokenAuthentication`) answers
as DRF's `TokenAuthentication` does, in one statement."""

import pytest
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed

from geomarket.api.authentication import TokenAuthentication

pytestmark = pytest.mark.django_db


def outcome(authenticator, key):
    try:
        user, token = authenticator.authenticate_credentials(key)
    except AuthenticationFailed as exc:
        return "refused", exc.detail
    return "accepted", (
        {k: v for k, v in vars(user).items() if k != "_state"},
        {k: v for k, v in vars(token).items() if k != "_state"},
        (user._state.db, user._state.adding, token._state.db, token._state.adding),
        (token.user is user, user.auth_token is token),
    )


def test_accepts_and_refuses_every_token_as_drf_does(make_user):
    active = make_user()
    inactive = make_user()
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    keys = [active.auth_token.key, inactive.auth_token.key, "0" * 40, ""]
    for key in keys:
        assert outcome(TokenAuthentication(), key) == outcome(
            authentication.TokenAuthentication(), key
        ), key
    assert outcome(TokenAuthentication(), active.auth_token.key)[0] == "accepted"


def test_a_token_is_found_with_its_user_in_one_query(make_user, django_assert_num_queries):
    user = make_user()
    with django_assert_num_queries(1):
        found, token = TokenAuthentication().authenticate_credentials(user.auth_token.key)
        assert found.username == user.username
        assert token.user.pk == user.pk
