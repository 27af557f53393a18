"""The operations console in a real browser with no internet access, served by uvicorn as
in production: the console follows the courier stream, which a WSGI server would never
finish sending."""

import json

import httpx
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.contrib.gis.geos import Point
from rest_framework.test import APIClient

from delivery.models import Courier
from delivery.services import courier_create
from merchants.models import DeliveryZone
from tests import factories
from tests.browser.conftest import watched_page
from tests.uvicorn_served import key_prefix, same_keys, served

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-Secret-123"
KEY_PREFIX = key_prefix("console")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), served(prefix=KEY_PREFIX) as base_url:
        yield base_url


@pytest.fixture
def browser_page(request, chromium, server, settings):
    """A page on the served console. The tests' writes (the cache versions they bump, the
    searches they count, the pings they publish) go under the server's keys."""
    same_keys(settings, KEY_PREFIX)
    with watched_page(request, chromium, server) as watched:
        yield watched


def sign_in(browser_page, user) -> None:
    # Hashed as the served production settings check it (the tests' MD5 is not theirs).
    user.password = make_password(PASSWORD, hasher=PBKDF2PasswordHasher())
    user.save(update_fields=["password"])
    page = browser_page.page
    page.goto(f"{browser_page.base_url}/console/")
    assert "/console/login/" in page.url
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{browser_page.base_url}/console/")
    page.wait_for_function("() => window.consoleData !== undefined")


def pixel_of(page, lng: float, lat: float) -> list[float]:
    return page.evaluate(
        "([lng, lat]) => consoleMap.getPixelFromCoordinate(ol.proj.fromLonLat([lng, lat]))",
        [lng, lat],
    )


def merchants_drawn_at(page, lng: float, lat: float) -> list[int]:
    """The merchant points the map draws at a place (what hit detection finds there)."""
    return page.evaluate(
        """async ([lng, lat]) => {
            const pixel = consoleMap.getPixelFromCoordinate(ol.proj.fromLonLat([lng, lat]));
            const layer = consoleMap.getLayers().getArray().find((l) =>
                l instanceof ol.layer.VectorTile
                && l.getSource().getUrls()[0].includes('/merchants/'));
            const found = await layer.getFeatures(pixel);
            return found.map((f) => f.get('id'));
        }""",
        [lng, lat],
    )


def test_the_console_loads_with_no_errors_and_nothing_from_other_hosts(browser_page):
    """Map, tiles, the revenue chart, the heat map of unserved demand."""
    operator = factories.user(is_staff=True)
    shop = factories.merchant(name="Corner shop")
    factories.zone(merchant=shop)
    # A search that finds nobody, far from the shop: the heat map's one cell.
    APIClient().get("/api/v1/merchants/delivering-to/", {"lat": "52.0", "lng": "14.0"})
    sign_in(browser_page, operator)
    page = browser_page.page
    page.wait_for_selector("#map canvas")
    page.wait_for_function("() => consoleSources.unserved.getFeatures().length === 1")
    page.wait_for_function("() => document.querySelectorAll('#revenue-chart rect').length === 30")
    page.wait_for_function("() => consoleData.operator === true")
    page.wait_for_timeout(500)
    assert browser_page.errors == []
    assert browser_page.foreign_requests() == []
    assert any("/tiles/zones/" in url for url in browser_page.requests)
    assert any("/tiles/merchants/" in url for url in browser_page.requests)


def test_an_owner_sees_only_its_merchant(browser_page):
    owner = factories.user()
    mine = factories.merchant(owner=owner, name="Mine", lat=52.52, lng=13.40)
    theirs = factories.merchant(name="Theirs", lat=52.52, lng=13.42)
    own_zone = factories.zone(merchant=mine)
    factories.zone(merchant=theirs)
    sign_in(browser_page, owner)
    page = browser_page.page
    page.wait_for_function("() => consoleSources.ownZones.getFeatures().length > 0")
    page.evaluate("() => consoleMap.getView().setZoom(14)")
    page.wait_for_function(
        "() => new Promise((done) => consoleMap.once('rendercomplete', () => done(true)))"
    )
    assert merchants_drawn_at(page, 13.40, 52.52) == [mine.pk]
    assert merchants_drawn_at(page, 13.42, 52.52) == []
    zone_ids = page.evaluate("() => consoleSources.ownZones.getFeatures().map((f) => f.getId())")
    assert zone_ids == [own_zone.pk]
    assert page.evaluate("() => consoleData.merchant_id") == mine.pk
    assert browser_page.errors == []


def draw_square(page, *, lng: float, lat: float, half: float) -> None:
    page.click("#draw-zone")
    corners = [
        (lng - half, lat - half),
        (lng + half, lat - half),
        (lng + half, lat + half),
        (lng - half, lat + half),
    ]
    box = page.locator("#map").bounding_box()
    for corner_lng, corner_lat in corners:
        x, y = pixel_of(page, corner_lng, corner_lat)
        page.mouse.click(box["x"] + x, box["y"] + y)
    x, y = pixel_of(page, *corners[0])
    page.mouse.click(box["x"] + x, box["y"] + y)


