"""Concurrent registrations of one username: one account, and the loser answered with the
same 400 naming `username` that a later registration gets."""

import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from geomarket.accounts.models import User
from tests.threads import behind_an_uncommitted_write, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

REGISTER = "/api/v1/auth/register/"
TAKEN = {"username": ["A user with that username already exists."]}
INSERT_USER = (
    "INSERT INTO accounts_user (username, password, is_superuser, first_name, last_name,"
    " email, is_staff, is_active, date_joined) VALUES (%s, %s, false, '', '', '', false, true,"
    " now())"
)


def _register(username: str, address: str = "10.9.0.1"):
    def post():
        return APIClient(REMOTE_ADDR=address).post(
            REGISTER, {"username": username, "password": "Str0ng-pass-phrase"}, format="json"
        )

    return post


def test_losing_a_race_for_the_same_username_is_the_400_a_later_registration_gets():
    answer = behind_an_uncommitted_write(
        INSERT_USER, ["erin", make_password("Str0ng-pass-phrase")], _register("erin")
    )
    assert answer.status_code == 400
    assert answer.json() == TAKEN
    assert list(User.objects.values_list("username", flat=True)) == ["erin"]
    assert not Token.objects.exists()


def test_losing_a_race_for_the_username_in_another_case_is_a_400_naming_username():
    answer = behind_an_uncommitted_write(
        INSERT_USER, ["dave", make_password("Str0ng-pass-phrase")], _register("Dave")
    )
    assert answer.status_code == 400
    assert answer.json() == TAKEN
    assert list(User.objects.values_list("username", flat=True)) == ["dave"]


def test_of_two_concurrent_registrations_differing_in_case_one_account_is_made():
    answers = run_in_threads(_register("Frank", "10.9.0.2"), _register("frank", "10.9.0.3"))
    assert sorted(answer.status_code for answer in answers) == [201, 400]
    assert [answer.json() for answer in answers if answer.status_code == 400] == [TAKEN]
    assert User.objects.filter(username__iexact="frank").count() == 1
