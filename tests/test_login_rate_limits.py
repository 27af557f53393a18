"""The session logins (console, admin) spend from the token login's budget of guesses."""

import pytest
from django.contrib.auth import forms as auth_forms
from django.test import Client
from redis.exceptions import RedisError

from geomarket import ratelimit
from tests import factories

pytestmark = pytest.mark.django_db

CONSOLE = "/console/login/"
ADMIN = "/admin/login/"
TOKEN = "/api/v1/auth/token/"
PASSWORD = "pw-Secret-123"  # the factory's


@pytest.fixture
def checked(monkeypatch):
    """The passwords the login forms checked."""
    seen = []
    authenticate = auth_forms.authenticate
    monkeypatch.setattr(
        auth_forms,
        "authenticate",
        lambda request=None, **kw: seen.append(kw["password"]) or authenticate(request, **kw),
    )
    return seen


@pytest.mark.parametrize("door", [CONSOLE, ADMIN])
def test_a_session_login_is_refused_over_the_limit_without_checking(door, settings, checked):
    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 3
    account = factories.user(is_staff=True)
    client = Client()

    def guess(password):
        return client.post(door, {"username": account.username, "password": password})

    assert [guess(f"guess{n}").status_code for n in range(3)] == [200] * 3
    assert len(checked) == 3
    # Not even the right password is checked, or lets the guesser in.
    refused = guess(PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["detail"] == "Request was throttled."
    assert refused.json()["retry_after"] >= 1
    assert int(refused["Retry-After"]) == refused.json()["retry_after"]
    assert refused["X-RateLimit-Limit"] == "3"
    assert len(checked) == 3
    assert "_auth_user_id" not in client.session
    # Showing the form is not limited.
    assert client.get(door).status_code == 200


def test_the_default_limit_refuses_the_eleventh_guess(settings):
    assert settings.TOKEN_RATE_LIMIT_PER_MINUTE == 10
    client = Client()
    statuses = [
        client.post(CONSOLE, {"username": "nobody", "password": f"guess{n}"}).status_code
        for n in range(11)
    ]
    assert statuses == [200] * 10 + [429]


def test_the_three_login_doors_share_one_bucket(settings, api_client):
    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 3
    account = factories.user(is_staff=True)
    body = {"username": account.username, "password": "guess"}
    client = Client()
    assert api_client.post(TOKEN, body).status_code == 400
    assert client.post(CONSOLE, body).status_code == 200
    assert client.post(ADMIN, body).status_code == 200
    assert api_client.post(TOKEN, body).status_code == 429
    assert client.post(CONSOLE, body).status_code == 429
    assert client.post(ADMIN, body).status_code == 429


def test_a_login_under_the_limit_still_signs_in(settings):
    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 3
    account = factories.user(is_staff=True)
    for door, to in ((CONSOLE, "/console/"), (ADMIN, "/admin/")):
        client = Client()
        signed_in = client.post(
            f"{door}?next={to}", {"username": account.username, "password": PASSWORD}
        )
        assert signed_in.status_code == 302
        assert signed_in["Location"] == to
        assert client.session["_auth_user_id"] == str(account.pk)


def test_the_bucket_is_the_client_ip_behind_a_trusted_proxy(settings):
    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 2
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    body = {"username": "nobody", "password": "guess"}

    def guess(client_ip, via_proxy=True):
        if via_proxy:
            client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_ip)
        else:
            client = Client(REMOTE_ADDR=client_ip)
        return client.post(CONSOLE, body).status_code

    assert [guess("198.51.100.7"), guess("198.51.100.7")] == [200, 200]
    assert guess("198.51.100.7") == 429
    # The same client without the proxy; another client behind it.
    assert guess("198.51.100.7", via_proxy=False) == 429
    assert guess("198.51.100.8") == 200
    # A forwarded address from a peer that is not a trusted proxy is not believed.
    spoofed = Client(REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert spoofed.post(CONSOLE, body).status_code == 429


def test_the_login_limit_fails_open_without_redis(settings, monkeypatch):
    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 1

    def down(alias):
        raise RedisError("connection refused")

    monkeypatch.setattr(ratelimit, "get_redis_connection", down)
    client = Client()
    body = {"username": "nobody", "password": "guess"}
    assert [client.post(door, body).status_code for door in (CONSOLE, ADMIN) * 2] == [200] * 4
