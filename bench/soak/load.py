"""The soak's mixed workload: every actor's clients, the faults on schedule, `/healthz`
polled apart, and what each request saw."""

import asyncio
import math
import random
import secrets
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import httpx
import psycopg

from bench.common.accounts import Account
from bench.common.report import log
from bench.common.spots import Item, Spot
from bench.soak.city import City, CourierActor, Marks
from bench.soak.config import (
    ACTIVE_STATUSES,
    COLD_BUYERS,
    COLD_MERCHANTS,
    CUSTOMER_WATCHERS,
    FAILED_SHARE,
    FAILURE_REASONS,
    FINAL_STATUSES,
    HOT_BUYERS,
    HOT_PRODUCTS,
    HOT_RESTOCK,
    LATE_PING_SHARE,
    OPERATORS,
    OTHER_WATCHERS,
    OWNER_WATCHERS,
    OWNERS,
    RETURNED_BY,
    SEARCHERS,
    fault_plan,
)
from bench.soak.stack import RedisServer, Supervisor
from bench.soak.streams import Shown, SseReader

PING_PATH = "/api/v1/couriers/me/location/"


@dataclass
class Stats:
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    phases: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    transport: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    # 503s the contract gives while the cache's Redis is away (stream tickets), by label:
    # counted apart from the statuses, as /healthz's are.
    cache_down: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values()) + sum(self.transport.values())

    def sample(self, text: str) -> None:
        if len(self.samples) < 25:
            self.samples.append(text)


