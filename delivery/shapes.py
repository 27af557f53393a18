"""Response shapes of dispatch, declared once (`geomarket.shapes`)."""

from delivery.models import CourierStatus, Vehicle
from geomarket.shapes import DATETIME, INTEGER, MEASURE, POINT, TEXT, Field, Shape, choice

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
