"""Webhook endpoints: CRUD scoped as the contract says, SSRF refusals, and signed
deliveries to a real receiver on loopback, retried as the contract says."""

import base64
import hashlib
import hmac
import importlib
import ipaddress
import json
import re
import socket
import ssl
import subprocess
import time
from datetime import timedelta

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import ProtectedError
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from events import services, urlcheck
from events.models import Event, WebhookDelivery, WebhookEndpoint, WebhookPending
from events.selectors import ENDPOINT_RECEIVES, cursor_encode
from events.serializers import WebhookDeliverySerializer, WebhookSerializer
from events.services import (
    DISABLE_AFTER_FAILURES,
    WEBHOOK_DELIVER_TASK,
    event_record,
    events_feed_positions_assign,
    events_publish,
    retry_delay,
    webhook_create,
    webhook_deliver_attempt,
    webhook_deliveries_publish,
)
from events.tasks import webhook_deliver
from geomarket.accounts.models import User
from geomarket.celery import app as celery_app
from merchants.models import Merchant
from tests import factories
from tests.broker import use_broker
from tests.events.receiver import receiver_start

WEBHOOKS = "/api/v1/webhooks/"
PUBLIC_URL = "https://93.184.215.14/hook"


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver, server = receiver_start()
    yield receiver
    server.shutdown()
    server.server_close()


def _shop_endpoint(market, url: str) -> WebhookEndpoint:
    """An endpoint of every type of the market's shop, created by its owner."""
    return webhook_create(
        created_by=market["owner"], merchant_id=market["shop"].pk, url=url, event_types=[]
    )


def _event(merchant_id: int, type: str = "order.placed") -> Event:
    return event_record(type=type, merchant_id=merchant_id, order_id=7, data={"total": 12.5})


def _signature(secret: str, headers: dict, body: bytes) -> str:
    """Standard Webhooks' signature, computed here by hand, apart from the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# CRUD and scoping


@pytest.mark.django_db
def test_the_secret_is_shown_once(market):
    client = market["owner_client"]
    created = client.post(WEBHOOKS, {"url": PUBLIC_URL, "event_types": ["order.placed"]}, "json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", body["secret"])
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 24
    assert body["merchant_id"] == market["shop"].pk
    assert (body["is_active"], body["failure_count"], body["disabled_at"]) == (True, 0, None)
    shown = client.get(f"{WEBHOOKS}{body['id']}/").json()
    assert "secret" not in shown
    assert "secret" not in client.get(WEBHOOKS).json()["results"][0]
    patched = client.patch(f"{WEBHOOKS}{body['id']}/", {"event_types": []}, "json").json()
    assert "secret" not in patched
    assert patched["event_types"] == []


@pytest.mark.django_db
def test_owners_see_and_change_only_their_merchants_endpoints(market, as_user):
    other_owner = factories.user()
    other = factories.merchant(owner=other_owner)
    theirs = webhook_create(
        created_by=other_owner, merchant_id=other.pk, url=PUBLIC_URL, event_types=[]
    )
    everyone = webhook_create(
        created_by=factories.user(is_staff=True), merchant_id=None, url=PUBLIC_URL, event_types=[]
    )
    client = market["owner_client"]
    # an owner's endpoint is its own merchant's, whatever the body says
    mine = client.post(WEBHOOKS, {"url": PUBLIC_URL, "merchant_id": other.pk}, "json").json()
    assert mine["merchant_id"] == market["shop"].pk
    assert [e["id"] for e in client.get(WEBHOOKS).json()["results"]] == [mine["id"]]
    for endpoint in (theirs, everyone):
        path = f"{WEBHOOKS}{endpoint.pk}/"
        assert client.get(path).status_code == 404
        assert client.patch(path, {"is_active": False}, "json").status_code == 404
        assert client.delete(path).status_code == 404
        assert client.get(f"{path}deliveries/").status_code == 404
        assert client.post(f"{path}replay/", {"after": cursor_encode(1)}, "json").status_code == 404
    assert WebhookEndpoint.objects.filter(is_active=True).count() == 3
    operator = as_user(factories.user(is_staff=True))
    listed = [e["id"] for e in operator.get(WEBHOOKS).json()["results"]]
    assert listed == [theirs.pk, everyone.pk, mine["id"]]
    assert operator.post(WEBHOOKS, {"url": PUBLIC_URL}, "json").json()["merchant_id"] is None
    assert operator.delete(f"{WEBHOOKS}{theirs.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=theirs.pk).exists()
    assert market["client"].get(WEBHOOKS).status_code == 403
    assert market["client"].post(WEBHOOKS, {"url": PUBLIC_URL}, "json").status_code == 403
    assert as_user(None).get(WEBHOOKS).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://240.0.0.1/hook",
        "https://localhost/hook",
        "https://user:pw@93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
        # IPv6 addresses that lead to private IPv4 ones, and site-local
        "https://[64:ff9b::a00:1]/hook",
        "https://[64:ff9b::7f00:1]/hook",
        "https://[64:ff9b:1::a00:1]/hook",
        "https://[2002:7f00:1::]/hook",
        "https://[::7f00:1]/hook",
        "https://[::ffff:0:7f00:1]/hook",
        "https://[fec0::1]/hook",
    ],
)
def test_urls_off_the_public_internet_are_refused(market, url):
    client = market["owner_client"]
    created = client.post(WEBHOOKS, {"url": url}, "json")
    assert created.status_code == 400, url
    assert "url" in created.json()
    assert not WebhookEndpoint.objects.exists()
    endpoint = client.post(WEBHOOKS, {"url": PUBLIC_URL}, "json").json()
    assert client.patch(f"{WEBHOOKS}{endpoint['id']}/", {"url": url}, "json").status_code == 400
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).url == PUBLIC_URL


def _literal_url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hook"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        # IPv4-mapped, IPv4-translated and IPv4-compatible
        "::ffff:127.0.0.1",
        "::ffff:0:7f00:1",
        "::7f00:1",
        "::a00:1",
        # NAT64, well-known prefix; the local-use prefix, whatever it embeds
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",
        "64:ff9b:1::5db8:d70e",
        # 6to4
        "2002:7f00:1::",
        "2002:a00:1::1",
        # Teredo, whatever its server and client: a public server with a client at
        # 10.0.0.1 (stored inverted), a server at 10.0.0.1, and both public
        "2001:0:5db8:d70e::f5ff:fffe",
        "2001:0:a00:1::a247:28f1",
        "2001:0:5db8:d70e::a247:28f1",
    ],
)
def test_the_url_check_refuses_every_address_off_the_public_internet(settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(urlcheck.UrlRefused, match="non-public"):
        urlcheck.webhook_url_check(_literal_url(address))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "2606:2800:220:1::1",
        # the same public IPv4 address, embedded in each way
        "::ffff:93.184.215.14",
        "64:ff9b::5db8:d70e",
        "2002:5db8:d70e::1",
    ],
)
def test_the_url_check_lets_public_addresses_through(settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    (checked,) = urlcheck.webhook_url_check(_literal_url(address))
    assert ipaddress.ip_address(checked) == ipaddress.ip_address(address)


@pytest.mark.django_db
def test_unknown_event_types_are_refused(market):
    answer = market["owner_client"].post(
        WEBHOOKS, {"url": PUBLIC_URL, "event_types": ["order.eaten"]}, "json"
    )
    assert answer.status_code == 400
    assert "event_types" in answer.json()


# A URL the check passed must be one httpx can send to

# httpx refuses this name (IDNA 2008); the resolver's IDNA 2003 encodes it.
UNSENDABLE_URL = "https://\N{SNOWMAN}.net/hook"


@pytest.fixture
def unsendable_resolves(monkeypatch):
    """UNSENDABLE_URL's host resolves to a public address, as it may in real DNS."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in ("\N{SNOWMAN}.net", "xn--n3h.net"):
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC_ADDRESS, port))
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.django_db
def test_a_url_httpx_cannot_send_to_is_refused(market, unsendable_resolves):
    client = market["owner_client"]
    created = client.post(WEBHOOKS, {"url": UNSENDABLE_URL}, "json")
    assert created.status_code == 400
    assert "url" in created.json()
    assert not WebhookEndpoint.objects.exists()
    endpoint = client.post(WEBHOOKS, {"url": PUBLIC_URL}, "json").json()
    patched = client.patch(f"{WEBHOOKS}{endpoint['id']}/", {"url": UNSENDABLE_URL}, "json")
    assert patched.status_code == 400
    assert "url" in patched.json()
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).url == PUBLIC_URL


