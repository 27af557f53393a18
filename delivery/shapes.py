"""Response shapes of dispatch, declared once (`geomarket.shapes`)."""

from geomarket.shapes import DATETIME, MEASURE, POINT, Field, Shape

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
