"""`GET /tiles/{layer}/{z}/{x}/{y}.mvt`: Mapbox Vector Tiles of active merchants and their
active zones, read back by a real GIS client (GDAL's MVT driver, through `ogr2ogr`)."""

import json
import math
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db import OperationalError
from rest_framework.test import APIClient
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import shape

from geomarket.answer_cache import Namespace, versions_bump
from geomarket.sql import fetch_all
from merchants import tile_apis
from merchants.models import DeliveryZone
from merchants.services import delivery_zone_delete, delivery_zone_update, merchant_update
from merchants.tiles import EXTENT, MAX_ZOOM, ZONES_DRAWN_MAX_ZOOM, tile, tile_of, tile_statement
from tests import factories

pytestmark = pytest.mark.django_db

MVT = "application/vnd.mapbox-vector-tile"


def tile_west_edge(*, x: int, z: int) -> float:
    return x / 2**z * 360 - 180


def decoded(body: bytes, *, layer: str, z: int, x: int, y: int, tmp_path) -> list[dict]:
    """The tile's features as GeoJSON in WGS84, as GDAL reads them; GDAL names the
    feature's own id `mvt_id`, which must be the `id` attribute."""
    path = tmp_path / f"{layer}-{z}-{x}-{y}.mvt"
    path.write_bytes(body)
    # CLIP=NO: GDAL would drop what lies in the tile's buffer, which the tile does carry.
    command = ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", str(path), layer, "-t_srs", "EPSG:4326"]
    command += ["-oo", "CLIP=NO"]
    for name, value in (("X", x), ("Y", y), ("Z", z)):
        command += ["-oo", f"{name}={value}"]
    out = subprocess.run(command, check=True, capture_output=True, timeout=60).stdout
    features = json.loads(out)["features"]
    for feature in features:
        assert feature["properties"].pop("mvt_id") == feature["properties"]["id"]
    return features


def get_tile(client, layer: str, z: int, x: int, y: int, **headers):
    return client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers)


def fetched(client, tmp_path, layer: str, z: int, x: int, y: int) -> list[dict]:
    """The tile's features, fetched and read back by GDAL."""
    body = get_tile(client, layer, z, x, y).content
    return decoded(body, layer=layer, z=z, x=x, y=y, tmp_path=tmp_path)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def city():
    shop = factories.merchant(name="Corner shop", lat=52.52, lng=13.405)
    closed = factories.merchant(name="Closed for good", lat=52.5201, lng=13.4051, is_active=False)
    far = factories.merchant(name="Far away", lat=48.137, lng=11.575)
    return {
        "shop": shop,
        "closed": closed,
        "far": far,
        "zone": factories.zone(merchant=shop, fee="2.50"),
        "idle_zone": factories.zone(merchant=shop, fee="9.00", is_active=False),
        "closed_zone": factories.zone(merchant=closed, fee="1.00"),
    }


def test_the_merchants_layer_has_the_active_merchants_in_the_tile(city, client, tmp_path):
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    answer = get_tile(client, "merchants", z, x, y)
    assert answer.status_code == 200
    assert answer["Content-Type"] == MVT
    features = decoded(answer.content, layer="merchants", z=z, x=x, y=y, tmp_path=tmp_path)
    assert [feature["properties"] for feature in features] == [
        {"id": city["shop"].pk, "name": "Corner shop", "open_now": True}
    ]
    lng, lat = features[0]["geometry"]["coordinates"]
    # Within one unit of the tile's grid (about 1 m at this zoom) of the shop.
    metres_per_unit = 40_075_016.7 * math.cos(math.radians(52.52)) / 2**z / EXTENT
    assert abs(lng - 13.405) * 111_320 * math.cos(math.radians(52.52)) <= metres_per_unit
    assert abs(lat - 52.52) * 110_574 <= metres_per_unit