@pytest.mark.django_db
def test_deliveries_to_a_url_httpx_cannot_send_to_fail_and_count_toward_disabling(
    market, unsendable_resolves
):
    """An endpoint written before its URL was checked as httpx parses it: each attempt is
    recorded as a failure, so the endpoint is disabled, not sent to forever."""
    endpoint = _shop_endpoint(market, PUBLIC_URL)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=UNSENDABLE_URL)
    event = _event(market["shop"].pk)
    outcome = _deliver(endpoint, event)
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(1))
    attempt = WebhookDelivery.objects.get()
    assert (attempt.status_code, attempt.error[:8]) == (None, "refused:")
    assert WebhookPending.objects.get().attempt == 2
    for number in range(2, DISABLE_AFTER_FAILURES + 1):
        _deliver(endpoint, event, attempt=number)
    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.is_active) == (DISABLE_AFTER_FAILURES, False)


@pytest.mark.django_db
def test_a_url_httpx_refuses_at_delivery_is_a_failed_attempt(market, monkeypatch):
    """InvalidURL is no HTTPError: whatever raises it past the check fails the attempt."""

    def post(url, **kwargs):
        raise httpx.InvalidURL("Invalid IDNA hostname")

    monkeypatch.setattr(services, "webhook_post", post)
    endpoint = _shop_endpoint(market, PUBLIC_URL)
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(1))
    assert WebhookDelivery.objects.get().error == "refused: Invalid IDNA hostname"
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 1


# The merchant an operator's endpoint names


@pytest.mark.django_db(transaction=True)
def test_an_operator_naming_an_unknown_merchant_gets_a_400_and_nothing_is_created(as_user):
    """Committed, as the API commits: inside a test's transaction the foreign key, checked
    at commit, would never refuse the row."""
    operator = as_user(factories.user(is_staff=True))
    answer = operator.post(WEBHOOKS, {"url": PUBLIC_URL, "merchant_id": 999_999_999}, "json")
    assert answer.status_code == 400
    assert "merchant_id" in answer.json()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_operator_may_name_an_inactive_merchant(as_user):
    shop = factories.merchant(owner=factories.user(), is_active=False)
    operator = as_user(factories.user(is_staff=True))
    answer = operator.post(WEBHOOKS, {"url": PUBLIC_URL, "merchant_id": shop.pk}, "json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["merchant_id"] == shop.pk


@pytest.mark.django_db
def test_an_owner_naming_an_unknown_merchant_still_gets_its_own(market):
    answer = market["owner_client"].post(
        WEBHOOKS, {"url": PUBLIC_URL, "merchant_id": 999_999_999}, "json"
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["merchant_id"] == market["shop"].pk


# Deliveries to a real receiver


def _deliver(endpoint, event, *, attempt=1, first_attempt_at=None):
    return webhook_deliver_attempt(
        endpoint_id=endpoint.pk,
        event_id=event.pk,
        attempt=attempt,
        first_attempt_at=first_attempt_at or timezone.now(),
    )


@pytest.mark.django_db
def test_a_delivery_is_signed_as_standard_webhooks_say(market, receiver):
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    before = int(time.time())
    outcome = _deliver(endpoint, event)
    assert (outcome.delivered, outcome.retry_in) == (True, None)
    (got,) = receiver.received
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers["webhook-id"] == str(event.pk)
    assert before <= int(headers["webhook-timestamp"]) <= time.time()
    assert headers["webhook-signature"] == _signature(endpoint.secret, headers, got.body)
    assert (
        _signature("whsec_" + base64.b64encode(b"x" * 24).decode(), headers, got.body)
        != (headers["webhook-signature"])
    )
    payload = json.loads(got.body)
    assert payload["type"] == "order.placed"
    assert payload["data"] == {
        "id": event.pk,
        "type": "order.placed",
        "created_at": payload["timestamp"],
        "merchant_id": market["shop"].pk,
        "order_id": 7,
        "data": {"total": 12.5},
    }
    (attempt,) = WebhookDelivery.objects.all()
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, "")


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_server_errors_are_retried_with_backoff(market, receiver, status):
    receiver.answers = [status]
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    outcome = _deliver(endpoint, event, attempt=3)
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(3))
    assert retry_delay(1) < retry_delay(2) < retry_delay(3) == 4 * retry_delay(1)
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 1
    # past 24 h since the first attempt: no more
    late = _deliver(
        endpoint,
        event,
        first_attempt_at=timezone.now() - timedelta(hours=23, minutes=59, seconds=58),
    )
    assert late.retry_in is None