def zone_drawn(browser_page, *, at_lng: float) -> DeliveryZone:
    """A zone an owner of a merchant at 13.405, 52.52 draws on its console around the
    point at `at_lng`, 52.52 (the map centred there), saved: 201."""
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=52.52, lng=13.405)
    sign_in(browser_page, owner)
    page = browser_page.page
    page.wait_for_selector("#map canvas")
    if at_lng != 13.405:
        centre = f"ol.proj.fromLonLat([{at_lng}, 52.52])"
        page.evaluate(f"() => consoleMap.getView().setCenter({centre})")
        page.wait_for_timeout(300)
    draw_square(page, lng=at_lng, lat=52.52, half=0.01)
    page.wait_for_function("() => window.zoneSaved !== undefined")
    assert page.evaluate("() => window.zoneSaved") == 201
    (zone,) = DeliveryZone.objects.filter(merchant=shop)
    return zone


def test_drawing_a_zone_saves_it_and_a_refused_one_shows_why(browser_page):
    zone = zone_drawn(browser_page, at_lng=13.405)
    shop, page = zone.merchant, browser_page.page
    page.wait_for_selector("#zone-message.ok")
    extent = zone.area.extent
    assert extent == pytest.approx((13.395, 52.51, 13.415, 52.53), abs=0.001)
    assert zone.delivery_fee == 2.5
    page.wait_for_function("() => consoleSources.ownZones.getFeatures().length === 1")

    # Far over the contract's 5,000 km²: the server's 400 is shown as it words it.
    page.evaluate("() => { window.zoneSaved = undefined; consoleMap.getView().setZoom(6); }")
    page.wait_for_timeout(300)
    draw_square(page, lng=13.405, lat=52.52, half=1.5)
    page.wait_for_function("() => window.zoneSaved !== undefined")
    assert page.evaluate("() => window.zoneSaved") == 400
    message = page.text_content("#zone-message.error")
    assert "km" in message
    assert DeliveryZone.objects.filter(merchant=shop).count() == 1


def test_a_zone_drawn_one_world_east_is_saved_within_180_degrees(browser_page):
    """The map pans round the world without end: a zone drawn on a copy of the world
    east of the first one is sent as the same place on the first, within ±180°."""
    zone = zone_drawn(browser_page, at_lng=373.405)
    assert zone.area.extent == pytest.approx((13.395, 52.51, 13.415, 52.53), abs=0.001)


def test_an_owner_sees_every_one_of_its_zones_past_a_page(browser_page):
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=52.52, lng=13.405)
    # One more than a page of the zones' list holds.
    zones = [
        factories.zone(
            merchant=shop, area=factories.square(lat=52.52, lng=13.405, half_side_deg=0.0001 * n)
        )
        for n in range(1, 102)
    ]
    sign_in(browser_page, owner)
    page = browser_page.page
    # The layer takes the zones all at once, after their last page.
    page.wait_for_function("() => consoleSources.ownZones.getFeatures().length >= 100")
    shown = page.evaluate("() => consoleSources.ownZones.getFeatures().map((f) => f.getId())")
    assert sorted(shown) == [zone.pk for zone in zones]


def courier_on_the_map(browser_page):
    """An operator's console showing a courier's marker: the courier's user, and a script
    giving the marker."""
    operator = factories.user(is_staff=True)
    rider = factories.user()
    courier = courier_create(user=rider, name="Rider", vehicle="bike", capacity=1)
    Courier.objects.filter(pk=courier.pk).update(location=Point(13.40, 52.52, srid=4326))
    sign_in(browser_page, operator)
    marker = f"() => consoleSources.couriers.getFeatureById('courier-{courier.pk}')"
    browser_page.page.wait_for_function(f"() => ({marker})() !== null")
    return rider, marker


def ping_moves(browser_page, rider, marker) -> None:
    """A ping of `rider`, sent to the server, moves its marker within 10 s."""
    pinged = httpx.post(
        f"{browser_page.base_url}/api/v1/couriers/me/location/",
        json={"lat": 52.53, "lng": 13.41},
        headers={"Authorization": f"Token {rider.auth_token.key}"},
    )
    assert pinged.status_code == 200
    moved = browser_page.page.wait_for_function(
        f"""() => {{
            const at = ol.proj.toLonLat(({marker})().getGeometry().getCoordinates());
            return Math.abs(at[0] - 13.41) < 1e-6 && Math.abs(at[1] - 52.53) < 1e-6 && at;
        }}""",
        timeout=10_000,
    )
    assert json.loads(json.dumps(moved.json_value()))[1] == pytest.approx(52.53)


def test_a_courier_ping_moves_its_marker_through_the_stream(browser_page):
    # The console's refresh, far beyond this test's waits, gives the snapshot only: the
    # move can come from the stream alone.
    browser_page.page.add_init_script("window.consoleRefreshMs = 3600 * 1000")
    rider, marker = courier_on_the_map(browser_page)
    browser_page.page.wait_for_function("() => courierStream.readyState === EventSource.OPEN")
    ping_moves(browser_page, rider, marker)
    assert browser_page.errors == []


def test_while_the_stream_is_refused_the_refresh_moves_the_marker(browser_page):
    page = browser_page.page
    page.route("**/console/couriers/stream/", lambda route: route.fulfill(status=503, body=""))
    rider, marker = courier_on_the_map(browser_page)
    # Refused: the browser does not try again, and the console leaves it for a while.
    page.wait_for_function("() => courierStream.readyState === EventSource.CLOSED")
    ping_moves(browser_page, rider, marker)