def test_the_zones_layer_has_active_zones_of_active_merchants(city, client, tmp_path):
    z = 12
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    answer = get_tile(client, "zones", z, x, y)
    features = decoded(answer.content, layer="zones", z=z, x=x, y=y, tmp_path=tmp_path)
    assert [feature["properties"] for feature in features] == [
        {"id": city["zone"].pk, "merchant_id": city["shop"].pk, "delivery_fee": "2.50"}
    ]
    assert features[0]["geometry"]["type"] in {"Polygon", "MultiPolygon"}


def test_open_now_shows_the_merchants_hours(city, client, tmp_path):
    """Closed now: its only hours are the day after tomorrow."""
    later = (datetime.now(UTC) + timedelta(days=2)).weekday()
    factories.hours(city["shop"], (later, "09:00", "10:00"), timezone="UTC")
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    features = fetched(client, tmp_path, "merchants", z, x, y)
    assert features[0]["properties"]["open_now"] is False


def tile_south_edge(*, y: int, z: int) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / 2**z))))


def test_a_point_within_the_buffer_of_a_tile_is_drawn_in_it(client, tmp_path):
    """A shop 40 grid units west and south of a tile's corner is in the tile to the
    south-west and, within the tile's buffer of 64 units, in the tile itself: its symbol
    crosses the corner."""
    z = 15
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    unit_lng = 360 / 2**z / EXTENT
    unit_lat = (tile_south_edge(y=y - 1, z=z) - tile_south_edge(y=y, z=z)) / EXTENT
    shop = factories.merchant(
        name="Near the corner",
        lat=tile_south_edge(y=y, z=z) - 40 * unit_lat,
        lng=tile_west_edge(x=x, z=z) - 40 * unit_lng,
    )
    for column, row in ((x - 1, y + 1), (x, y)):
        features = fetched(client, tmp_path, "merchants", z, column, row)
        assert [feature["properties"]["id"] for feature in features] == [shop.pk], (column, row)


@pytest.mark.parametrize("z", [0, 3])
def test_low_zoom_tiles_read_every_merchant(city, client, tmp_path, z):
    """Below `MIN_FILTERED_ZOOM` rows are not filtered by the tile's envelope."""
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    features = fetched(client, tmp_path, "merchants", z, x, y)
    assert {feature["properties"]["id"] for feature in features} == {
        city["shop"].pk,
        city["far"].pk,
    }


def test_merchants_beyond_web_mercators_latitudes_are_left_out(client):
    polar = factories.merchant(name="Polar", lat=90, lng=10.0)
    factories.zone(
        merchant=polar,
        area=MultiPolygon(
            Polygon([(9, 89.5), (11, 89.5), (11, 90), (9, 90), (9, 89.5)]), srid=4326
        ),
    )
    for layer in ("merchants", "zones"):
        assert get_tile(client, layer, 0, 0, 0).status_code == 204
        assert get_tile(client, layer, 10, 540, 0).status_code == 204


def test_an_empty_tile_is_a_204(city, client):
    answer = get_tile(client, "zones", 14, 0, 0)
    assert answer.status_code == 204
    assert answer.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/roads/14/0/0.mvt",
        "/tiles/merchants/21/0/0.mvt",
        "/tiles/merchants/2/4/0.mvt",
        "/tiles/merchants/2/0/4.mvt",
        "/tiles/merchants/-1/0/0.mvt",
        "/tiles/merchants/2/0/0.png",
    ],
)
def test_unknown_layers_and_tiles_are_404s(client, path):
    answer = client.get(path)
    assert answer.status_code == 404


def test_an_unchanged_tile_revalidates_with_a_304(city, client):
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    first = get_tile(client, "zones", z, x, y)
    assert first["X-Cache"] == "MISS"
    assert first["Cache-Control"] == "no-cache"
    again = get_tile(client, "zones", z, x, y, if_none_match=first["ETag"])
    assert (again.status_code, again["X-Cache"], again.content) == (304, "HIT", b"")
    assert again["ETag"] == first["ETag"]


