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
        # Profile ids are what the compiled lookup reads besides (a later test).
        {k: v for k, v in vars(user).items() if k not in ("_state", "_profile_ids")},
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


def test_an_owners_and_a_couriers_roles_come_with_the_token(make_user, django_assert_num_queries):
    from delivery.services import courier_create
    from geomarket.accounts.roles import user_courier_id, user_merchant_id
    from tests import factories

    owner, courier, customer = make_user(), make_user(), make_user()
    shop = factories.merchant(owner=owner)
    profile = courier_create(user=courier, name="Rider", vehicle="bike", capacity=1)
    expected = {owner: (shop.pk, None), courier: (None, profile.pk), customer: (None, None)}
    for user, ids in expected.items():
        with django_assert_num_queries(1):
            found, _ = TokenAuthentication().authenticate_credentials(user.auth_token.key)
            assert (user_merchant_id(found), user_courier_id(found)) == ids