@pytest.mark.django_db
@pytest.mark.parametrize("status", [410, 400, 404, 301])
def test_other_answers_are_not_retried(market, receiver, status):
    receiver.answers = [status]
    endpoint = _shop_endpoint(market, receiver.url)
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert (outcome.delivered, outcome.retry_in) == (False, None)
    assert WebhookDelivery.objects.get().status_code == status
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 1


@pytest.mark.django_db
def test_a_receiver_that_stalls_times_out_and_is_retried(market, receiver):
    receiver.answers = [("sleep", 3)]
    endpoint = _shop_endpoint(market, receiver.url)
    started = time.monotonic()
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert time.monotonic() - started < 2.5
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(1))
    attempt = WebhookDelivery.objects.get()
    assert (attempt.status_code, attempt.error) == (None, "timeout")
    assert attempt.duration_ms >= 900


@pytest.mark.django_db
def test_an_unreachable_receiver_is_retried(market, receiver):
    receiver.url = receiver.url.rsplit(":", 1)[0] + ":1/hook"
    endpoint = _shop_endpoint(market, receiver.url)
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(1))
    assert "ConnectError" in WebhookDelivery.objects.get().error


@pytest.mark.django_db
def test_the_address_is_checked_again_at_delivery(market, receiver, settings):
    endpoint = _shop_endpoint(market, receiver.url)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert not outcome.delivered
    assert receiver.received == []
    assert WebhookDelivery.objects.get().error.startswith("refused")


# The address connected to is the one checked

HOOK_NAME = "hook.test"
# A public address no test may reach: connecting to it is refused here.
PUBLIC_ADDRESS = "93.184.215.14"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, str]:
    """A test CA, and a certificate it signed for HOOK_NAME and one for another name."""
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    files = {"ca": str(folder / "ca.pem")}
    _openssl(
        "req", "-x509", *ec, "-keyout", str(folder / "ca.key"), "-out", files["ca"],
        "-days", "1", "-subj", "/CN=GeoMarket test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    for name in (HOOK_NAME, "other.test"):
        key, request, cert = (str(folder / f"{name}.{kind}") for kind in ("key", "csr", "pem"))
        extensions = folder / f"{name}.ext"
        extensions.write_text(f"subjectAltName=DNS:{name}\n")
        _openssl("req", *ec, "-keyout", key, "-out", request, "-subj", f"/CN={name}")
        _openssl(
            "x509", "-req", "-in", request, "-CA", files["ca"],
            "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-out", cert,
            "-days", "1", "-extfile", str(extensions),
        )  # fmt: skip
        files[name] = cert
        files[f"{name}.key"] = key
    return files


@pytest.fixture
def tls_receiver(settings, monkeypatch, certificates, request):
    """An HTTPS receiver on loopback with the certificate of `request.param` (HOOK_NAME
    unless told), whose CA the deliveries trust."""
    name = getattr(request, "param", HOOK_NAME)
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    monkeypatch.setenv("SSL_CERT_FILE", certificates["ca"])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificates[name], certificates[f"{name}.key"])
    receiver, server = receiver_start(tls)
    receiver.port = server.server_address[1]
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def resolve(monkeypatch):
    """Make HOOK_NAME resolve to the addresses given, one list per lookup (the last for
    every lookup after), and record each connection opened to any address."""
    answers: list[list[str]] = []
    connections: list[tuple[str, int]] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOOK_NAME:
            return real_getaddrinfo(host, port, *args, **kwargs)
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
            for address in addresses
        ]

    def create_connection(address, *args, **kwargs):
        connections.append(address)
        if address[0] == PUBLIC_ADDRESS:
            raise ConnectionRefusedError("not from a test")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)

    def answer(*lookups: list[str]) -> list[tuple[str, int]]:
        answers[:] = lookups
        return connections

    return answer


def _named_endpoint(market, receiver) -> WebhookEndpoint:
    """An endpoint for the receiver by the name HOOK_NAME."""
    url = f"https://{HOOK_NAME}:{receiver.port}/hook"
    return _shop_endpoint(market, url)


@pytest.mark.django_db
def test_a_name_that_resolves_elsewhere_after_the_check_is_not_followed(
    market, tls_receiver, resolve, settings
):
    """DNS rebinding: public when written and when checked before the delivery,
    loopback a moment later."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    connections = resolve([PUBLIC_ADDRESS], [PUBLIC_ADDRESS], ["127.0.0.1"])
    endpoint = _named_endpoint(market, tls_receiver)
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert tls_receiver.received == []
    assert connections == [(PUBLIC_ADDRESS, tls_receiver.port)]
    assert not outcome.delivered
    assert "ConnectError" in WebhookDelivery.objects.get().error


@pytest.mark.django_db
def test_a_name_that_comes_to_lead_to_a_private_address_through_nat64_is_refused_at_delivery(
    market, resolve, settings
):
    """Delivery checks by the same rule as the endpoint's writing."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    connections = resolve([PUBLIC_ADDRESS], ["64:ff9b::7f00:1"])
    endpoint = webhook_create(
        created_by=market["owner"],
        merchant_id=market["shop"].pk,
        url=f"https://{HOOK_NAME}/hook",
        event_types=[],
    )
    outcome = _deliver(endpoint, _event(market["shop"].pk))
    assert not outcome.delivered
    assert connections == []
    assert WebhookDelivery.objects.get().error.startswith("refused")


