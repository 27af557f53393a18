"""The address a client's budget of guesses is kept under: the peer's, or behind a proxy of
`TRUSTED_PROXIES` the client it names; whoever else writes `X-Forwarded-For` is not
believed, by Django nor by the server in front of it (`scripts/serve`)."""

import re
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import RequestFactory

from bench.common.processes import production_env, uvicorn_server
from geomarket.env import env_networks
from geomarket.ratelimit import client_ip

TOKEN = "/api/v1/auth/token/"


def address_of(*, peer: str, forwarded: str | None = None) -> str:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=peer, **headers))


def test_proxies_may_be_named_by_network(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
    # The right-most hop that is not itself a proxy, whichever network the proxy is in.
    assert address_of(peer="10.20.30.40", forwarded="198.51.100.7, 10.1.1.1") == "198.51.100.7"
    assert address_of(peer="2001:db8::5", forwarded="203.0.113.9") == "203.0.113.9"
    assert address_of(peer="192.0.2.1", forwarded="203.0.113.9, 192.0.2.1") == "203.0.113.9"
    # Outside every network: the peer, whatever it forwards.
    assert address_of(peer="11.0.0.1", forwarded="198.51.100.7") == "11.0.0.1"
    assert address_of(peer="192.0.2.2", forwarded="198.51.100.7") == "192.0.2.2"
    assert address_of(peer="2001:db9::5", forwarded="198.51.100.7") == "2001:db9::5"
    # A hop that is no address is no proxy: it is what the proxy was told.
    assert address_of(peer="10.0.0.1", forwarded="not-an-address") == "not-an-address"


def test_a_proxy_entry_that_is_no_address_stops_the_start(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1, 10.0.0.0/33")
    with pytest.raises(ImproperlyConfigured, match=re.escape("10.0.0.0/33")):
        env_networks("TRUSTED_PROXIES", [])
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1, 172.16.0.0/12 , ::1")
    assert env_networks("TRUSTED_PROXIES", []) == ["10.0.0.1", "172.16.0.0/12", "::1"]


@pytest.fixture(scope="module")
def served_behind_a_proxy(django_db_setup):
    """The server as `scripts/serve` starts it, believing only a proxy at 127.0.0.2, with
    two guesses a minute."""
    parts = urlsplit(settings.DATABASE_URL)
    database_url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    env = production_env(
        database_url=database_url, TRUSTED_PROXIES="127.0.0.2", TOKEN_RATE_LIMIT_PER_MINUTE="2"
    )
    with uvicorn_server(
        app="geomarket.asgi:application", workers=1, env=env, ready_path="/healthz"
    ) as base_url:
        yield base_url


def guesses(base_url: str, *, local_address: str, forwarded: list[str]) -> list[int]:
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(base_url=base_url, transport=transport, timeout=10) as client:
        return [
            client.post(
                TOKEN,
                json={"username": "nobody", "password": "guess"},
                headers={"X-Forwarded-For": address},
            ).status_code
            for address in forwarded
        ]


# The mark has the test database made even when this module runs alone; the server's reads
# need its tables, not the test's transaction.
@pytest.mark.django_db
def test_a_caller_on_the_servers_host_cannot_name_its_own_address(served_behind_a_proxy):
    """From 127.0.0.1, which uvicorn's own proxy headers would believe by default."""
    forwarded = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert guesses(served_behind_a_proxy, local_address="127.0.0.1", forwarded=forwarded) == [
        400,
        400,
        429,
    ]


@pytest.mark.django_db
def test_the_trusted_proxys_clients_each_have_their_own_budget(served_behind_a_proxy):
    forwarded = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1", "203.0.113.1"]
    assert guesses(served_behind_a_proxy, local_address="127.0.0.2", forwarded=forwarded) == [
        400,
        400,
        400,
        400,
        429,
    ]
