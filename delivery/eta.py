"""Delivery time estimates behind a small provider interface.

`geodesic` (the default) is distance on the WGS84 ellipsoid ÷ vehicle speed + the
merchant's preparation time (learned from its orders, else the default:
`merchants.selectors.prep_time_s`). `osrm` asks an OSRM routing server. Any other provider plugs
in through a dotted path in `ETA_PROVIDER`. A provider that fails or times out falls
back to the geodesic estimate, marked `degraded`.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from geomarket.sql import fetch_value
from merchants.selectors import prep_time_s
from orders.models import OrderStatus


@dataclass(frozen=True)
class Leg:
    """From a merchant to a destination; `distance_m` is already exact (PostGIS)."""

    merchant_id: int
    origin_lat: float
    origin_lng: float
    destination_lat: float
    destination_lng: float
    distance_m: float
    # The merchant's `learned_prep_time_s`: None while it has learned none.
    learned_prep_time_s: int | None = None


def geodesic_eta_seconds(
    *,
    distance_m: float,
    vehicle: str | None = None,
    preparation: bool = True,
    learned_prep_time_s: int | None = None,
) -> int:
    """Travel time over `distance_m`, plus the merchant's preparation time when
    `preparation` (its `learned_prep_time_s`, else the default)."""
    speed = settings.ETA_SPEEDS_M_PER_S[vehicle or settings.ETA_DEFAULT_VEHICLE]
    prep = prep_time_s(learned=learned_prep_time_s) if preparation else 0
    return round(prep + distance_m / speed)


# No arrival to estimate.
_OVER = frozenset(
    {
        OrderStatus.DELIVERED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.FAILED,
        OrderStatus.RETURNED,
    }
)
# The merchant is still preparing the order: its preparation time is still to come.
_IN_PREPARATION = frozenset({OrderStatus.CONFIRMED, OrderStatus.PREPARING})


def order_eta_seconds(
    *,
    status: str,
    merchant_to_point_m: float,
    vehicle: str | None = None,
    courier_to_merchant_m: float | None = None,
    courier_to_point_m: float | None = None,
    learned_prep_time_s: int | None = None,
) -> int | None:
    """An order's geodesic time to its delivery point: from its courier when it has one
    with a location (through the merchant before pickup), else from the merchant, plus
    the merchant's preparation time (`learned_prep_time_s`, else the default) while it is
    preparing; None once the order is over.
    The tracking answer and the live stream's `eta` both come from here."""
    if status in _OVER:
        return None
    preparation = {
        "preparation": status in _IN_PREPARATION,
        "learned_prep_time_s": learned_prep_time_s,
    }
    if courier_to_merchant_m is None or courier_to_point_m is None:
        return geodesic_eta_seconds(distance_m=merchant_to_point_m, **preparation)
    if status == OrderStatus.PICKED_UP:
        distance = courier_to_point_m
    else:
        distance = courier_to_merchant_m + merchant_to_point_m
    return geodesic_eta_seconds(distance_m=distance, vehicle=vehicle, **preparation)


def leg_geodesic_eta_seconds(leg: Leg) -> int:
    return geodesic_eta_seconds(
        distance_m=leg.distance_m, learned_prep_time_s=leg.learned_prep_time_s
    )


@dataclass(frozen=True)
class TravelTable:
    """Travel between every two of a list of points, `[i][j]` from point i to point j:
    whole seconds and metres."""

    durations_s: list[list[int]]
    distances_m: list[list[float]]


# Every pair of the points `%(lngs)s`, `%(lats)s` (arrays of degrees) row by row, as one
# array of exact spheroid distances (PostGIS geography: GeographicLib's geodesics).
GEODESIC_TABLE_SQL = """
WITH p AS (
    SELECT n, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography AS g
    FROM unnest(%(lngs)s::float8[], %(lats)s::float8[]) WITH ORDINALITY AS t(lng, lat, n)
)
SELECT array_agg(ST_Distance(a.g, b.g) ORDER BY a.n, b.n) FROM p a CROSS JOIN p b
"""


def geodesic_table(distances: list[float], *, size: int, vehicle: str) -> TravelTable:
    """The table of `GEODESIC_TABLE_SQL`'s flat answer for `size` points: each distance
    over the vehicle's speed."""
    speed = settings.ETA_SPEEDS_M_PER_S[vehicle]
    rows = [distances[i * size : (i + 1) * size] for i in range(size)]
    return TravelTable(
        durations_s=[[round(metres / speed) for metres in row] for row in rows],
        distances_m=rows,
    )