@pytest.mark.django_db
def test_https_is_verified_for_the_urls_host_while_connecting_to_its_address(
    market, tls_receiver, resolve, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    resolve(["127.0.0.1"])
    endpoint = _named_endpoint(market, tls_receiver)
    assert _deliver(endpoint, _event(market["shop"].pk)).delivered
    (got,) = tls_receiver.received
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers["host"] == f"{HOOK_NAME}:{tls_receiver.port}"


@pytest.mark.django_db
def test_deliveries_share_one_tls_context(market, tls_receiver, resolve, settings, monkeypatch):
    """Loading the trusted certificates costs about 50 ms of CPU: once, not per delivery."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    resolve(["127.0.0.1"])
    built = []
    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", lambda: built.append(1) or real())
    urlcheck._tls_context.cache_clear()
    endpoint = _named_endpoint(market, tls_receiver)
    for _ in range(3):
        assert _deliver(endpoint, _event(market["shop"].pk)).delivered
    assert len(tls_receiver.received) == 3
    assert len(built) == 1


@pytest.mark.django_db
def test_a_proxy_from_the_environment_is_not_used(
    market, tls_receiver, resolve, settings, monkeypatch
):
    """Through a proxy's tunnel, the server would be asked for the address's certificate."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    resolve(["127.0.0.1"])
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    endpoint = _named_endpoint(market, tls_receiver)
    assert _deliver(endpoint, _event(market["shop"].pk)).delivered


@pytest.mark.django_db
@pytest.mark.parametrize("tls_receiver", ["other.test"], indirect=True)
def test_a_certificate_for_another_name_is_refused(market, tls_receiver, resolve, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    resolve(["127.0.0.1"])
    endpoint = _named_endpoint(market, tls_receiver)
    assert not _deliver(endpoint, _event(market["shop"].pk)).delivered
    assert tls_receiver.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in WebhookDelivery.objects.get().error


@pytest.mark.django_db
def test_an_address_that_refuses_gives_way_to_the_next_one_checked(
    market, tls_receiver, resolve, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    # The receiver listens on 127.0.0.1 only: 127.0.0.2 refuses.
    connections = resolve(["127.0.0.2", "127.0.0.1"])
    endpoint = _named_endpoint(market, tls_receiver)
    assert _deliver(endpoint, _event(market["shop"].pk)).delivered
    assert len(tls_receiver.received) == 1
    assert connections == [("127.0.0.2", tls_receiver.port), ("127.0.0.1", tls_receiver.port)]


@pytest.mark.django_db
def test_twenty_failures_in_a_row_disable_the_endpoint_and_a_success_resets(market, receiver):
    receiver.answers = [500] * (DISABLE_AFTER_FAILURES - 1) + [200, 500]
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    for attempt in range(1, DISABLE_AFTER_FAILURES):
        _deliver(endpoint, event, attempt=attempt)
    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.is_active) == (DISABLE_AFTER_FAILURES - 1, True)
    assert _deliver(endpoint, event).delivered
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 0
    receiver.answers = [500]
    for attempt in range(1, DISABLE_AFTER_FAILURES + 1):
        outcome = _deliver(endpoint, event, attempt=attempt)
    # the 20th failure disables it, and is not retried
    assert outcome.retry_in is None
    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.is_active) == (DISABLE_AFTER_FAILURES, False)
    assert endpoint.disabled_at is not None
    sent = len(receiver.received)
    assert not _deliver(endpoint, event).delivered
    assert len(receiver.received) == sent
    # turned on again, it starts afresh
    market["owner_client"].patch(f"{WEBHOOKS}{endpoint.pk}/", {"is_active": True}, "json")
    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.disabled_at, endpoint.is_active) == (0, None, True)


def _due_in(pending: WebhookPending) -> float:
    pending.refresh_from_db()
    return (pending.due_at - timezone.now()).total_seconds()


def _retries_fall_due() -> None:
    WebhookPending.objects.update(due_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_the_task_retries_until_the_endpoint_is_disabled(market, receiver):
    # Eager in tests: each retry the relay publishes runs at once.
    receiver.answers = [500]
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    webhook_deliver.delay(endpoint_id=endpoint.pk, event_id=event.pk)
    while WebhookPending.objects.exists():
        _retries_fall_due()
        assert webhook_deliveries_publish() == 1
    attempts = list(WebhookDelivery.objects.order_by("id").values_list("attempt", flat=True))
    assert attempts == list(range(1, DISABLE_AFTER_FAILURES + 1))
    assert {r.headers["webhook-id"] for r in receiver.received} == {str(event.pk)}


@pytest.mark.django_db
def test_a_retry_is_recorded_with_the_attempt_and_queued_when_due(market, receiver, monkeypatch):
    receiver.answers = [503]
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    queued = []
    monkeypatch.setattr(webhook_deliver, "apply_async", lambda **kwargs: queued.append(kwargs))
    first = timezone.now() - timedelta(minutes=3)
    webhook_deliver(
        endpoint_id=endpoint.pk, event_id=event.pk, attempt=2, first_attempt_at=first.isoformat()
    )
    # Nothing goes to the broker from the worker: the retry waits in the database.
    assert queued == []
    (retry,) = WebhookPending.objects.all()
    assert (retry.endpoint_id, retry.event_id, retry.attempt) == (endpoint.pk, event.pk, 3)
    assert retry.first_attempt_at == first
    wait = (retry.due_at - timezone.now()).total_seconds()
    assert retry_delay(2) - 5 < wait <= retry_delay(2)
    assert webhook_deliveries_publish() == 0
    _retries_fall_due()
    assert webhook_deliveries_publish() == 1
    ((sent,),) = [[q] for q in queued]
    assert sent["kwargs"] == {
        "endpoint_id": endpoint.pk,
        "event_id": event.pk,
        "attempt": 3,
        "first_attempt_at": first.isoformat(),
        "pending_id": retry.pk,
    }
    # Still owed until the attempt is recorded: due again once the resend delay is over.
    (still,) = WebhookPending.objects.all()
    assert _due_in(still) > settings.WEBHOOK_RESEND_SECONDS - 5


# Publishing through the outbox


@pytest.mark.django_db
def test_publishing_fans_out_to_matching_active_endpoints(market, receiver):
    shop, owner = market["shop"].pk, market["owner"]
    other_owner = factories.user()
    other = factories.merchant(owner=other_owner).pk
    operator = factories.user(is_staff=True)
    everything = webhook_create(
        created_by=owner, merchant_id=shop, url=receiver.url, event_types=[]
    )
    placed_only = webhook_create(
        created_by=owner, merchant_id=shop, url=receiver.url, event_types=["order.placed"]
    )
    operator_wide = webhook_create(
        created_by=operator, merchant_id=None, url=receiver.url, event_types=[]
    )
    others = webhook_create(
        created_by=other_owner, merchant_id=other, url=receiver.url, event_types=[]
    )
    webhook_create(
        created_by=owner, merchant_id=shop, url=receiver.url, event_types=[], is_active=False
    )
    placed = _event(shop)
    low = _event(shop, type="inventory.low_stock")
    theirs = _event(other)
    assert events_publish() == 3
    assert events_publish() == 0
    # Recorded as owed, not yet sent.
    assert WebhookPending.objects.count() == 7
    assert not WebhookDelivery.objects.exists()
    assert webhook_deliveries_publish() == 7
    assert webhook_deliveries_publish() == 0
    delivered = set(WebhookDelivery.objects.values_list("endpoint_id", "event_id"))
    assert delivered == {
        (everything.pk, placed.pk),
        (everything.pk, low.pk),
        (placed_only.pk, placed.pk),
        (operator_wide.pk, placed.pk),
        (operator_wide.pk, low.pk),
        (operator_wide.pk, theirs.pk),
        (others.pk, theirs.pk),
    }
    assert not Event.objects.filter(published_at__isnull=True).exists()
    # Each recorded attempt settled what was owed.
    assert not WebhookPending.objects.exists()


@pytest.mark.django_db
def test_deliveries_go_to_their_own_queue():
    route = celery_app.amqp.router.route({}, WEBHOOK_DELIVER_TASK)
    assert route["queue"].name == "webhooks"
    assert celery_app.amqp.router.route({}, "orders.send_order_confirmation")["queue"].name != (
        "webhooks"
    )


@pytest.fixture
def real_broker(settings):
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield saved[0]
    use_broker(saved[0])
    celery_app.conf.task_always_eager = saved[1]


def _queued(broker) -> dict:
    """The kwargs of the newest task on the webhooks queue, taken off it."""
    message = json.loads(broker.lpop("webhooks"))
    assert message["headers"]["task"] == WEBHOOK_DELIVER_TASK
    _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return kwargs


@pytest.mark.django_db
def test_a_broker_outage_leaves_the_deliveries_owed(market, real_broker):
    from bench.common.processes import free_port

    endpoint = _shop_endpoint(market, PUBLIC_URL)
    event = _event(market["shop"].pk)
    use_broker(f"redis://127.0.0.1:{free_port()}/0")
    # Publishing the event needs no broker: its delivery is owed in the database.
    assert events_publish() == 1
    event.refresh_from_db()
    assert event.published_at is not None
    assert webhook_deliveries_publish() == 0
    (pending,) = WebhookPending.objects.all()
    assert (pending.endpoint_id, pending.event_id, pending.attempt) == (endpoint.pk, event.pk, 1)
    # Not handed over: due at once, not after the resend delay.
    assert _due_in(pending) <= 0
    use_broker(real_broker)
    broker = redis.Redis.from_url(real_broker)
    before = broker.llen("webhooks")
    assert webhook_deliveries_publish() == 1
    assert broker.llen("webhooks") == before + 1
    kwargs = _queued(broker)
    assert (kwargs["pending_id"], kwargs["event_id"]) == (pending.pk, event.pk)


@pytest.mark.django_db
def test_a_delivery_the_broker_loses_goes_out_again_once(market, receiver, real_broker):
    """Redis's transport drops a task taken off the queue by a worker whose broker stops
    before it files the task as unacknowledged: the delivery stays owed, goes out again
    after the resend delay, and the lost copy, should it turn up, sends nothing."""
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    broker = redis.Redis.from_url(real_broker)
    assert events_publish() == 1
    assert webhook_deliveries_publish() == 1
    lost = _queued(broker)
    # Nothing recorded it: it is due again only once the resend delay is over.
    assert webhook_deliveries_publish() == 0
    (pending,) = WebhookPending.objects.all()
    assert _due_in(pending) > settings.WEBHOOK_RESEND_SECONDS - 5
    _retries_fall_due()
    assert webhook_deliveries_publish() == 1
    again = _queued(broker)
    assert again == lost
    assert webhook_deliver(**again) is True
    # The lost copy turning up late, or the broker handing one out twice (late
    # acknowledgement), finds nothing owed.
    assert webhook_deliver(**lost) is False
    assert [r.headers["webhook-id"] for r in receiver.received] == [str(event.pk)]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint_id, delivery.attempt, delivery.status_code) == (endpoint.pk, 1, 200)
    assert not WebhookPending.objects.exists()


