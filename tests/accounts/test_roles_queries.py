"""A user's roles cost one query, whatever profiles the user has."""

import pytest

from delivery.services import courier_create
from geomarket.accounts.models import User
from geomarket.accounts.roles import Role, user_courier_id, user_merchant_id, user_roles
from tests import factories

pytestmark = pytest.mark.django_db


def test_roles_of_an_owner_who_is_a_courier_take_one_query(django_assert_num_queries):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    courier = courier_create(user=owner, name="Both", vehicle="bike", status="available")
    fresh = User.objects.get(pk=owner.pk)
    with django_assert_num_queries(1):
        assert user_roles(fresh) == [Role.CUSTOMER, Role.MERCHANT_OWNER, Role.COURIER]
        assert user_merchant_id(fresh) == shop.pk
        assert user_courier_id(fresh) == courier.pk


def test_a_customer_has_no_profiles(django_assert_num_queries):
    fresh = User.objects.get(pk=factories.user().pk)
    with django_assert_num_queries(1):
        assert user_roles(fresh) == [Role.CUSTOMER]
        assert user_merchant_id(fresh) is None


def test_a_merchant_made_for_the_user_is_seen_at_once():
    user = User.objects.get(pk=factories.user().pk)
    assert user_merchant_id(user) is None
    shop = factories.merchant(owner=user)
    assert user_merchant_id(user) == shop.pk
