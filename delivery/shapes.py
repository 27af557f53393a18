"""Response shapes of dispatch, declared once (`geomarket.shapes`)."""

from django.db.models import TextChoices
from rest_framework import serializers

from delivery.models import CourierStatus, Vehicle
from geomarket.shapes import (
    BOOLEAN,
    DATETIME,
    INTEGER,
    MEASURE,
    METRES,
    POINT,
    TEXT,
    Field,
    Kind,
    Shape,
    choice,
)

# A courier as operators and the courier see it; `active_orders` counts the orders it
# carries now.
COURIER = Shape(
    "CourierOutput",
    (
        Field("id", INTEGER),
        Field("user_id", INTEGER),
        Field("name", TEXT),
        Field("vehicle", choice(Vehicle)),
        Field("status", choice(CourierStatus)),
        Field("location", POINT, null=True),
        Field("location_updated_at", DATETIME, null=True),
        Field("capacity", INTEGER),
        Field("active_orders", INTEGER),
    ),
)

# A courier as the others who may see where it is see it: an order's customer and its
# merchant's owner, on the order's tracking and the owner's console. How many orders it
# carries, for whom, and whether it has room for more are none of theirs.
TRACKED_COURIER = COURIER.only(
    "TrackedCourier", "id", "name", "vehicle", "location", "location_updated_at"
)

# A point of a courier's track, rendered by PostgreSQL (`courier_track_json`): a day of
# pings every few seconds is thousands of points, which cost a few hundred milliseconds
# to render in Python.
TRACK_POINT = Shape(
    "TrackPoint",
    (
        Field("location", POINT),
        Field("recorded_at", DATETIME),
        Field("speed_mps", MEASURE),
        Field("heading", MEASURE),
        Field("accuracy_m", MEASURE),
    ),
)


class StopKind(TextChoices):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


class RouteSolver(TextChoices):
    """Who ordered a route's stops: VROOM, or the greedy plan it falls back to."""

    VROOM = "vroom"
    GREEDY = "greedy"
    NONE = "none"


ORDER_IDS = Kind(
    "ids",
    lambda **options: serializers.ListField(child=serializers.IntegerField(), **options),
    list,
)

# A stop of a courier's planned route (`delivery.routes`).
ROUTE_STOP = Shape(
    "RouteStop",
    (
        Field("order_id", INTEGER),
        Field("kind", choice(StopKind)),
        Field("location", POINT),
        Field(
            "arrive_at",
            DATETIME,
            help_text="When the stop is made: the arrival, or the opening of the order's slot "
            "when the courier arrives before it and waits.",
        ),
        Field(
            "distance_m",
            METRES,
            help_text="Travel from the previous stop (the courier's location for the first; "
            "0 when the courier has none). The legs add up to total_distance_m.",
        ),
        Field(
            "late",
            BOOLEAN,
            help_text="A drop-off made after the end of the order's slot: the planner found "
            "no plan keeping it with the slots it keeps. Always false for pickups and orders "
            "without a slot.",
        ),
    ),
)

ROUTE = Shape(
    "CourierRoute",
    (
        Field("stops", shape=ROUTE_STOP, many=True),
        Field("total_distance_m", METRES, help_text="The sum of the stops' distance_m."),
        Field(
            "total_duration_s",
            INTEGER,
            help_text="Seconds from now to the last stop, waits for slots included.",
        ),
        Field(
            "solver",
            choice(RouteSolver),
            help_text="vroom: the VROOM solver's plan; greedy: the fallback after a solver "
            "failure or an exhausted time budget (ROUTE_SOLVE_SECONDS), each next stop the "
            "nearest one keeping pickup before drop-off and the capacity; none: no stops.",
        ),
        Field(
            "provider",
            TEXT,
            help_text="The ETA provider whose travel table the plan used (geodesic, osrm, ...).",
        ),
        Field(
            "degraded",
            BOOLEAN,
            help_text="The configured provider failed: the geodesic table was used instead.",
        ),
        Field(
            "unplanned",
            ORDER_IDS,
            help_text="Active orders beyond the first ROUTE_MAX_ORDERS (picked-up orders "
            "first, then oldest first), left out of the plan.",
        ),
    ),
)