@pytest.mark.parametrize("sent", ["W/{etag}", "*", '"other", W/{etag}'])
def test_a_weakened_or_wildcard_tag_revalidates_too(city, client, sent):
    """`If-None-Match` compares weakly (RFC 9110, 13.1.2): a proxy that compresses the tile
    turns its tag weak, and the browser sends it back so."""
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    etag = get_tile(client, "zones", z, x, y)["ETag"]
    again = get_tile(client, "zones", z, x, y, if_none_match=sent.format(etag=etag))
    assert (again.status_code, again["ETag"]) == (304, etag)


def test_answers_without_a_tile_carry_no_content_type(city, client):
    """A 304 refreshes the headers of a cached tile (RFC 9111, 4.3.4) and a 204 has no
    content: neither says `text/html`."""
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    etag = get_tile(client, "zones", z, x, y)["ETag"]
    not_modified = get_tile(client, "zones", z, x, y, if_none_match=etag)
    empty = get_tile(client, "zones", 14, 0, 0)
    assert (not_modified.status_code, empty.status_code) == (304, 204)
    assert "Content-Type" not in not_modified
    assert "Content-Type" not in empty


def test_a_zone_write_changes_the_tile_at_once(
    city, client, tmp_path, django_capture_on_commit_callbacks
):
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    first = get_tile(client, "zones", z, x, y)
    assert get_tile(client, "zones", z, x, y)["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        delivery_zone_update(zone=city["zone"], data={"delivery_fee": Decimal("3.75")})
    after = get_tile(client, "zones", z, x, y, if_none_match=first["ETag"])
    assert (after.status_code, after["X-Cache"]) == (200, "MISS")
    assert after["ETag"] != first["ETag"]
    features = decoded(after.content, layer="zones", z=z, x=x, y=y, tmp_path=tmp_path)
    assert [feature["properties"]["delivery_fee"] for feature in features] == ["3.75"]


def test_a_cached_tile_is_not_served_past_a_merchant_opening(city, client, tmp_path):
    shop = city["shop"]
    factories.hours(shop, *((day, "00:00", "00:00") for day in range(7)), timezone="UTC")
    now = datetime.now(UTC)
    reopens = (now + timedelta(seconds=2)).replace(microsecond=0)
    factories.closure(shop, (now - timedelta(hours=1)).isoformat(), reopens.isoformat())
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)

    def open_now(answer) -> bool:
        (feature,) = decoded(answer.content, layer="merchants", z=z, x=x, y=y, tmp_path=tmp_path)
        return feature["properties"]["open_now"]

    first = get_tile(client, "merchants", z, x, y)
    assert open_now(first) is False
    assert get_tile(client, "merchants", z, x, y)["X-Cache"] == "HIT"
    time.sleep(max(0.0, (reopens - datetime.now(UTC)).total_seconds()) + 0.2)
    after = get_tile(client, "merchants", z, x, y, if_none_match=first["ETag"])
    assert (after.status_code, after["X-Cache"]) == (200, "MISS")
    assert open_now(after) is True


def test_tiles_ignore_credentials(city, client):
    """The same tile for everyone: a bad token is not even looked at."""
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    answer = get_tile(client, "merchants", z, x, y, authorization="Token not-a-key")
    assert answer.status_code == 200


# --- the zones layer reads each zone's area in Web Mercator (area_mercator, migration 0017)


def zone_ids(client, tmp_path, z: int, x: int, y: int) -> list[int]:
    """The ids of the zones the tile draws; none when it is a 204."""
    answer = get_tile(client, "zones", z, x, y)
    if answer.status_code == 204:
        return []
    features = decoded(answer.content, layer="zones", z=z, x=x, y=y, tmp_path=tmp_path)
    return [feature["properties"]["id"] for feature in features]


MUNICH = (48.137, 11.575)


