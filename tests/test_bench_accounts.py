"""The bench's and the soak's accounts, written in SQL: made once, then found again, so a
second run reuses the first one's users and tokens instead of failing on them."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from bench.common import accounts

pytestmark = pytest.mark.django_db


@pytest.fixture
def raw():
    """The test's own psycopg connection, inside its transaction."""
    connection.ensure_connection()
    return connection.connection


def test_users_are_made_once_and_found_again(raw):
    names = accounts.numbered("bench-test-", 3)
    made = accounts.users(raw, names, first_name="Soak", email_domain="example.test")
    found = accounts.users(raw, names)

    assert names == ["bench-test-001", "bench-test-002", "bench-test-003"]
    assert found == made
    assert len(set(made.values())) == 3
    user = get_user_model().objects.get(username="bench-test-002")
    assert (user.first_name, user.email, user.is_staff, user.is_active) == (
        "Soak",
        "bench-test-002@example.test",
        False,
        True,
    )
    assert not user.has_usable_password()


def test_a_token_per_user_made_once(raw):
    ids = accounts.users(raw, ["bench-a", "bench-b"])

    made = accounts.tokens(raw, [ids["bench-a"], ids["bench-b"], ids["bench-a"]])
    found = accounts.tokens(raw, ids.values())

    assert found == made
    assert set(made) == set(ids.values())
    assert Token.objects.get(user_id=ids["bench-a"]).key == made[ids["bench-a"]]
    assert len(made[ids["bench-a"]]) == 40


def test_an_operator_is_made_staff_and_a_customer_of_that_name_is_refused(raw):
    operator_id = accounts.staff_user(raw, "bench-operator")
    assert get_user_model().objects.get(id=operator_id).is_staff
    assert accounts.staff_user(raw, "bench-operator") == operator_id

    accounts.users(raw, ["bench-customer"])
    with pytest.raises(SystemExit, match=r"bench-customer .* not an active staff user"):
        accounts.staff_user(raw, "bench-customer")