class EtaProvider:
    name = "base"

    async def estimate(self, leg: Leg) -> int:
        raise NotImplementedError

    def table(self, points: Sequence[tuple[float, float]], *, vehicle: str) -> TravelTable:
        """Travel between every two of `points` ((longitude, latitude) pairs) for
        `vehicle`, without preparation time. Blocking: a route plans in one request."""
        raise NotImplementedError


class GeodesicProvider(EtaProvider):
    name = "geodesic"

    async def estimate(self, leg: Leg) -> int:
        return leg_geodesic_eta_seconds(leg)

    def table(self, points: Sequence[tuple[float, float]], *, vehicle: str) -> TravelTable:
        lngs, lats = [lng for lng, _ in points], [lat for _, lat in points]
        found = fetch_value(GEODESIC_TABLE_SQL, {"lngs": lngs, "lats": lats}) if points else []
        return geodesic_table(found, size=len(points), vehicle=vehicle)


# OSRM's profile for each of our vehicles.
OSRM_PROFILES = {"bike": "bike", "scooter": "bike", "car": "driving"}


class OsrmProvider(EtaProvider):
    """Road travel time from OSRM's route service, plus preparation time."""

    name = "osrm"

    def __init__(
        self, client: httpx.AsyncClient | None = None, table_client: httpx.Client | None = None
    ):
        self.client = client
        self.table_client = table_client

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            # One client, and so one connection pool, for the life of the process.
            self.client = httpx.AsyncClient(base_url=settings.ETA_OSRM_URL, timeout=5)
        return self.client

    async def estimate(self, leg: Leg) -> int:
        profile = OSRM_PROFILES[settings.ETA_DEFAULT_VEHICLE]
        path = (
            f"/route/v1/{profile}/{leg.origin_lng},{leg.origin_lat};"
            f"{leg.destination_lng},{leg.destination_lat}"
        )
        response = await self._client().get(path, params={"overview": "false"})
        response.raise_for_status()
        route = response.json()["routes"][0]
        return round(prep_time_s(learned=leg.learned_prep_time_s) + float(route["duration"]))

    def table(self, points: Sequence[tuple[float, float]], *, vehicle: str) -> TravelTable:
        """OSRM's table service: road durations and distances between every two points.
        A pair it cannot route (null) fails the table, as an error does."""
        if self.table_client is None:
            self.table_client = httpx.Client(
                base_url=settings.ETA_OSRM_URL, timeout=settings.ETA_PROVIDER_TIMEOUT_SECONDS
            )
        coordinates = ";".join(f"{lng!r},{lat!r}" for lng, lat in points)
        response = self.table_client.get(
            f"/table/v1/{OSRM_PROFILES[vehicle]}/{coordinates}",
            params={"annotations": "duration,distance"},
        )
        response.raise_for_status()
        body = response.json()
        if body.get("code") != "Ok":
            raise ValueError(f"OSRM table: {body.get('code')}")
        return TravelTable(
            durations_s=[[round(float(value)) for value in row] for row in body["durations"]],
            distances_m=[[float(value) for value in row] for row in body["distances"]],
        )


BUILT_IN = {"geodesic": GeodesicProvider, "osrm": OsrmProvider}


@cache
def _provider_for(name: str) -> EtaProvider:
    factory = BUILT_IN.get(name) or import_string(name)
    return factory()


def configured_provider() -> EtaProvider:
    return _provider_for(settings.ETA_PROVIDER)


async def estimate_all(legs: list[Leg], provider: EtaProvider | None = None) -> list[dict]:
    """Estimate every leg concurrently, each bounded by its own timeout, all of them by
    the overall deadline, with at most `ETA_MAX_IN_FLIGHT` provider calls at once."""
    provider = provider or configured_provider()
    semaphore = asyncio.Semaphore(settings.ETA_MAX_IN_FLIGHT)
    deadline = time.monotonic() + settings.ETA_DEADLINE_SECONDS

    async def one(leg: Leg) -> dict:
        fallback = leg_geodesic_eta_seconds(leg)
        result = {"merchant_id": leg.merchant_id, "distance_m": round(leg.distance_m, 2)}
        if isinstance(provider, GeodesicProvider):
            return {**result, "eta_s": fallback, "provider": provider.name, "degraded": False}
        try:
            async with semaphore:
                remaining = deadline - time.monotonic()
                timeout = min(settings.ETA_PROVIDER_TIMEOUT_SECONDS, remaining)
                if timeout <= 0:
                    raise TimeoutError
                eta = await asyncio.wait_for(provider.estimate(leg), timeout=timeout)
            return {**result, "eta_s": int(eta), "provider": provider.name, "degraded": False}
        except Exception:  # a provider's failure of any kind is answered by the fallback
            return {**result, "eta_s": fallback, "provider": "geodesic", "degraded": True}

    return list(await asyncio.gather(*(one(leg) for leg in legs)))