@pytest.mark.parametrize(
    "move",
    [
        lambda zone, area: delivery_zone_update(zone=zone, data={"area": area}),
        # A bulk update, as a data fix or a load would write: no model code runs.
        lambda zone, area: DeliveryZone.objects.filter(pk=zone.pk).update(area=area),
    ],
    ids=["service", "queryset-update"],
)
def test_a_zone_moved_leaves_its_old_tile_for_its_new_one(
    city, client, tmp_path, django_capture_on_commit_callbacks, move
):
    z = 12
    here = tile_of(lat=52.52, lng=13.405, z=z)
    there = tile_of(lat=MUNICH[0], lng=MUNICH[1], z=z)
    zone = city["zone"]
    assert zone_ids(client, tmp_path, z, *here) == [zone.pk]
    assert zone_ids(client, tmp_path, z, *there) == []
    with django_capture_on_commit_callbacks(execute=True):
        move(zone, factories.square(lat=MUNICH[0], lng=MUNICH[1]))
        # A bulk update bumps no version itself: whoever runs one drops the cached answers.
        versions_bump(Namespace.MERCHANTS)
    assert zone_ids(client, tmp_path, z, *here) == []
    assert zone_ids(client, tmp_path, z, *there) == [zone.pk]


@pytest.mark.parametrize(
    "remove",
    [
        lambda city: delivery_zone_delete(zone=city["zone"]),
        lambda city: delivery_zone_update(zone=city["zone"], data={"is_active": False}),
        lambda city: merchant_update(merchant=city["shop"], data={"is_active": False}),
    ],
    ids=["zone-deleted", "zone-deactivated", "merchant-deactivated"],
)
def test_a_zone_removed_leaves_the_tile(
    city, client, tmp_path, django_capture_on_commit_callbacks, remove
):
    z = 12
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    assert zone_ids(client, tmp_path, z, x, y) == [city["zone"].pk]
    with django_capture_on_commit_callbacks(execute=True):
        remove(city)
    assert get_tile(client, "zones", z, x, y).status_code == 204


def test_a_reactivated_merchants_zones_come_back(
    city, client, tmp_path, django_capture_on_commit_callbacks
):
    """The layer leaves out the zones of inactive merchants as they are at each request:
    a merchant active again has its zones drawn again at once."""
    z = 13
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    shop = city["shop"]
    with django_capture_on_commit_callbacks(execute=True):
        merchant_update(merchant=shop, data={"is_active": False})
    assert get_tile(client, "zones", z, x, y).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        merchant_update(merchant=shop, data={"is_active": True})
    assert zone_ids(client, tmp_path, z, x, y) == [city["zone"].pk]


def test_a_zone_is_drawn_where_it_is_to_the_tiles_grid(city, client, tmp_path):
    """Points two grid units (under a metre at z14) inside the zone's west and north edges
    fall in the decoded feature, and points two units outside them do not: the tile draws
    the zone's own area, projected to Web Mercator, to the grid's resolution."""
    z = 14
    west, north = 13.405 - 0.02, 52.52 + 0.02
    x, y = tile_of(lat=north, lng=west, z=z)
    unit_lng = 360 / 2**z / EXTENT
    unit_lat = (tile_south_edge(y=y - 1, z=z) - tile_south_edge(y=y, z=z)) / EXTENT
    (feature,) = fetched(client, tmp_path, "zones", z, x, y)
    assert feature["properties"]["id"] == city["zone"].pk
    drawn = shape(feature["geometry"])
    # Just south-east of the zone's north-west corner, and as far beyond each edge.
    assert drawn.contains(ShapelyPoint(west + 2 * unit_lng, north - 2 * unit_lat))
    assert not drawn.intersects(ShapelyPoint(west - 2 * unit_lng, north - 2 * unit_lat))
    assert not drawn.intersects(ShapelyPoint(west + 2 * unit_lng, north + 2 * unit_lat))


@pytest.mark.parametrize(
    "accept", ["application/vnd.mapbox-vector-tile", "application/x-protobuf", "image/*"]
)
def test_a_tile_is_sent_whatever_the_client_accepts_and_its_errors_in_json(city, client, accept):
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    answer = client.get(f"/tiles/zones/{z}/{x}/{y}.mvt", HTTP_ACCEPT=accept)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert answer.content == get_tile(client, "zones", z, x, y).content
    missing = client.get("/tiles/roads/14/0/0.mvt", HTTP_ACCEPT=accept)
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert "roads" in missing.json()["detail"]