@pytest.mark.django_db
def test_copies_queued_behind_a_backlog_deliver_once_the_first_arrives(
    market, receiver, real_broker
):
    """A queue that waits longer than the resend delay holds several copies of a delivery:
    the first to reach a worker delivers it, the rest send nothing. Had each new copy
    superseded the older ones, a backlog outlasting the delay would never deliver."""
    _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    broker = redis.Redis.from_url(real_broker)
    assert events_publish() == 1
    copies = []
    for _ in range(3):
        assert webhook_deliveries_publish() == 1
        copies.append(_queued(broker))
        _retries_fall_due()
    oldest, *later = copies
    assert webhook_deliver(**oldest) is True
    assert [webhook_deliver(**copy) for copy in later] == [False, False]
    assert [r.headers["webhook-id"] for r in receiver.received] == [str(event.pk)]
    assert not WebhookPending.objects.exists()


def _attempt_owed(pending: WebhookPending):
    """The attempt of an owed delivery, as a task with no id (a direct call) makes it."""
    return webhook_deliver_attempt(
        endpoint_id=pending.endpoint_id,
        event_id=pending.event_id,
        attempt=pending.attempt,
        first_attempt_at=pending.first_attempt_at,
        pending_id=pending.pk,
    )


@pytest.mark.django_db
def test_each_hand_over_waits_as_long_as_the_delivery_has_been_out(market, receiver, real_broker):
    """The resend delay doubles: first handed over 1,000 s ago, the next is 1,000 s off;
    a first hand-over waits the resend delay and records when it was."""
    _shop_endpoint(market, receiver.url)
    _event(market["shop"].pk)
    broker = redis.Redis.from_url(real_broker)
    assert events_publish() == 1
    assert webhook_deliveries_publish() == 1
    _queued(broker)
    (pending,) = WebhookPending.objects.all()
    assert abs((pending.handed_at - timezone.now()).total_seconds()) < 5
    assert _due_in(pending) > settings.WEBHOOK_RESEND_SECONDS - 5
    long_ago = timezone.now() - timedelta(seconds=1000)
    WebhookPending.objects.update(handed_at=long_ago, due_at=timezone.now())
    assert webhook_deliveries_publish() == 1
    _queued(broker)
    assert 1000 - 5 < _due_in(pending) <= 1000 + 5
    assert pending.handed_at == long_ago


@pytest.mark.django_db
def test_a_claimed_delivery_is_neither_sent_again_nor_run_twice(market, receiver, monkeypatch):
    _shop_endpoint(market, receiver.url)
    _event(market["shop"].pk)
    assert events_publish() == 1
    (pending,) = WebhookPending.objects.all()
    post = services._post
    meanwhile = []

    def slow_post(endpoint, event):
        # While this copy waits on the receiver: the relay's round, and another copy.
        meanwhile.append(webhook_deliveries_publish())
        meanwhile.append(_attempt_owed(pending).delivered)
        return post(endpoint, event)

    monkeypatch.setattr(services, "_post", slow_post)
    outcome = _attempt_owed(pending)
    assert outcome.delivered
    assert meanwhile == [0, False]
    assert len(receiver.received) == 1
    assert not WebhookPending.objects.exists()