class Load:
    def __init__(
        self,
        *,
        city: City,
        marks: Marks,
        base_url: str,
        duration: float,
        dsn: str,
        redis: dict[str, RedisServer],
        seed: int,
        supervisor: Supervisor,
    ):
        self.city = city
        self.marks = marks
        self.base_url = base_url
        self.duration = duration
        self.dsn = dsn
        self.redis = redis
        self.seed = seed
        self.stats = Stats()
        self.phase = "normal"
        self.started = 0.0
        self.buyers = list(city.buyers)
        self.cold_spots = [s for s in city.spots[HOT_PRODUCTS:] if s.items][:COLD_MERCHANTS]
        self.points = [(s.lat, s.lng) for s in city.spots]
        self.orders: dict[int, str] = {}  # soak order id -> status at placement
        self.order_parties: dict[int, tuple[Account, int]] = {}  # -> its buyer, its merchant
        self.merchants_with_orders: list[int] = []
        self._merchant_seen: set[int] = set()
        # Merchants whose owner has a failed soak order to take back: visited first.
        self.returns_due: set[int] = set()
        self.assigned: dict[int, int] = {}  # order id -> courier id, from assignment answers
        self.double_assignments: list[str] = []
        self.idempotency_mismatches: list[str] = []
        self.capacity_samples = 0
        self.capacity_violations: list[str] = []
        self.health_log: list[tuple[float, int, dict]] = []
        self.fault_log: list[str] = []
        self.client: httpx.AsyncClient | None = None
        self.supervisor = supervisor
        self.cache_outages: list[list[float]] = []  # [stopped, back] of the cache's Redis
        self.stream_client: httpx.AsyncClient | None = None
        self.courier_tokens = {c.courier_id: c.token for c in city.couriers}
        self.watched: dict[str, set[int]] = defaultdict(set)  # role -> orders followed
        self.ready: dict[int, None] = {}  # orders made ready, in that order
        self.feed_ids: list[int] = []  # the events the operator's feed gave, in order
        self.shown: list[Shown] = []  # every event every stream showed
        self.stream_connections: Counter = Counter()  # how each connection ended
        self.late_pings: list[tuple[int, datetime]] = []  # courier id, the time sent
        self.moved_back: list[str] = []

    # --- helpers ---

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def running(self) -> bool:
        return self.elapsed() < self.duration

    async def call(
        self,
        label: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict | None = None,
        body=None,
        headers: dict | None = None,
        expect: tuple[int, ...] = (200,),
        needs_cache: bool = False,
    ) -> httpx.Response | None:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Token {token}"
        phase = self.phase
        started = time.monotonic()
        try:
            response = await self.client.request(
                method, path, params=params, json=body, headers=all_headers
            )
        except httpx.HTTPError as exc:
            self.failed(label, phase, started, f"{method} {path}", exc)
            return None
        code = response.status_code
        if needs_cache and code == 503 and self.cache_was_down(since=started):
            self.stats.latencies[label].append(time.monotonic() - started)
            self.stats.cache_down[label] += 1
            return response
        self.answered(label, phase, started, code, expect, f"{method} {path}", response.text)
        return response

    def answered(
        self, label: str, phase: str, started: float, code: int, expect, what: str, text: str
    ) -> None:
        self.stats.latencies[label].append(time.monotonic() - started)
        self.stats.statuses[label][code] += 1
        self.stats.phases[phase][f"{code // 100}xx"] += 1
        if code not in expect:
            self.stats.unexpected[(label, code)] += 1
            self.stats.sample(f"t={self.elapsed():.0f}s [{phase}] {what} -> {code}: {text[:200]}")

    def failed(self, label: str, phase: str, started: float, what: str, exc: Exception) -> None:
        self.stats.transport[label] += 1
        self.stats.phases[phase]["transport error"] += 1
        self.stats.failures.append(
            f"t={self.elapsed():.0f}s [{phase}] {what} after"
            f" {time.monotonic() - started:.1f} s: {exc!r}"
        )

    def cache_was_down(self, *, since: float) -> bool:
        """Whether the cache's Redis was away at some moment since `since` (monotonic),
        or came back within a second of it."""
        start = since - self.started
        return any(start <= back + 1.0 for _, back in self.cache_outages)

    def point(self, rng: random.Random) -> tuple[float, float]:
        lat, lng = rng.choice(self.points)
        if rng.random() < 0.5:  # a client of its own; the rest repeat and may hit the cache
            lat += rng.uniform(-0.003, 0.003)
            lng += rng.uniform(-0.005, 0.005)
        return round(lat, 6), round(lng, 6)

    @staticmethod
    async def pause(rng: random.Random, low: float, high: float) -> None:
        await asyncio.sleep(rng.uniform(low, high))

    def order_recorded(self, order: dict, merchant_id: int, buyer: Account) -> None:
        self.orders[order["id"]] = order["status"]
        self.order_parties[order["id"]] = (buyer, merchant_id)
        if order["status"] == "confirmed" and merchant_id not in self._merchant_seen:
            self._merchant_seen.add(merchant_id)
            self.merchants_with_orders.append(merchant_id)

    # --- order plans ---

    @staticmethod
    def _body(spot: Spot, lines: dict[Item, int]) -> dict:
        return {
            "merchant_id": spot.merchant_id,
            "items": [{"product_id": i.product_id, "quantity": q} for i, q in lines.items()],
            "delivery_address": {
                "line1": "1 Soak Street",
                "city": "Soak City",
                "postal_code": "10115",
                "location": {"type": "Point", "coordinates": [spot.lng, spot.lat]},
            },
        }

    def plan_cold(self, rng: random.Random) -> tuple[Spot, dict]:
        spot = rng.choice(self.cold_spots)
        chosen = rng.sample(spot.items, k=min(len(spot.items), rng.randint(1, 3)))
        lines = {item: rng.randint(1, 2) for item in chosen}
        priciest = max(chosen, key=lambda item: item.price)
        subtotal = sum((i.price * q for i, q in lines.items()), Decimal(0))
        if subtotal < spot.min_order:
            lines[priciest] += math.ceil((spot.min_order - subtotal) / priciest.price)
        return spot, self._body(spot, lines)

    def plan_hot(self, rng: random.Random) -> tuple[Spot, dict]:
        hot = rng.choice(self.city.hot)
        lines = {hot.item: rng.randint(1, 2)}
        subtotal = hot.item.price * lines[hot.item]
        if subtotal < hot.spot.min_order:
            lines[hot.filler] = math.ceil((hot.spot.min_order - subtotal) / hot.filler.price)
        return hot.spot, self._body(hot.spot, lines)

    # --- virtual users ---

    async def get(self, label: str, path: str, token: str | None = None, **kwargs):
        return await self.call(label, "GET", path, token=token, **kwargs)

    async def post(self, label: str, path: str, body, token: str | None = None, **kwargs):
        return await self.call(label, "POST", path, token=token, body=body, **kwargs)

    async def patch(self, label: str, path: str, body, token: str | None = None, **kwargs):
        return await self.call(label, "PATCH", path, token=token, body=body, **kwargs)

    async def searcher(self, rng: random.Random, index: int) -> None:
        token = self.buyers[index].token if index % 2 else None
        words, categories = self.city.words, self.city.categories
        while self.running():
            kind = rng.choices(
                ("search", "nearby", "delivering", "suggest", "eta"), weights=(3, 3, 2, 2, 1)
            )[0]
            lat, lng = self.point(rng)
            if kind == "search":
                params = {"q": rng.choice(words)}
                if rng.random() < 0.3:
                    params["category"] = rng.choice(categories)
                if rng.random() < 0.3:
                    params["sort"] = rng.choice(("price", "-price", "newest", "relevance"))
                if rng.random() < 0.3:
                    params["in_stock"] = "true"
                # A second page that does not exist is a 404 ("Invalid page."), as in DRF.
                expect = (200,)
                if rng.random() < 0.2:
                    params["page"], expect = 2, (200, 404)
                path = "/api/v1/search/products/"
                await self.get("search/products", path, token, params=params, expect=expect)
            elif kind == "nearby":
                params = {"lat": lat, "lng": lng, "radius": rng.choice((1000, 3000, 5000))}
                if rng.random() < 0.3:
                    params["q"] = rng.choice(words)
                if rng.random() < 0.3:
                    params["deliverable"] = "true"
                if rng.random() < 0.2:
                    params["category"] = rng.choice(categories)
                await self.get("products/nearby", "/api/v1/products/nearby/", token, params=params)
            elif kind == "delivering":
                path = "/api/v1/merchants/delivering-to/"
                params = {"lat": lat, "lng": lng}
                await self.get("merchants/delivering-to", path, token, params=params)
            elif kind == "suggest":
                word = rng.choice(words)
                params = {"q": word[: rng.randint(3, len(word))]}
                await self.get("search/suggest", "/api/v1/search/suggest/", token, params=params)
            else:
                body = {
                    "destination": {"lat": lat, "lng": lng},
                    "merchant_ids": rng.sample(self.city.merchant_ids, k=rng.randint(1, 5)),
                }
                await self.post("delivery/eta", "/api/v1/delivery/eta/", body)
            await self.pause(rng, 0.0, 0.05)

    async def buyer(self, rng: random.Random, hot: bool) -> None:
        label = "orders: place (hot)" if hot else "orders: place (cold)"
        while self.running():
            buyer = rng.choice(self.buyers)
            spot, body = self.plan_hot(rng) if hot else self.plan_cold(rng)
            key = f"soak-{uuid.uuid4()}" if rng.random() < 0.3 else None
            headers = {"Idempotency-Key": key} if key else None
            place = {"token": buyer.token, "headers": headers, "expect": (201,)}
            response = await self.post(label, "/api/v1/orders/", body, **place)
            if key is not None and (response is None or rng.random() < 0.3):
                # What a careful client does after a timeout, and here sometimes anyway.
                again = await self.post(
                    "orders: retry with the same key", "/api/v1/orders/", body, **place
                )
                if response is None:
                    response = again
                elif again is not None and again.status_code == response.status_code == 201:
                    first, second = response.json()["id"], again.json()["id"]
                    if first != second:
                        self.idempotency_mismatches.append(f"key {key}: {first}, then {second}")
            if response is not None and response.status_code == 201:
                order = response.json()
                self.order_recorded(order, spot.merchant_id, buyer)
                path = f"/api/v1/orders/{order['id']}/"
                if order["status"] == "confirmed" and rng.random() < 0.12:
                    await self.pause(rng, 0.0, 1.5)
                    cancel = {"status": "cancelled", "reason": "soak"}
                    await self.post(
                        "customer: cancel", f"{path}status/", cancel, buyer.token, expect=(200, 409)
                    )
                elif rng.random() < 0.15:
                    await self.get("customer: order detail", path, buyer.token)
            if rng.random() < 0.05:
                params = {"page_size": 20}
                await self.get(
                    "customer: order list", "/api/v1/orders/", buyer.token, params=params
                )
            await self.pause(rng, 0.1, 0.5)

    def soak_own(self, order_id: int) -> bool:
        """Whether the soak placed the order: seeded ones took no stock."""
        return order_id > self.marks.order_id

    def returned_by(self, order_id: int) -> str | None:
        """Who returns the order once it failed: its owner, the operator, or no one."""
        return RETURNED_BY.get(order_id % 4) if self.soak_own(order_id) else None

    async def owner(self, rng: random.Random) -> None:
        steps = (("confirmed", "preparing"), ("preparing", "ready"), ("failed", "returned"))
        while self.running():
            if not self.merchants_with_orders:
                await asyncio.sleep(0.2)
                continue
            merchant_id = rng.choice(self.merchants_with_orders)
            if self.returns_due and rng.random() < 0.5:
                merchant_id = rng.choice(sorted(self.returns_due))
                self.returns_due.discard(merchant_id)
            token = self.city.owners[merchant_id].token
            for current, following in steps:
                params = {"status": current, "merchant_id": merchant_id, "page_size": 50}
                listing = await self.get(
                    "owner: list orders", "/api/v1/orders/", token, params=params
                )
                if listing is None or listing.status_code != 200:
                    continue
                # The list is newest first; a shop with a backlog works off its oldest
                # orders, which are also the ones dispatch gives couriers first.
                pages = listing.json()["total_pages"]
                if pages > 1:
                    # Another owner session may have emptied that page meanwhile: 404.
                    params["page"] = pages
                    listing = await self.get(
                        "owner: list orders",
                        "/api/v1/orders/",
                        token,
                        params=params,
                        expect=(200, 404),
                    )
                    if listing is None or listing.status_code != 200:
                        continue
                for order in reversed(listing.json()["results"]):
                    target = following
                    if current == "failed":
                        if self.returned_by(order["id"]) != "owner":
                            continue
                    # Only the soak's own orders are cancelled: a seeded order took no stock.
                    elif self.soak_own(order["id"]) and rng.random() < 0.05:
                        target = "cancelled"
                    path = f"/api/v1/orders/{order['id']}/status/"
                    body = {"status": target, "reason": "soak"}
                    label = f"owner: {current} -> {target}"
                    moved = await self.post(label, path, body, token, expect=(200, 409))
                    if target == "ready" and moved is not None and moved.status_code == 200:
                        self.ready[order["id"]] = None
            roll = rng.random()
            if roll < 0.05:
                await self.get("owner: stats", "/api/v1/orders/stats/", token)
            elif roll < 0.1:
                path = f"/api/v1/merchants/{merchant_id}/orders/"
                await self.get("owner: merchant orders", path, token)
            elif roll < 0.15:
                path = f"/api/v1/merchants/{merchant_id}/inventory/"
                await self.get("owner: merchant inventory", path, token)
            await self.pause(rng, 0.05, 0.2)

    async def restocker(self, rng: random.Random) -> None:
        """The hot products' owners put stock back now and then once it runs low."""
        while self.running():
            for hot in self.city.hot:
                token = self.city.owners[hot.spot.merchant_id].token
                path = f"/api/v1/inventory/{hot.item.inventory_id}/"
                row = await self.get("owner: inventory row", path, token)
                if row is not None and row.status_code == 200 and row.json()["quantity"] < 5:
                    body = {"delta": HOT_RESTOCK, "reason": "soak restock"}
                    await self.post("owner: restock", f"{path}adjust/", body, token)
            await self.pause(rng, 4.0, 8.0)

    async def operator(self, rng: random.Random) -> None:
        token = self.city.operator.token
        reports = (
            ("/api/v1/analytics/top-products/", {"top": 3}),
            ("/api/v1/analytics/revenue/", {"interval": "day"}),
            ("/api/v1/analytics/revenue/", {"interval": "week"}),
            ("/api/v1/analytics/merchants/", {}),
            ("/api/v1/orders/analytics/", {}),
        )
        while self.running():
            body = {} if rng.random() < 0.8 else {"max_distance_m": 8000}
            path = "/api/v1/orders/priority-assignment/"
            response = await self.post("operator: priority-assignment", path, body, token)
            if response is not None and response.status_code == 200:
                for assignment in response.json()["assignments"]:
                    order_id, courier_id = assignment["order_id"], assignment["courier_id"]
                    if order_id in self.assigned:
                        self.double_assignments.append(
                            f"order {order_id}: courier {self.assigned[order_id]},"
                            f" then courier {courier_id}"
                        )
                    else:
                        self.assigned[order_id] = courier_id
            if rng.random() < 0.3:
                await self.operator_returns(token)
            if self.orders and rng.random() < 0.3:
                order_id = rng.choice(list(self.orders)[-200:])
                path = f"/api/v1/orders/{order_id}/courier-candidates/"
                params = {"limit": 5}
                # An order no longer waiting for a courier (rejected, assigned, over) has
                # no candidates: a 409.
                await self.get(
                    "operator: courier-candidates", path, token, params=params, expect=(200, 409)
                )
            if rng.random() < 0.3:
                path, params = rng.choice(reports)
                if rng.random() < 0.3:
                    params = {**params, "format": "csv"}
                await self.get("operator: analytics", path, token, params=params)
            if rng.random() < 0.1:
                params = {"status": "available"}
                await self.get("operator: couriers", "/api/v1/couriers/", token, params=params)
            await self.pause(rng, 0.5, 1.5)

    async def operator_returns(self, token: str) -> None:
        """The operator takes back the failed deliveries left to it."""
        params = {"status": "failed", "page_size": 50}
        listing = await self.get("operator: failed orders", "/api/v1/orders/", token, params=params)
        if listing is None or listing.status_code != 200:
            return
        for order in listing.json()["results"]:
            if self.returned_by(order["id"]) == "operator":
                path = f"/api/v1/orders/{order['id']}/status/"
                body = {"status": "returned", "reason": "soak"}
                await self.post(
                    "operator: failed -> returned", path, body, token, expect=(200, 409)
                )

    async def ping(
        self, rng: random.Random, courier: CourierActor, lat: float, lng: float, points: deque
    ) -> None:
        """The courier's point; now and then followed by a late one, between its last two
        points, as a device sends what it kept through a network gap. A late point goes
        into the track and leaves the courier where it is: the answer's
        `location_updated_at` stays that of its newest point."""
        body = {"lat": round(lat, 6), "lng": round(lng, 6)}
        answer = await self.post("courier: location", PING_PATH, body, courier.token)
        if answer is None or answer.status_code != 200:
            return
        points.append((datetime.fromisoformat(answer.json()["location_updated_at"]), body))
        if len(points) < 2 or rng.random() >= LATE_PING_SHARE:
            return
        (before, first), (newest, second) = points
        late = before + (newest - before) / 2
        body = {
            "lat": round((first["lat"] + second["lat"]) / 2, 6),
            "lng": round((first["lng"] + second["lng"]) / 2, 6),
            "recorded_at": late.isoformat(),
        }
        answer = await self.post("courier: late location", PING_PATH, body, courier.token)
        if answer is None or answer.status_code != 200:
            return
        self.late_pings.append((courier.courier_id, late))
        current = datetime.fromisoformat(answer.json()["location_updated_at"])
        if current != newest:
            self.moved_back.append(
                f"t={self.elapsed():.0f}s courier {courier.courier_id}: a ping of {late:%X.%f} "
                f"left its point at {current:%X.%f}, not at its newest, {newest:%X.%f}"
            )

    async def courier(self, rng: random.Random, courier: CourierActor) -> None:
        token = courier.token
        lat, lng = courier.lat, courier.lng
        picked_up: dict[int, float] = {}
        available = {"status": "available"}
        points: deque = deque(maxlen=2)  # its last two points the server took: time, body
        await self.pause(rng, 0.0, 2.0)
        await self.ping(rng, courier, lat, lng, points)
        await self.patch("courier: available", "/api/v1/couriers/me/", available, token)
        while self.running():
            lat += rng.uniform(-0.0005, 0.0005)
            lng += rng.uniform(-0.0008, 0.0008)
            await self.ping(rng, courier, lat, lng, points)
            mine = await self.get("courier: my orders", "/api/v1/couriers/me/orders/", token)
            for order in mine.json()["results"] if mine and mine.status_code == 200 else ():
                target, body = None, {}
                if order["status"] == "ready":
                    target = "picked_up"
                elif order["status"] == "picked_up":
                    first_seen = picked_up.setdefault(order["id"], self.elapsed())
                    if self.elapsed() - first_seen > 3:
                        target = "delivered"
                        if rng.random() < FAILED_SHARE:
                            target = "failed"
                            body = {"reason": rng.choice(FAILURE_REASONS)}
                if target:
                    path = f"/api/v1/orders/{order['id']}/status/"
                    body = {"status": target, **body}
                    answer = await self.post(
                        f"courier: -> {target}", path, body, token, expect=(200, 409)
                    )
                    if answer is not None and target == "picked_up":
                        picked_up[order["id"]] = self.elapsed()
                    elif (
                        target == "failed"
                        and answer is not None
                        and answer.status_code == 200
                        and self.returned_by(order["id"]) == "owner"
                        and order["id"] in self.order_parties
                    ):
                        self.returns_due.add(self.order_parties[order["id"]][1])
            if rng.random() < 0.05:
                me = await self.get("courier: me", "/api/v1/couriers/me/", token)
                if me is not None and me.status_code == 200 and me.json()["status"] == "offline":
                    path = "/api/v1/couriers/me/"
                    await self.patch("courier: available", path, available, token)
            await self.pause(rng, 1.0, 2.5)

    async def feed_follower(self, rng: random.Random) -> None:
        """The operator's integration reads the event feed as the contract says a client
        does: each page from the last one's `next_cursor`."""
        token = self.city.operator.token
        cursor = None
        while self.running():
            params = {"limit": 500, **({"after": cursor} if cursor else {})}
            page = await self.get("operator: event feed", "/api/v1/events/", token, params=params)
            if page is not None and page.status_code == 200:
                body = page.json()
                self.feed_ids += [event["id"] for event in body["events"]]
                cursor = body["next_cursor"] or cursor
                if len(body["events"]) == params["limit"]:
                    continue  # more at once
            await self.pause(rng, 0.5, 1.5)

    # --- order streams ---

    def watch_pick(self, rng: random.Random, role: str) -> int | None:
        """An order of the soak's this role has not followed yet, newest first: mostly one
        that is ready with a courier (soon picked up: its stream will show points, and
        whether they show before the pickup), else one with a courier, else one placed."""
        seen = self.watched[role]
        assigned = [o for o in reversed(list(self.assigned)[-200:]) if o in self.order_parties]
        ready = [o for o in assigned if o in self.ready]
        placed = list(reversed(list(self.order_parties)[-100:]))
        pools = (ready, assigned, placed) if rng.random() < 0.8 else (placed, ready, assigned)
        for pool in pools:
            fresh = [order_id for order_id in pool[:30] if order_id not in seen]
            if fresh:
                return rng.choice(fresh[:5])
        return None

    def watch_token(self, rng: random.Random, role: str, order_id: int) -> tuple[str, str]:
        """The role actually held (the operator or the order's courier, for `other`) and
        its token."""
        buyer, merchant_id = self.order_parties[order_id]
        if role == "customer":
            return role, buyer.token
        if role == "owner":
            return role, self.city.owners[merchant_id].token
        courier_id = self.assigned.get(order_id)
        if courier_id in self.courier_tokens and rng.random() < 0.5:
            return "courier", self.courier_tokens[courier_id]
        return "operator", self.city.operator.token

    async def follow(self, rng: random.Random, role: str, order_id: int, token: str) -> None:
        """Follow the order's stream until it is delivered or cancelled, or for up to a
        minute and a half, in connections of 5 to 25 s; each reconnection sends `Last-Event-ID`, and
        some go by a single-use ticket instead of the token."""
        until = min(self.duration, self.elapsed() + rng.uniform(30.0, 90.0))
        last_id: str | None = None
        while self.elapsed() < until:
            headers, params = {"Authorization": f"Token {token}"}, None
            if rng.random() < 0.25:
                # A ticket lives in Redis: without it, 503 (API.md), and the token is used.
                ticket = await self.post(
                    "stream: ticket",
                    f"/api/v1/orders/{order_id}/stream-ticket/",
                    None,
                    token,
                    expect=(201,),
                    needs_cache=True,
                )
                if ticket is not None and ticket.status_code == 201:
                    headers, params = {}, {"ticket": ticket.json()["ticket"]}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            seconds = min(until - self.elapsed(), rng.uniform(5.0, 25.0))
            ended, last_id = await self.stream_once(
                role, order_id, headers=headers, params=params, seconds=seconds, last_id=last_id
            )
            self.stream_connections[ended] += 1
            if ended in ("order done", "refused"):
                return
            # A server that ended the stream (Redis went away) is asked again shortly.
            await self.pause(rng, 0.2, 1.5)

    async def stream_once(
        self,
        role: str,
        order_id: int,
        *,
        headers: dict,
        params: dict | None,
        seconds: float,
        last_id: str | None,
    ) -> tuple[str, str | None]:
        """One connection to the order's stream, read for `seconds` at most, every event
        it shows kept; how it ended, and the id of the last event."""
        path = f"/api/v1/orders/{order_id}/stream/"
        label = f"stream: open ({role})"
        phase, started = self.phase, time.monotonic()
        try:
            async with (
                asyncio.timeout(seconds),
                self.stream_client.stream("GET", path, headers=headers, params=params) as response,
            ):
                code = response.status_code
                if code == 503 and params and self.cache_was_down(since=started):
                    # Its ticket could not be redeemed without Redis.
                    self.stats.latencies[label].append(time.monotonic() - started)
                    self.stats.cache_down[label] += 1
                    return "ticket refused, cache down", last_id
                text = "" if code == 200 else (await response.aread()).decode(errors="replace")
                self.answered(label, phase, started, code, (200,), f"GET {path}", text)
                if code != 200:
                    return "refused", last_id
                reader = SseReader()
                async for line in response.aiter_lines():
                    message = reader.line(line)
                    if message is None:
                        continue
                    shown = Shown.of(message, role=role, order_id=order_id, at=self.elapsed())
                    self.shown.append(shown)
                    last_id = message.id or last_id
                    if shown.event == "status" and shown.data["status"] in FINAL_STATUSES:
                        return "order done", last_id
                if self.cache_was_down(since=started):
                    return "ended by the server, cache down", last_id
                return "ended by the server", last_id
        except TimeoutError:
            return "closed by the soak", last_id
        except httpx.HTTPError as exc:
            self.failed(label, phase, started, f"stream of order {order_id} ({role})", exc)
            return "failed", last_id

    async def watcher(self, rng: random.Random, role: str) -> None:
        while self.running():
            order_id = self.watch_pick(rng, role)
            if order_id is None:
                await asyncio.sleep(0.5)
                continue
            self.watched[role].add(order_id)
            held, token = self.watch_token(rng, role, order_id)
            await self.follow(rng, held, order_id, token)

    async def newcomer(self, rng: random.Random) -> None:
        """Now and then a customer signs up, logs in and joins the buyers."""
        number = 0
        while self.running():
            await self.pause(rng, 5.0, 12.0)
            if not self.running():
                break
            number += 1
            username = f"soak-new-{number:03d}-{secrets.token_hex(3)}"
            password = secrets.token_urlsafe(18)
            body = {"username": username, "password": password}
            signup = {**body, "email": f"{username}@example.test"}
            path = "/api/v1/auth/register/"
            registered = await self.post("auth: register", path, signup, expect=(201,))
            if registered is None or registered.status_code != 201:
                continue
            login = await self.post("auth: token", "/api/v1/auth/token/", body)
            if login is not None and login.status_code == 200:
                token = login.json()["token"]
                await self.get("auth: me", "/api/v1/auth/me/", token)
                self.buyers.append(Account(registered.json()["id"], token))

    async def health(self) -> None:
        """`/healthz` once a second, counted apart: it answers 503 on purpose in a fault."""
        while self.running():
            try:
                response = await self.client.get("/healthz", timeout=10)
                checks = response.json().get("checks", {})
                self.health_log.append((self.elapsed(), response.status_code, checks))
            except (httpx.HTTPError, ValueError):
                self.health_log.append((self.elapsed(), 0, {}))
            await asyncio.sleep(1.0)

    async def faults(self) -> None:
        for fault in fault_plan(self.duration):
            await asyncio.sleep(max(0.0, fault.start - self.elapsed()))
            if not self.running():
                return
            servers = [self.redis[name] for name in fault.servers]
            outage = [self.elapsed(), math.inf]
            if "cache" in fault.servers:
                self.cache_outages.append(outage)
            await asyncio.gather(*(server.stop_async() for server in servers))
            self.phase = fault.name
            stopped = " and ".join(f"{s.name} ({s.port})" for s in servers)
            self.note_fault(f"stopped redis-server {stopped}")
            await asyncio.sleep(max(0.0, fault.end - self.elapsed()))
            await asyncio.gather(*(server.start_async() for server in servers))
            self.phase = "normal"
            outage[1] = self.elapsed()
            self.note_fault(f"restarted redis-server {stopped}")

    def note_fault(self, text: str) -> None:
        line = f"t={self.elapsed():5.1f}s  {text}"
        self.fault_log.append(line)
        log(f"  {line}")

    async def supervise(self) -> None:
        while self.running():
            await asyncio.sleep(1.0)
            self.supervisor.check()

    async def capacity_sampler(self) -> None:
        """Every 5 s during the run: no courier carries more active orders than it may."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            while self.running():
                rows = await (await conn.execute(CAPACITY_SQL, [list(ACTIVE_STATUSES)])).fetchall()
                self.capacity_samples += 1
                for courier_id, active, capacity in rows:
                    self.capacity_violations.append(
                        f"t={self.elapsed():.0f}s courier {courier_id}: {active} > {capacity}"
                    )
                await asyncio.sleep(5.0)

    async def progress(self) -> None:
        last_total, last_time = 0, 0.0
        while self.running():
            await asyncio.sleep(min(15.0, max(0.5, self.duration - self.elapsed())))
            now, total = self.elapsed(), self.stats.total()
            fivexx = sum(v for p in self.stats.phases.values() for k, v in p.items() if k == "5xx")
            confirmed = sum(1 for s in self.orders.values() if s == "confirmed")
            log(
                f"  t={now:5.0f}s  [{self.phase:<11}] {total:>8,} requests"
                f" ({(total - last_total) / max(0.001, now - last_time):6.0f}/s)"
                f"  5xx {fivexx}  failed {sum(self.stats.transport.values())}"
                f"  orders {len(self.orders):,} ({confirmed:,} confirmed)"
                f"  assigned {len(self.assigned):,}"
            )
            last_total, last_time = total, now

    async def guarded(self, coroutine) -> None:
        """A virtual user that breaks says so at once instead of silently stopping."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log(f"  t={self.elapsed():.0f}s a virtual user failed: {exc!r}")
            raise

    async def run(self) -> float:
        # uvicorn closes a connection idle for 5 s; a client that reuses one at that moment
        # reads a reset. Real clients retry that; this one lets idle connections go first.
        limits = httpx.Limits(
            max_connections=256, max_keepalive_connections=256, keepalive_expiry=2.0
        )
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=httpx.Timeout(30.0)
        ) as client:
            self.client = client
            # Streams read for long: their own connections, and a comment line comes at
            # least every 15 s.
            self.stream_client = httpx.AsyncClient(
                base_url=self.base_url,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=0),
                timeout=httpx.Timeout(30.0, read=45.0),
            )
            self.started = time.monotonic()
            rng = random.Random(self.seed)

            def child_rng() -> random.Random:
                return random.Random(rng.getrandbits(64))

            users = [
                *(self.searcher(child_rng(), i) for i in range(SEARCHERS)),
                *(self.buyer(child_rng(), hot=True) for _ in range(HOT_BUYERS)),
                *(self.buyer(child_rng(), hot=False) for _ in range(COLD_BUYERS)),
                *(self.owner(child_rng()) for _ in range(OWNERS)),
                *(self.operator(child_rng()) for _ in range(OPERATORS)),
                *(self.courier(child_rng(), c) for c in self.city.couriers),
                *(self.watcher(child_rng(), "customer") for _ in range(CUSTOMER_WATCHERS)),
                *(self.watcher(child_rng(), "owner") for _ in range(OWNER_WATCHERS)),
                *(self.watcher(child_rng(), "other") for _ in range(OTHER_WATCHERS)),
                self.restocker(child_rng()),
                self.feed_follower(child_rng()),
                self.newcomer(child_rng()),
            ]
            background = [
                self.health(),
                self.faults(),
                self.capacity_sampler(),
                self.progress(),
                self.supervise(),
            ]
            tasks = [
                asyncio.ensure_future(self.guarded(coroutine))
                for coroutine in [*users, *background]
            ]
            try:
                done, pending = await asyncio.wait(tasks, timeout=self.duration + 45)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.stream_client.aclose()
            return time.monotonic() - self.started


CAPACITY_SQL = """
SELECT c.id, count(o.id), c.capacity
FROM delivery_courier c JOIN orders_order o ON o.courier_id = c.id AND o.status = ANY(%s)
GROUP BY c.id, c.capacity
HAVING count(o.id) > c.capacity
"""
