import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from delivery.models import Courier
from delivery.selectors import courier_get
from delivery.serializers import CourierOutputSerializer
from delivery.services import courier_create
from delivery.tasks import mark_stale_couriers_offline
from orders.models import Order
from orders.services import orders_courier_set
from tests import factories
from tests.market import ORDERS, api_client_as, order_body
from tests.rows import rows
from tests.threads import Worker, behind_an_uncommitted_write
from tests.tracking.tracked import order_with_courier

pytestmark = pytest.mark.django_db

COURIERS = "/api/v1/couriers/"


def test_operator_creates_lists_and_updates_couriers(as_user):
    operator = as_user(factories.user(is_staff=True))
    rider = factories.user()
    created = operator.post(
        COURIERS, {"user_id": rider.pk, "name": "Ana", "vehicle": "scooter", "capacity": 2}
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body == {
        "id": body["id"],
        "user_id": rider.pk,
        "name": "Ana",
        "vehicle": "scooter",
        "status": "offline",
        "location": None,
        "location_updated_at": None,
        "capacity": 2,
        "active_orders": 0,
    }
    before = rows(Courier)
    again = operator.post(COURIERS, {"user_id": rider.pk, "name": "Ana", "vehicle": "bike"})
    assert again.status_code == 400
    assert rows(Courier) == before
    patched = operator.patch(f"{COURIERS}{body['id']}/", {"status": "available", "capacity": 3})
    assert patched.json()["status"] == "available"
    assert patched.json()["capacity"] == 3
    assert [c["id"] for c in operator.get(COURIERS, {"status": "available"}).json()["results"]] == [
        body["id"]
    ]
    assert operator.get(COURIERS, {"status": "offline"}).json()["results"] == []
    assert operator.get(COURIERS, {"status": "asleep"}).status_code == 400
    before = rows(Courier)
    assert (
        operator.post(
            COURIERS, {"user_id": factories.user().pk, "name": "B", "vehicle": "rocket"}
        ).status_code
        == 400
    )
    assert rows(Courier) == before


@pytest.mark.parametrize("role", ["anonymous", "customer", "courier", "owner"])
def test_only_operators_manage_couriers(as_user, make_courier, role):
    courier = make_courier()
    users = {
        "anonymous": None,
        "customer": factories.user(),
        "courier": courier.user,
        "owner": factories.merchant().owner,
    }
    client = as_user(users[role])
    expected = 401 if role == "anonymous" else 403
    before = rows(Courier)
    assert client.get(COURIERS).status_code == expected
    assert client.get(f"{COURIERS}{courier.pk}/").status_code == expected
    assert client.patch(f"{COURIERS}{courier.pk}/", {"capacity": 9}).status_code == expected
    assert rows(Courier) == before


def test_courier_reads_and_sets_own_status(as_user, make_courier):
    courier = make_courier(status="offline")
    client = as_user(courier.user)
    assert client.get(f"{COURIERS}me/").json()["id"] == courier.pk
    assert client.patch(f"{COURIERS}me/", {"status": "available"}).json()["status"] == "available"
    before = rows(Courier)
    refused = client.patch(f"{COURIERS}me/", {"status": "busy"})
    assert refused.status_code == 400
    assert "status" in refused.json()
    assert rows(Courier) == before
    assert as_user(factories.user()).get(f"{COURIERS}me/").status_code == 403


def test_location_ping_is_one_update(as_user, make_courier, django_assert_num_queries):
    courier = make_courier(age_s=1000)
    stale = courier.location_updated_at
    client = as_user(courier.user)
    with django_assert_num_queries(2):  # the token, then the single UPDATE
        response = client.post(f"{COURIERS}me/location/", {"lat": 52.5, "lng": 13.3})
    assert response.status_code == 200
    assert response.json()["courier_id"] == courier.pk
    courier.refresh_from_db()
    assert (courier.location.x, courier.location.y) == (13.3, 52.5)
    assert stale < courier.location_updated_at <= timezone.now()


@pytest.mark.parametrize(
    "body",
    [
        {"lat": 91, "lng": 13},
        {"lat": 52, "lng": 181},
        {"lat": -91, "lng": 0},
        {"lat": "x", "lng": 13},
        {"lat": 52},
        {"lat": "NaN", "lng": 13},
    ],
)
def test_bad_location_is_400_and_changes_nothing(as_user, make_courier, body):
    courier = make_courier()
    before = (courier.location, courier.location_updated_at)
    response = as_user(courier.user).post(f"{COURIERS}me/location/", body)
    assert response.status_code == 400
    courier.refresh_from_db()
    assert (courier.location, courier.location_updated_at) == before


def test_non_courier_cannot_ping(as_user):
    response = as_user(factories.user()).post(f"{COURIERS}me/location/", {"lat": 1, "lng": 1})
    assert response.status_code == 403
    assert not Courier.objects.exists()


def test_stale_couriers_go_offline(make_courier):
    fresh = make_courier(age_s=10)
    stale = make_courier(age_s=301)
    busy_stale = make_courier(age_s=3000, status="busy")
    assert mark_stale_couriers_offline() == 2
    statuses = dict(Courier.objects.values_list("id", "status"))
    assert statuses == {fresh.pk: "available", stale.pk: "offline", busy_stale.pk: "offline"}


def test_couriers_are_answered_as_their_serializer_renders_them(
    market, as_user, make_courier, django_assert_num_queries
):
    """The list, the detail and the courier's own answer render rows read by compiled
    statements (`courier_answers`); the serializer renders the courier objects that writes
    answer with. The two must be the same bytes."""
    located = make_courier(lat=52.520008123456789, lng=13.404954987654321, capacity=3)
    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)), format="json")
    assert placed.status_code == 201, placed.content
    orders_courier_set(assignments=[(placed.json()["id"], located.pk)])
    unlocated = courier_create(user=factories.user(), name='Caf\u00e9 "Q" \u2028', vehicle="car")
    operator = as_user(factories.user(is_staff=True))
    couriers = (located, unlocated)
    expected = [CourierOutputSerializer(courier_get(courier_id=c.pk)).data for c in couriers]
    assert [courier["active_orders"] for courier in expected] == [1, 0]
    with django_assert_num_queries(2):  # the token, then the page with its count
        listed = operator.get(COURIERS)
    assert listed.json()["count"] == 2
    assert JSONRenderer().render(listed.json()["results"]) == JSONRenderer().render(expected)
    for courier, answer in zip(couriers, expected, strict=True):
        with django_assert_num_queries(2):
            detail = operator.get(f"{COURIERS}{courier.pk}/")
        assert detail.content == JSONRenderer().render(answer)
    own = as_user(located.user).get(f"{COURIERS}me/")
    assert own.content == JSONRenderer().render(expected[0])
    assert as_user(factories.user()).get(f"{COURIERS}me/").status_code == 403
    assert operator.get(f"{COURIERS}{unlocated.pk + 1000}/").status_code == 404