@pytest.mark.django_db
def test_a_copy_overtaken_by_another_leaves_the_retry_to_it(market, receiver, monkeypatch):
    receiver.answers = [500]
    _shop_endpoint(market, receiver.url)
    _event(market["shop"].pk)
    assert events_publish() == 1
    (pending,) = WebhookPending.objects.all()
    post = services._post

    def slow_post(endpoint, event):
        # Past this copy's claim, another copy recorded the attempt and its retry first.
        WebhookPending.objects.filter(pk=pending.pk).delete()
        WebhookPending.objects.create(
            endpoint=endpoint,
            event=event,
            attempt=2,
            first_attempt_at=pending.first_attempt_at,
            due_at=timezone.now() + timedelta(seconds=retry_delay(1)),
        )
        return post(endpoint, event)

    monkeypatch.setattr(services, "_post", slow_post)
    outcome = _attempt_owed(pending)
    assert (outcome.delivered, outcome.retry_in) == (False, None)
    # Its attempt is recorded; the retry is the other copy's alone.
    assert WebhookDelivery.objects.get().status_code == 500
    (retry,) = WebhookPending.objects.all()
    assert retry.attempt == 2


@pytest.mark.django_db
def test_an_endpoint_turned_off_is_owed_nothing(market, receiver):
    endpoint = _shop_endpoint(market, receiver.url)
    _event(market["shop"].pk)
    assert events_publish() == 1
    # Turned off after its delivery was recorded as owed, before the relay hands it over.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert webhook_deliveries_publish() == 1
    assert receiver.received == []
    # Not sent again and again: the task found the endpoint off and settled it.
    assert not WebhookPending.objects.exists()


@pytest.mark.django_db
def test_an_endpoint_that_no_longer_takes_a_type_is_owed_none_of_it(market, receiver):
    receiver.answers = [500, 500, 200]
    endpoint = _shop_endpoint(market, receiver.url)
    low = _event(market["shop"].pk, type="inventory.low_stock")
    placed = _event(market["shop"].pk)
    assert events_publish() == 2
    assert webhook_deliveries_publish() == 2
    assert WebhookPending.objects.count() == 2  # both retries owed
    patched = market["owner_client"].patch(
        f"{WEBHOOKS}{endpoint.pk}/", {"event_types": ["order.placed"]}, "json"
    )
    assert patched.status_code == 200
    _retries_fall_due()
    assert webhook_deliveries_publish() == 2
    # The retry of the type it dropped settled without a request; the other went out.
    sent = [int(r.headers["webhook-id"]) for r in receiver.received]
    assert sorted(sent[:2]) == [low.pk, placed.pk]
    assert sent[2:] == [placed.pk]
    assert not WebhookPending.objects.exists()


def _demote(user) -> None:
    User.objects.filter(pk=user.pk).update(is_staff=False)


def _deactivate(user) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def _owner_deactivated(market) -> None:
    _deactivate(market["owner"])


def _merchant_given_away(market) -> None:
    Merchant.objects.filter(pk=market["shop"].pk).update(owner=factories.user())


def _owed_nothing_once(market, receiver, lose_right) -> None:
    """An endpoint of the shop's events, its creator losing its right by `lose_right()`
    between an event's fan-out and its delivery: the delivery owed before is settled
    unsent when it falls due, and nothing is owed for what comes after."""
    _event(market["shop"].pk)
    assert events_publish() == 1
    lose_right()
    assert webhook_deliveries_publish() == 1
    assert receiver.received == []
    assert not WebhookPending.objects.exists()
    assert not WebhookDelivery.objects.exists()
    _event(market["shop"].pk)
    assert events_publish() == 1
    assert not WebhookPending.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("merchant_of_endpoint", [False, True])
@pytest.mark.parametrize("lose_right", [_demote, _deactivate])
def test_an_operators_endpoint_takes_nothing_once_it_is_no_longer_an_operator(
    market, receiver, as_user, lose_right, merchant_of_endpoint
):
    operator = factories.user(is_staff=True)
    body = {"url": receiver.url, "merchant_id": market["shop"].pk if merchant_of_endpoint else None}
    created = as_user(operator).post(WEBHOOKS, body, "json")
    assert created.status_code == 201
    _owed_nothing_once(market, receiver, lambda: lose_right(operator))
    # Answered as it is: off.
    other_operator = as_user(factories.user(is_staff=True))
    path = f"{WEBHOOKS}{created.json()['id']}/"
    assert other_operator.get(path).json()["is_active"] is False
    assert [e["is_active"] for e in other_operator.get(WEBHOOKS).json()["results"]] == [False]


@pytest.mark.django_db
@pytest.mark.parametrize("lose_right", [_owner_deactivated, _merchant_given_away])
def test_an_owners_endpoint_takes_nothing_once_it_no_longer_owns_its_merchant(
    market, receiver, as_user, lose_right
):
    created = market["owner_client"].post(WEBHOOKS, {"url": receiver.url}, "json")
    assert created.status_code == 201
    _owed_nothing_once(market, receiver, lambda: lose_right(market))
    operator = as_user(factories.user(is_staff=True))
    path = f"{WEBHOOKS}{created.json()['id']}/"
    assert operator.get(path).json()["is_active"] is False
    # Turned on by someone who may manage it, it takes events by their right.
    patched = operator.patch(path, {"is_active": True}, "json")
    assert patched.status_code == 200
    assert patched.json()["is_active"] is True
    _event(market["shop"].pk)
    assert events_publish() == 1
    assert WebhookPending.objects.count() == 1


@pytest.mark.django_db
def test_the_new_owner_of_a_merchant_takes_over_its_endpoint_by_turning_it_on(
    market, receiver, as_user
):
    created = market["owner_client"].post(WEBHOOKS, {"url": receiver.url}, "json").json()
    buyer = factories.user()
    Merchant.objects.filter(pk=market["shop"].pk).update(owner=buyer)
    path = f"{WEBHOOKS}{created['id']}/"
    buyer_client = as_user(buyer)
    assert buyer_client.get(path).json()["is_active"] is False
    # Changing it otherwise does not take it over.
    renamed = buyer_client.patch(path, {"event_types": ["order.placed"]}, "json")
    assert renamed.json()["is_active"] is False
    assert buyer_client.patch(path, {"is_active": True}, "json").json()["is_active"] is True
    assert WebhookEndpoint.objects.get(pk=created["id"]).created_by_id == buyer.pk


