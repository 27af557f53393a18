"""What a receiver cannot make a delivery cost: more time than WEBHOOK_TIMEOUT_SECONDS,
however slowly it answers, nor the memory of a huge answer; and what an endpoint's write
does not hold open while its URL's name is looked up: a database transaction."""

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.utils import timezone

from events.models import WebhookDelivery, WebhookEndpoint, WebhookPending
from events.services import event_record, retry_delay, webhook_create, webhook_deliver_attempt

DEADLINE = 1
WEBHOOKS = "/api/v1/webhooks/"
HOOK_NAME = "hook.test"


@dataclass
class RawReceiver:
    """A receiver on loopback that reads each request whole, then answers as `answer`
    writes to its socket, counting in `sent` what it wrote of the body; `answered` is set
    once that ends, `ended` says how."""

    answer: Callable[["RawReceiver", socket.socket], None]
    url: str = ""
    answered: threading.Event = field(default_factory=threading.Event)
    ended: list[str] = field(default_factory=list)
    sent: int = 0

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed by the test
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                if not (received := conn.recv(65536)):
                    return
                request += received
            head, body = request.split(b"\r\n\r\n", 1)
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            try:
                self.answer(self, conn)
                self.ended.append("answered")
            except OSError as exc:
                self.ended.append(exc.__class__.__name__)
            self.answered.set()


@pytest.fixture
def raw_receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = DEADLINE
    listener = socket.create_server(("127.0.0.1", 0))

    def start(answer) -> RawReceiver:
        receiver = RawReceiver(answer=answer)
        receiver.url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        threading.Thread(target=receiver.serve, args=(listener,), daemon=True).start()
        return receiver

    yield start
    listener.close()


def _trickle(data: bytes, every: float):
    """Each byte `every` seconds: well within httpx's wait for any one read."""

    def answer(receiver: RawReceiver, conn: socket.socket) -> None:
        for byte in data:
            conn.sendall(bytes([byte]))
            receiver.sent += 1
            time.sleep(every)

    return answer


def _attempt(market, url: str):
    endpoint = webhook_create(
        created_by=market["owner"], merchant_id=market["shop"].pk, url=url, event_types=[]
    )
    event = event_record(type="order.placed", merchant_id=market["shop"].pk, data={})
    # What the receiver saw tells where the attempt stopped, not the time it took: a
    # busy machine stretches that either way.
    return webhook_deliver_attempt(
        endpoint_id=endpoint.pk, event_id=event.pk, attempt=1, first_attempt_at=timezone.now()
    )


@pytest.mark.django_db
def test_an_answer_trickled_past_the_deadline_is_a_timeout_retried(market, raw_receiver):
    """Its status line and headers come a byte every 0.1 s: 4 s in all, each read well
    under the 1 s httpx waits for one."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    receiver = raw_receiver(_trickle(head, 0.1))
    outcome = _attempt(market, receiver.url)
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(1))
    attempt = WebhookDelivery.objects.get()
    assert (attempt.status_code, attempt.error) == (None, "timeout")
    assert WebhookPending.objects.get().attempt == 2
    assert receiver.answered.wait(2)
    assert receiver.sent < len(head)


@pytest.mark.django_db
def test_a_body_trickled_after_the_status_holds_nothing(market, raw_receiver):
    """The status is all a delivery keeps: it is recorded as it comes, whatever the body.
    The body is held back until the attempt is over: an attempt that waited for it would
    time out, however fast the machine (trickled, each byte well within httpx's wait for
    one, it was delivered whether its body was read or not)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n"
    attempt_over = threading.Event()

    def answer(receiver, conn):
        conn.sendall(head)
        attempt_over.wait(10)
        _trickle(b"x" * 30, 0.1)(receiver, conn)

    receiver = raw_receiver(answer)
    try:
        outcome = _attempt(market, receiver.url)
    finally:
        attempt_over.set()
    assert outcome.delivered
    assert WebhookDelivery.objects.get().status_code == 200


@pytest.mark.django_db
def test_a_huge_answer_is_not_read(market, raw_receiver):
    """A receiver answering 64 MiB finds the connection closed once what the sockets'
    buffers hold is sent: the delivery read no more than its status needed."""
    size, chunk = 64 * 2**20, b"x" * 65536

    def answer(receiver, conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n" % size)
        while receiver.sent < size:
            conn.sendall(chunk)
            receiver.sent += len(chunk)

    receiver = raw_receiver(answer)
    outcome = _attempt(market, receiver.url)
    assert (outcome.delivered, outcome.retry_in) == (False, retry_delay(1))
    assert WebhookDelivery.objects.get().status_code == 500
    assert receiver.answered.wait(2)
    assert receiver.ended[0] in ("ConnectionResetError", "BrokenPipeError")
    assert receiver.sent < size // 8


@pytest.fixture
def hook_name_resolves(monkeypatch):
    """HOOK_NAME resolves to the addresses given; `lookups` notes, for each lookup of it,
    whether the caller's database connection was in a transaction."""
    addresses: list[str] = []
    lookups: list[bool] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOOK_NAME:
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(connection.in_atomic_block)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
            for address in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def resolve(*answer: str) -> list[bool]:
        addresses[:] = answer
        return lookups

    return resolve


@pytest.mark.django_db
def test_addresses_that_refuse_slowly_are_tried_only_until_the_deadline(
    market, settings, hook_name_resolves, monkeypatch
):
    """Each connection is refused 0.6 s after it is asked for (a firewall's late reset):
    the second address gets what the first left of the deadline, the third nothing."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = DEADLINE
    hook_name_resolves("127.0.0.2", "127.0.0.3", "127.0.0.4")
    connections = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connections.append(address[0])
        if timeout is not None and timeout < 0.6:
            time.sleep(timeout)
            raise TimeoutError("timed out")
        time.sleep(0.6)
        raise ConnectionRefusedError("refused late")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    outcome = _attempt(market, f"http://{HOOK_NAME}:8080/hook")
    # The third address is never asked: the deadline has passed by then.
    assert connections in (["127.0.0.2"], ["127.0.0.2", "127.0.0.3"])
    assert outcome.retry_in == retry_delay(1)
    assert WebhookDelivery.objects.get().error == "timeout"


@pytest.mark.django_db(transaction=True)
def test_an_endpoints_url_is_looked_up_with_no_transaction_open(
    market, settings, hook_name_resolves
):
    """A slow lookup would hold the write's transaction, and its connection, open.
    Committed, as the API commits: inside a test's transaction every lookup is in one."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    lookups = hook_name_resolves("93.184.215.14")
    client = market["owner_client"]
    created = client.post(WEBHOOKS, {"url": f"https://{HOOK_NAME}/a"}, "json")
    assert created.status_code == 201, created.content
    path = f"{WEBHOOKS}{created.json()['id']}/"
    patched = client.patch(path, {"url": f"https://{HOOK_NAME}/b"}, "json")
    assert patched.status_code == 200, patched.content
    assert lookups == [False, False]
    assert WebhookEndpoint.objects.get().url == f"https://{HOOK_NAME}/b"