def _patched_while(monkeypatch, meanwhile):
    """`courier_update` as the views call it, with `meanwhile` run and committed on another
    connection first: between the view's read of the courier and its write."""
    from delivery import apis

    real = apis.courier_update

    def update(*, courier, data):
        other = Worker(meanwhile)
        other.start()
        assert other.outcome().status_code == 200
        return real(courier=courier, data=data)

    monkeypatch.setattr(apis, "courier_update", update)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["{id}/", "me/"])
def test_a_patch_keeps_a_ping_committed_since_the_courier_was_read(
    as_user, make_courier, monkeypatch, path
):
    courier = make_courier(status="offline", age_s=60)
    by_operator = path != "me/"
    client = as_user(factories.user(is_staff=True) if by_operator else courier.user)
    _patched_while(
        monkeypatch,
        lambda: as_user(courier.user).post(f"{COURIERS}me/location/", {"lat": 52.6, "lng": 13.5}),
    )
    body = {"name": "Ana B."} if by_operator else {"status": "offline"}
    answer = client.patch(f"{COURIERS}{path.format(id=courier.pk)}", body)
    assert answer.status_code == 200, answer.content
    courier.refresh_from_db()
    assert (courier.location.x, courier.location.y) == (13.5, 52.6)
    assert answer.json()["location"]["coordinates"] == [13.5, 52.6]


@pytest.mark.django_db(transaction=True)
def test_a_patch_keeps_the_status_a_delivery_gave_since_the_courier_was_read(
    market, as_user, monkeypatch
):
    order, courier, courier_user = order_with_courier(market)
    Courier.objects.filter(pk=courier.pk).update(capacity=1, status="busy")
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    _patched_while(
        monkeypatch,
        lambda: as_user(courier_user).post(f"{ORDERS}{order.pk}/status/", {"status": "delivered"}),
    )
    answer = as_user(factories.user(is_staff=True)).patch(
        f"{COURIERS}{courier.pk}/", {"name": "Kim B."}
    )
    assert answer.status_code == 200, answer.content
    assert Order.objects.get(pk=order.pk).status == "delivered"
    assert (answer.json()["status"], answer.json()["active_orders"]) == ("available", 0)
    assert Courier.objects.get(pk=courier.pk).status == "available"


@pytest.mark.parametrize(
    ("capacity", "status", "new_capacity", "expected"),
    [(1, "busy", 3, "available"), (2, "available", 1, "busy"), (2, "offline", 1, "offline")],
)
def test_a_new_capacity_squares_the_status_with_the_load(
    market, as_user, capacity, status, new_capacity, expected
):
    _, courier, _ = order_with_courier(market)
    Courier.objects.filter(pk=courier.pk).update(capacity=capacity, status=status)
    answer = as_user(factories.user(is_staff=True)).patch(
        f"{COURIERS}{courier.pk}/", {"capacity": new_capacity}
    )
    assert answer.status_code == 200, answer.content
    assert (answer.json()["status"], answer.json()["active_orders"]) == (expected, 1)
    assert Courier.objects.get(pk=courier.pk).status == expected


@pytest.mark.django_db(transaction=True)
def test_a_create_that_waited_for_a_concurrent_one_for_the_same_user_is_the_checks_400():
    """The race made certain: the winner's profile is inserted and not yet committed, so
    the loser's check does not see it and its INSERT waits on the unique user until the
    commit. The loser was answered the unique index's 409 instead of the check's 400."""
    operator, rider = factories.user(is_staff=True), factories.user()
    response = behind_an_uncommitted_write(
        "INSERT INTO delivery_courier (user_id, name, vehicle, status, capacity, created_at)"
        " VALUES (%s, 'First', 'bike', 'offline', 1, now())",
        [rider.pk],
        lambda: api_client_as(operator).post(
            COURIERS, {"user_id": rider.pk, "name": "Second", "vehicle": "car"}
        ),
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"user_id": ["This user already has a courier profile."]}
    assert list(Courier.objects.filter(user=rider).values_list("name", flat=True)) == ["First"]