@pytest.mark.django_db
def test_endpoints_whose_creators_keep_the_right_are_answered_on(market, as_user):
    operator = as_user(factories.user(is_staff=True))
    mine = market["owner_client"].post(WEBHOOKS, {"url": PUBLIC_URL}, "json").json()
    everyone = operator.post(WEBHOOKS, {"url": PUBLIC_URL}, "json").json()
    assert mine["is_active"] is True
    assert everyone["is_active"] is True
    listed = operator.get(WEBHOOKS).json()["results"]
    assert [(e["id"], e["is_active"]) for e in listed] == [
        (mine["id"], True),
        (everyone["id"], True),
    ]
    assert market["owner_client"].get(f"{WEBHOOKS}{mine['id']}/").json()["is_active"] is True


@pytest.mark.django_db
def test_an_endpoint_of_every_merchant_with_no_creator_recorded_takes_events_as_before(
    market, receiver
):
    """Created before creators were recorded (migration 0010 leaves them none)."""
    endpoint = _shop_endpoint(market, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(merchant=None, created_by=None)
    _event(market["shop"].pk)
    assert events_publish() == 1
    assert webhook_deliveries_publish() == 1
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_a_merchants_endpoint_with_no_creator_takes_nothing(market, receiver, as_user):
    """Made by a process older than migration 0010 while it ran: nobody's right covers it."""
    endpoint = _shop_endpoint(market, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(created_by=None)
    _event(market["shop"].pk)
    assert events_publish() == 1
    assert not WebhookPending.objects.exists()
    answer = market["owner_client"].get(f"{WEBHOOKS}{endpoint.pk}/").json()
    assert answer["is_active"] is False


@pytest.mark.django_db
def test_a_user_who_created_an_endpoint_is_not_deleted_with_it():
    operator = factories.user(is_staff=True)
    endpoint = services.webhook_create(
        created_by=operator, merchant_id=None, url=PUBLIC_URL, event_types=[]
    )
    with pytest.raises(ProtectedError):
        User.objects.filter(pk=operator.pk).delete()
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    # Deactivated, it keeps its endpoint, which then takes nothing.
    User.objects.filter(pk=operator.pk).update(is_active=False)
    assert not WebhookEndpoint.objects.filter(ENDPOINT_RECEIVES, pk=endpoint.pk).exists()


@pytest.mark.django_db
def test_the_migration_gives_a_merchants_endpoints_its_owner_and_no_other_a_creator(market):
    mine = _shop_endpoint(market, PUBLIC_URL)
    everyone = webhook_create(
        created_by=factories.user(is_staff=True), merchant_id=None, url=PUBLIC_URL, event_types=[]
    )
    WebhookEndpoint.objects.update(created_by=None)
    migration = importlib.import_module("events.migrations.0010_webhook_endpoint_created_by")
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)
    creators = dict(WebhookEndpoint.objects.values_list("pk", "created_by"))
    assert creators == {mine.pk: market["owner"].pk, everyone.pk: None}


@pytest.mark.django_db
def test_turning_on_an_endpoint_disabled_since_it_was_read_starts_it_afresh(market):
    endpoint = _shop_endpoint(market, PUBLIC_URL)
    read = WebhookEndpoint.objects.get(pk=endpoint.pk)
    # The 20th failure in a row commits between the PATCH's read and its write.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, failure_count=DISABLE_AFTER_FAILURES, disabled_at=timezone.now()
    )
    services.webhook_update(endpoint=read, data={"is_active": True}, actor=market["owner"])
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.failure_count, endpoint.disabled_at) == (True, 0, None)


@pytest.mark.django_db
def test_a_broker_outage_when_a_retry_falls_due_loses_none(market, receiver, real_broker):
    receiver.answers = [500]
    endpoint = _shop_endpoint(market, receiver.url)
    event = _event(market["shop"].pk)
    assert webhook_deliver_attempt(
        endpoint_id=endpoint.pk, event_id=event.pk, attempt=1, first_attempt_at=timezone.now()
    ).retry_in
    _retries_fall_due()
    from bench.common.processes import free_port

    use_broker(f"redis://127.0.0.1:{free_port()}/0")
    assert webhook_deliveries_publish() == 0
    assert WebhookPending.objects.count() == 1
    use_broker(real_broker)
    broker = redis.Redis.from_url(real_broker)
    before = broker.llen("webhooks")
    try:
        assert webhook_deliveries_publish() == 1
        assert broker.llen("webhooks") == before + 1
    finally:
        kwargs = _queued(broker)
    (pending,) = WebhookPending.objects.all()
    assert (kwargs["pending_id"], kwargs["attempt"]) == (pending.pk, 2)
    # Owed until the attempt is recorded.
    assert _due_in(pending) > settings.WEBHOOK_RESEND_SECONDS - 5


# Replay and the attempts


@pytest.mark.django_db
def test_replay_delivers_again_every_matching_event_after_the_cursor(market, receiver):
    shop = market["shop"].pk
    client = market["owner_client"]
    endpoint = client.post(
        WEBHOOKS, {"url": receiver.url, "event_types": ["order.placed"]}, "json"
    ).json()
    first = _event(shop)
    second = _event(shop)
    _event(shop, type="inventory.low_stock")
    _event(factories.merchant(owner=factories.user()).pk)
    events_feed_positions_assign()
    first.refresh_from_db()
    answer = client.post(
        f"{WEBHOOKS}{endpoint['id']}/replay/",
        {"after": cursor_encode(first.feed_position)},
        "json",
    )
    assert answer.status_code == 202
    assert answer.json() == {"replayed": 1}
    assert [r.headers["webhook-id"] for r in receiver.received] == [str(second.pk)]
    assert (
        client.post(
            f"{WEBHOOKS}{endpoint['id']}/replay/", {"after": "nonsense"}, "json"
        ).status_code
        == 400
    )
    attempts = client.get(f"{WEBHOOKS}{endpoint['id']}/deliveries/").json()["results"]
    assert len(attempts) == 1
    assert set(attempts[0]) == {
        "event_id",
        "attempt",
        "status_code",
        "error",
        "duration_ms",
        "created_at",
    }
    assert (attempts[0]["event_id"], attempts[0]["status_code"]) == (second.pk, 200)


