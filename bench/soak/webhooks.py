"""The soak's webhook receivers and endpoints: two receiver processes on loopback (one
healthy, one failing), three endpoints registered through the API, and what the
receivers got, compared with the events table after the drain."""

import base64
import hashlib
import hmac
import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common.processes import free_port
from bench.soak.city import City
from bench.soak.config import RUN_DIR
from bench.soak.stack import Child


@dataclass(frozen=True)
class Endpoint:
    name: str
    id: int
    secret: str
    # The receiver's path, which tells this endpoint's deliveries from the others'.
    path: str
    merchant_id: int | None
    event_types: tuple[str, ...]
    healthy: bool

    def takes(self, *, merchant_id: int, type: str) -> bool:
        """API.md: an endpoint gets its merchant's events (every merchant's without one),
        of its types (every type without any)."""
        return (self.merchant_id is None or self.merchant_id == merchant_id) and (
            not self.event_types or type in self.event_types
        )


@dataclass(frozen=True)
class Delivery:
    """One request a receiver got."""

    path: str
    id: str | None
    timestamp: str | None
    signature: str | None
    body: str
    # When the receiver got it (seconds since the epoch).
    at: float = 0.0


@dataclass(frozen=True)
class EventRow:
    id: int
    merchant_id: int
    type: str


@dataclass
class DeliveryCheck:
    expected: int = 0
    # Requests, and the events among them (the rest were sent again).
    received: int = 0
    distinct: int = 0
    missing: list[int] = field(default_factory=list)
    # Delivered though the endpoint does not take them, or not events at all.
    foreign: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.received - self.distinct

    @property
    def passed(self) -> bool:
        return not (self.missing or self.foreign or self.unsigned)


def signature_valid(*, secret: str, delivery: Delivery) -> bool:
    """Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` keyed with the
    secret's base64 after `whsec_`; computed here by hand, apart from the server's library.
    The header may carry several signatures, space-separated."""
    if not (delivery.id and delivery.timestamp and delivery.signature):
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{delivery.id}.{delivery.timestamp}.{delivery.body}".encode()
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, part) for part in delivery.signature.split())


def deliveries_compare(
    *, endpoint: Endpoint, events: Iterable[EventRow], after_id: int, deliveries: list[Delivery]
) -> DeliveryCheck:
    """What a healthy endpoint should have got (every event after `after_id` it takes) and
    what its receiver acknowledged, by `webhook-id`: at least once, so a duplicate is no
    fault, a missing event is, and so is an event it does not take or a bad signature."""
    by_id = {event.id: event for event in events}
    mine = [d for d in deliveries if d.path == endpoint.path]
    got = Counter(d.id for d in mine)
    check = DeliveryCheck(received=len(mine), distinct=len(got))
    expected = [
        event.id
        for event in by_id.values()
        if event.id > after_id and endpoint.takes(merchant_id=event.merchant_id, type=event.type)
    ]
    check.expected = len(expected)
    check.missing = sorted(event_id for event_id in expected if str(event_id) not in got)
    for webhook_id in got:
        event = by_id.get(int(webhook_id)) if webhook_id and webhook_id.isdigit() else None
        if event is None:
            check.foreign.append(f"webhook-id {webhook_id!r}: no such event")
        elif not endpoint.takes(merchant_id=event.merchant_id, type=event.type):
            check.foreign.append(f"event {event.id} ({event.type}, merchant {event.merchant_id})")
    check.unsigned = [
        f"webhook-id {delivery.id!r}"
        for delivery in mine
        if not signature_valid(secret=endpoint.secret, delivery=delivery)
    ]
    return check


def deliveries_read(path: Path) -> list[Delivery]:
    """A receiver's log; a last line cut short (the receiver stopped mid-write) is left out:
    its request was not answered."""
    found = []
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found.append(
            Delivery(
                path=record["path"],
                id=record["id"],
                timestamp=record["timestamp"],
                signature=record["signature"],
                body=record["body"],
                at=record["at"],
            )
        )
    return found


def delivery_lags(
    *, written: dict[int, float], deliveries: list[Delivery], path: str
) -> list[float]:
    """For each event written (id: when, in seconds since the epoch) that reached the
    endpoint at `path`, how long after it was written it first did, in time order."""
    first: dict[int, float] = {}
    for delivery in deliveries:
        if delivery.path == path and delivery.id and delivery.id.isdigit():
            event_id = int(delivery.id)
            first[event_id] = min(first.get(event_id, delivery.at), delivery.at)
    return sorted(first[event_id] - at for event_id, at in written.items() if event_id in first)


class Receivers:
    """The two receiver processes, and the endpoints that point at them."""

    def __init__(self, env: dict):
        self.ports = {"healthy": free_port(), "failing": free_port()}
        self.logs = {name: RUN_DIR / f"webhooks-{name}.jsonl" for name in self.ports}
        self.children = [
            Child(
                f"webhook receiver ({name})",
                [
                    sys.executable,
                    "-m",
                    "bench.soak.receiver",
                    *("--port", str(port), "--behaviour", name, "--log", str(self.logs[name])),
                ],
                env=env,
                log_path=RUN_DIR / f"receiver-{name}.log",
            )
            for name, port in self.ports.items()
        ]
        self.endpoints: list[Endpoint] = []

    def register(self, *, base_url: str, city: City) -> None:
        """Through the API, as its users would: the operator's endpoints for every event, to
        the healthy receiver and to the failing one, and one hot merchant's owner's for its
        placed orders and status changes only, to the healthy one."""
        merchant_id = city.hot[0].spot.merchant_id
        plans = [
            ("operator, every event", "healthy", "/all", city.operator.token, [], None),
            (
                f"owner of merchant {merchant_id}, two types",
                "healthy",
                "/owner",
                city.owners[merchant_id].token,
                ["order.placed", "order.status_changed"],
                merchant_id,
            ),
            ("operator, every event", "failing", "/all", city.operator.token, [], None),
        ]
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for name, receiver, path, token, types, merchant in plans:
                url = f"http://127.0.0.1:{self.ports[receiver]}{path}"
                response = client.post(
                    "/api/v1/webhooks/",
                    json={"url": url, "event_types": types},
                    headers={"Authorization": f"Token {token}"},
                )
                if response.status_code != 201:
                    raise SystemExit(
                        f"registering the webhook endpoint {url}: {response.status_code} "
                        f"{response.text[:300]}"
                    )
                body = response.json()
                self.endpoints.append(
                    Endpoint(
                        name=f"{name} ({receiver})",
                        id=body["id"],
                        secret=body["secret"],
                        path=path,
                        merchant_id=merchant,
                        event_types=tuple(types),
                        healthy=receiver == "healthy",
                    )
                )

    def received(self, receiver: str) -> list[Delivery]:
        return deliveries_read(self.logs[receiver])

    def healthy(self) -> list[Endpoint]:
        return [endpoint for endpoint in self.endpoints if endpoint.healthy]

    def compare(self, events: list[EventRow], after_id: int) -> dict[Endpoint, DeliveryCheck]:
        deliveries = self.received("healthy")
        return {
            endpoint: deliveries_compare(
                endpoint=endpoint, events=events, after_id=after_id, deliveries=deliveries
            )
            for endpoint in self.healthy()
        }
