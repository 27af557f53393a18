import httpx
import pytest

from delivery.eta import OsrmProvider, geodesic_eta_seconds
from geomarket.api.responses import json_bytes
from geomarket.asgi import application
from merchants.models import Merchant
from tests import factories
from tests.delivery.fake_providers import SlowProvider
from tests.delivery.placing import in_thread, order_placed
from tests.geo_fixtures import GEOD

pytestmark = [pytest.mark.django_db(transaction=True)]

ETA = "/api/v1/delivery/eta/"
DESTINATION = {"lat": 52.50, "lng": 13.40}


async def post(body, headers=None):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        return await client.post(ETA, json=body, headers=headers or {})


@in_thread
def merchants(count):
    return [factories.merchant(lat=52.52 + i * 0.001, lng=13.405) for i in range(count)]


async def test_geodesic_estimates_by_default(settings):
    shops = await merchants(3)
    response = await post({"destination": DESTINATION, "merchant_ids": [s.pk for s in shops]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["merchant_id"] for r in body["results"]] == [s.pk for s in shops]
    for result, shop in zip(body["results"], shops, strict=True):
        distance = GEOD.inv(shop.location.x, shop.location.y, 13.40, 52.50)[2]
        assert result["distance_m"] == pytest.approx(distance, abs=0.5)
        assert result["eta_s"] == geodesic_eta_seconds(distance_m=result["distance_m"])
        assert result["provider"] == "geodesic"
        assert result["degraded"] is False
    assert body["elapsed_ms"] >= 0
    # Rendered as DRF renders the API's other answers: compact.
    assert response.content == json_bytes(body)


async def test_twenty_slow_estimates_run_concurrently(settings):
    settings.ETA_PROVIDER = "tests.delivery.fake_providers.SlowProvider"
    SlowProvider.peak_in_flight = 0
    shops = await merchants(20)
    response = await post({"destination": DESTINATION, "merchant_ids": [s.pk for s in shops]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["merchant_id"] for r in results] == [s.pk for s in shops]
    assert all(r["eta_s"] == 1234 and not r["degraded"] for r in results)
    # All twenty were in flight at once.
    assert SlowProvider.peak_in_flight == 20


async def test_a_hanging_provider_degrades_only_its_merchants(settings):
    settings.ETA_PROVIDER = "tests.delivery.fake_providers.HangingProvider"
    settings.ETA_PROVIDER_TIMEOUT_SECONDS = 0.3
    settings.ETA_DEADLINE_SECONDS = 1.0
    shops = await merchants(4)
    response = await post({"destination": DESTINATION, "merchant_ids": [s.pk for s in shops]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["merchant_id"] for r in results] == [s.pk for s in shops]
    for result in results:
        if result["merchant_id"] % 2:
            assert result["degraded"] is True
            assert result["provider"] == "geodesic"
            assert result["eta_s"] == geodesic_eta_seconds(distance_m=result["distance_m"])
        else:
            assert (result["eta_s"], result["degraded"], result["provider"]) == (
                777,
                False,
                "hanging",
            )


async def test_a_failing_provider_falls_back(settings):
    settings.ETA_PROVIDER = "tests.delivery.fake_providers.FailingProvider"
    shops = await merchants(2)
    response = await post({"destination": DESTINATION, "merchant_ids": [s.pk for s in shops]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["merchant_id"] for r in results] == [s.pk for s in shops]
    assert all(r["degraded"] and r["provider"] == "geodesic" for r in results)


async def test_osrm_provider_reads_the_route_duration(settings):
    def route(request):
        assert request.url.path.startswith("/route/v1/bike/13.405,52.52;13.4,52.5")
        return httpx.Response(200, json={"code": "Ok", "routes": [{"duration": 321.4}]})

    provider = OsrmProvider(
        client=httpx.AsyncClient(transport=httpx.MockTransport(route), base_url="http://osrm.test")
    )
    from delivery.eta import Leg

    leg = Leg(1, 52.52, 13.405, 52.5, 13.4, 2500.0)
    assert await provider.estimate(leg) == round(settings.ETA_PREPARATION_SECONDS + 321.4)
    learned = Leg(1, 52.52, 13.405, 52.5, 13.4, 2500.0, learned_prep_time_s=90)
    assert await provider.estimate(learned) == round(90 + 321.4)


async def test_each_merchant_counts_its_learned_preparation_time(settings):
    @in_thread
    def setup():
        learning, default = (factories.merchant(lat=52.52, lng=13.405) for _ in range(2))
        Merchant.objects.filter(pk=learning.pk).update(learned_prep_time_s=90)
        return learning, default

    learning, default = await setup()
    response = await post({"destination": DESTINATION, "merchant_ids": [learning.pk, default.pk]})
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["distance_m"] == second["distance_m"]
    assert second["eta_s"] - first["eta_s"] == settings.ETA_PREPARATION_SECONDS - 90


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"destination": DESTINATION},
        {"merchant_ids": [1]},
        {"destination": {"lat": 91, "lng": 0}, "merchant_ids": [1]},
        {"destination": DESTINATION, "merchant_ids": []},
        {"destination": DESTINATION, "merchant_ids": list(range(1, 52))},
        {"destination": DESTINATION, "merchant_ids": [999999]},
        {"destination": DESTINATION, "merchant_ids": ["x"]},
        [1, 2],
    ],
)
@pytest.mark.django_db  # nothing to commit: validation answers before any data matters
async def test_bad_bodies_are_400(body):
    response = await post(body)
    assert response.status_code == 400
    assert response.json()


@pytest.mark.django_db
async def test_wrong_method_and_content_type():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.get(ETA)).status_code == 405
        text = await client.post(ETA, content="x", headers={"content-type": "text/plain"})
        assert text.status_code == 415


async def test_order_eta_needs_someone_who_sees_the_order():
    @in_thread
    def setup():
        order = order_placed()
        return order, order.buyer.auth_token.key, factories.user().auth_token.key

    order, token, stranger = await setup()
    mine = await post({"order_id": order.pk}, {"Authorization": f"Token {token}"})
    assert mine.status_code == 200
    assert [r["merchant_id"] for r in mine.json()["results"]] == [order.merchant_id]
    assert (
        await post({"order_id": order.pk}, {"Authorization": f"Token {stranger}"})
    ).status_code == 404
    assert (await post({"order_id": order.pk})).status_code == 401


async def test_an_order_of_a_merchant_deactivated_since_is_still_estimated():
    """Merchants by id must be active; an order's merchant is the order's, active or not
    (its orders in flight are still delivered). It was refused as if the caller had sent
    an inactive merchant, naming `merchant_ids`, which it had not sent."""

    @in_thread
    def setup():
        order = order_placed()
        Merchant.objects.filter(pk=order.merchant_id).update(is_active=False)
        return order, order.buyer.auth_token.key

    order, token = await setup()
    response = await post({"order_id": order.pk}, {"Authorization": f"Token {token}"})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["merchant_id"] == order.merchant_id
    assert result["distance_m"] > 0
    by_id = await post({"destination": DESTINATION, "merchant_ids": [order.merchant_id]})
    assert by_id.status_code == 400