@pytest.mark.django_db
def test_replay_after_a_cursor_past_the_feeds_last_event_is_400(market, monkeypatch):
    """As the feed's: no cursor it gave (another deployment's, or from before a restore),
    which would answer `replayed: 0` until the feed got there, then pass what came before."""
    endpoint = _shop_endpoint(market, PUBLIC_URL)
    _event(market["shop"].pk)
    queued = []
    monkeypatch.setattr(services, "_deliver_later", lambda **kwargs: queued.append(kwargs))
    answer = market["owner_client"].post(
        f"{WEBHOOKS}{endpoint.pk}/replay/", {"after": cursor_encode(2)}, "json"
    )
    assert answer.status_code == 400, answer.content
    assert "after" in answer.json()
    assert queued == []
    answer = market["owner_client"].post(
        f"{WEBHOOKS}{endpoint.pk}/replay/", {"after": cursor_encode(1)}, "json"
    )
    assert (answer.status_code, answer.json()) == (202, {"replayed": 0})


@pytest.mark.django_db
def test_endpoints_and_deliveries_are_answered_as_their_serializers_render_them(
    market, django_assert_num_queries
):
    """The reads render rows of compiled statements (`WEBHOOK`, `WEBHOOK_DELIVERY`); the
    serializers render the objects that writes answer with. The same bytes."""
    endpoint = webhook_create(
        created_by=market["owner"],
        merchant_id=market["shop"].pk,
        url=PUBLIC_URL,
        event_types=["order.placed"],
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, failure_count=20, disabled_at=timezone.now()
    )
    endpoint.refresh_from_db()
    event = _event(market["shop"].pk)
    deliveries = [
        WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, attempt=n, status_code=code, error=error, duration_ms=n
        )
        for n, code, error in ((1, None, 'timed out "\u2028"'), (2, 500, ""), (3, 200, ""))
    ]
    client = market["owner_client"]
    render = JSONRenderer().render
    with django_assert_num_queries(2):  # the token with the owner's merchant, the page
        listed = client.get(WEBHOOKS)
    assert render(listed.json()["results"]) == render([WebhookSerializer(endpoint).data])
    detail = client.get(f"{WEBHOOKS}{endpoint.pk}/")
    assert detail.content == render(WebhookSerializer(endpoint).data)
    with django_assert_num_queries(3):  # and the endpoint, then the page with its count
        page = client.get(f"{WEBHOOKS}{endpoint.pk}/deliveries/", {"page_size": 2})
    expected = WebhookDeliverySerializer(deliveries[::-1][:2], many=True).data
    assert page.json()["count"] == 3
    assert render(page.json()["results"]) == render(expected)


def _turned_off(client, endpoint_id: int) -> None:
    turned = client.patch(f"{WEBHOOKS}{endpoint_id}/", {"is_active": False}, "json")
    assert turned.status_code == 200


def _creator_no_longer_staff(client, endpoint_id: int) -> None:
    User.objects.filter(pk=WebhookEndpoint.objects.get(pk=endpoint_id).created_by_id).update(
        is_staff=False
    )


@pytest.mark.django_db
@pytest.mark.parametrize("stopped", [_turned_off, _creator_no_longer_staff])
def test_replay_to_an_endpoint_that_takes_no_events_is_refused(market, receiver, as_user, stopped):
    """Its deliveries would each be dropped (`webhook_deliver_attempt`): a 202 counting
    them would promise what none keeps. A 409 says so, and sends nothing."""
    creator = as_user(factories.user(is_staff=True))
    endpoint_id = creator.post(
        WEBHOOKS, {"url": receiver.url, "merchant_id": market["shop"].pk}, "json"
    ).json()["id"]
    _event(market["shop"].pk)
    events_feed_positions_assign()
    client = as_user(factories.user(is_staff=True))
    stopped(client, endpoint_id)
    assert client.get(f"{WEBHOOKS}{endpoint_id}/").json()["is_active"] is False
    answer = client.post(f"{WEBHOOKS}{endpoint_id}/replay/", {"after": cursor_encode(0)}, "json")
    assert answer.status_code == 409, answer.content
    assert answer.json()["code"] == "webhook_not_receiving"
    assert receiver.received == []
    assert not WebhookDelivery.objects.filter(endpoint_id=endpoint_id).exists()
    # Turned on (taken over), it replays.
    assert client.patch(f"{WEBHOOKS}{endpoint_id}/", {"is_active": True}, "json").status_code == 200
    answer = client.post(f"{WEBHOOKS}{endpoint_id}/replay/", {"after": cursor_encode(0)}, "json")
    assert (answer.status_code, answer.json()) == (202, {"replayed": 1})
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_an_endpoint_taking_events_stays_its_creators_when_sent_back_on(market, as_user):
    """`is_active: true` on an endpoint that takes events now (a client sending back the
    whole endpoint it read) turns nothing on, so takes nothing over: the owner's endpoint
    an operator edited goes on taking events once that operator is no longer staff."""
    created = market["owner_client"].post(WEBHOOKS, {"url": PUBLIC_URL}, "json").json()
    path = f"{WEBHOOKS}{created['id']}/"
    staff = factories.user(is_staff=True)
    operator = as_user(staff)
    edited = {"url": "https://93.184.215.15/hook", "event_types": [], "is_active": True}
    patched = operator.patch(path, edited, "json")
    assert (patched.status_code, patched.json()["is_active"]) == (200, True)
    assert operator.patch(path, {"url": PUBLIC_URL}, "json").status_code == 200
    assert WebhookEndpoint.objects.get(pk=created["id"]).created_by_id == market["owner"].pk
    User.objects.filter(pk=staff.pk).update(is_staff=False)
    assert market["owner_client"].get(path).json()["is_active"] is True


@pytest.mark.django_db
def test_the_list_reads_whether_each_endpoint_takes_events_in_its_one_statement(
    market, as_user, django_assert_num_queries
):
    """`is_active` reads each endpoint's creator and merchant: joined in the page's
    statement, not one read per endpoint, whatever the number of endpoints and creators."""
    staff = factories.user(is_staff=True)
    operator = as_user(staff)
    shop = market["shop"].pk
    for listed in (3, 6):
        webhook_create(created_by=market["owner"], merchant_id=shop, url=PUBLIC_URL, event_types=[])
        webhook_create(created_by=staff, merchant_id=None, url=PUBLIC_URL, event_types=[])
        gone = factories.user(is_staff=True)
        webhook_create(created_by=gone, merchant_id=shop, url=PUBLIC_URL, event_types=[])
        User.objects.filter(pk=gone.pk).update(is_staff=False)
        with django_assert_num_queries(2):  # the token, the page
            results = operator.get(WEBHOOKS).json()["results"]
        assert [e["is_active"] for e in results] == [True, True, False] * (listed // 3)