def test_a_tile_answered_outside_drf_has_drfs_headers(city, client):
    """A GET is answered without DRF's request; its headers are still the ones DRF's
    view adds to every answer."""
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    for answer in (get_tile(client, "zones", z, x, y), get_tile(client, "zones", 14, 0, 0)):
        assert answer["Allow"] == "GET, HEAD, OPTIONS"


def test_a_failing_database_is_a_503_in_json_as_for_every_view(city, client, monkeypatch):
    """An error while a tile is made goes through the project's exception handler."""

    def unavailable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tile_apis, "tile", unavailable)
    z = 14
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    answer = client.get(f"/tiles/zones/{z}/{x}/{y}.mvt", HTTP_ACCEPT=MVT)
    assert (answer.status_code, answer["Content-Type"], answer["Retry-After"]) == (
        503,
        "application/json",
        "5",
    )
    assert answer.json() == {"detail": "The database is unavailable; try again shortly."}


def test_zones_drawn_ahead_make_the_tile_drawn_at_once(city, tmp_path):
    """Up to `ZONES_DRAWN_MAX_ZOOM` the zones come clipped to the tile ahead (migration
    0022): the tile has the features, attributes and shapes it has when every outline is
    clipped as it is read."""
    shop = city["shop"]
    big = factories.zone(
        merchant=shop, fee="1.10", area=factories.square(lat=52.5, lng=13.4, half_side_deg=0.1)
    )
    factories.zone(
        merchant=shop,
        fee="0.40",
        # Concave: an L across tile edges.
        area=MultiPolygon(
            Polygon(
                [
                    (13.38, 52.50),
                    (13.45, 52.50),
                    (13.45, 52.51),
                    (13.39, 52.51),
                    (13.39, 52.54),
                    (13.38, 52.54),
                    (13.38, 52.50),
                ]
            ),
            srid=4326,
        ),
    )
    compared = 0
    for z in range(12, ZONES_DRAWN_MAX_ZOOM + 1):
        x0, y0 = tile_of(lat=52.52, lng=13.405, z=z)
        for x, y in ((x0, y0), (x0 - 1, y0), (x0, y0 + 1), (x0 + 1, y0 - 1)):
            params = {"z": z, "x": x, "y": y, "now": datetime.now(UTC)}
            tiles = [
                bytes(
                    fetch_all(tile_statement("zones", filtered=True, drawn=drawn), params)[0][0]
                    or b""
                )
                for drawn in (True, False)
            ]
            assert tiles[0], (z, x, y)
            ahead, at_once = (
                sorted(
                    decoded(body, layer="zones", z=z, x=x, y=y, tmp_path=tmp_path),
                    key=lambda feature: feature["properties"]["id"],
                )
                for body in tiles
            )
            assert ahead == at_once
            compared += 1
    assert compared == 12
    # Beyond, outlines are clipped as they are read.
    z = ZONES_DRAWN_MAX_ZOOM + 1
    assert tile_statement("zones", filtered=True, drawn=False) != tile_statement(
        "zones", filtered=True, drawn=True
    )
    x, y = tile_of(lat=52.52, lng=13.405, z=z)
    features = decoded(
        tile(layer="zones", z=z, x=x, y=y).body, layer="zones", z=z, x=x, y=y, tmp_path=tmp_path
    )
    assert {feature["properties"]["id"] for feature in features} == {city["zone"].pk, big.pk}


def test_the_schema_bounds_z_x_and_y(client):
    # A client generated from the schema refuses an impossible tile before asking for it.
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    (path,) = (p for p in schema["paths"] if p.startswith("/tiles/"))
    bounds = {
        parameter["name"]: (parameter["schema"]["minimum"], parameter["schema"]["maximum"])
        for parameter in schema["paths"][path]["get"]["parameters"]
        if parameter["name"] in ("z", "x", "y")
    }
    assert bounds == {"z": (0, MAX_ZOOM), "x": (0, 2**MAX_ZOOM - 1), "y": (0, 2**MAX_ZOOM - 1)}
