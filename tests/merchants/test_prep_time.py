"""Learned preparation time: per merchant, the median of `ready - confirmed` over its
orders of the last 28 days when there are at least 20, else the default; refreshed by
beat (`orders.prep_times_learn`), shown as `prep_time_s` and counted in ETAs."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone
from rest_framework.test import APIClient

from merchants.models import Address, Merchant
from merchants.services import merchant_prep_times_learn
from orders.models import Order, OrderStatus
from orders.selectors import PREP_TIME_SAMPLES_SQL
from orders.services import order_transition
from orders.tasks import prep_times_learn
from tests import factories
from tests.delivery.placing import order_placed

pytestmark = pytest.mark.django_db

HERE = {"lat": 52.52, "lng": 13.405}


def seed_samples(merchant: Merchant, seconds: list[int], *, days_ago: float = 1) -> None:
    """One order of `merchant` for each of `seconds`: confirmed, and ready that many
    seconds later, `days_ago` days ago; its history as placement and transitions write
    it (a first change to `confirmed`, later ones to `preparing` and `ready`)."""
    buyer = factories.user()
    address = Address.objects.create(
        line1="x", city="B", postal_code="1", location=Point(13.4, 52.5, srid=4326)
    )
    orders = Order.objects.bulk_create(
        Order(
            buyer=buyer,
            merchant=merchant,
            delivery_address=address,
            status=OrderStatus.READY,
            subtotal=1,
            delivery_fee=0,
            total=1,
        )
        for _ in seconds
    )
    ready_at = timezone.now() - timedelta(days=days_ago)
    rows = []
    for order, taken in zip(orders, seconds, strict=True):
        confirmed_at = ready_at - timedelta(seconds=taken)
        rows += [
            (order.pk, "", OrderStatus.CONFIRMED, confirmed_at),
            (order.pk, OrderStatus.CONFIRMED, OrderStatus.PREPARING, confirmed_at),
            (order.pk, OrderStatus.PREPARING, OrderStatus.READY, ready_at),
        ]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO orders_orderstatuschange"
            " (order_id, from_status, to_status, actor_id, reason, created_at)"
            " VALUES (%s, %s, %s, NULL, '', %s)",
            rows,
        )


def learned(merchant: Merchant) -> int | None:
    prep_times_learn()
    return Merchant.objects.get(pk=merchant.pk).learned_prep_time_s


def test_an_odd_number_of_samples_learns_the_middle_one():
    shop = factories.merchant()
    seed_samples(shop, [60 * (i + 1) for i in range(21)])
    assert learned(shop) == 11 * 60


def test_an_even_number_of_samples_learns_the_mean_of_the_middle_two():
    shop = factories.merchant()
    # Sorted: 10, 20, ..., 190 and 1000: the middle two are 100 and 110.
    seed_samples(shop, [*(10 * (i + 1) for i in range(19)), 1000])
    assert learned(shop) == 105


def test_nineteen_samples_learn_nothing_and_twenty_do():
    shop = factories.merchant()
    seed_samples(shop, [300] * 19)
    assert learned(shop) is None
    seed_samples(shop, [300])
    assert learned(shop) == 300


def test_samples_older_than_28_days_are_ignored():
    shop = factories.merchant()
    seed_samples(shop, [100] * 20)
    seed_samples(shop, [5000] * 30, days_ago=29)
    assert learned(shop) == 100
    other = factories.merchant()
    seed_samples(other, [100] * 19)
    seed_samples(other, [100] * 5, days_ago=28.1)
    assert learned(other) is None


def test_each_merchant_learns_from_its_own_orders():
    quick, slow, idle = factories.merchant(), factories.merchant(), factories.merchant()
    seed_samples(quick, [120] * 20)
    seed_samples(slow, [1800] * 20)
    prep_times_learn()
    times = dict(
        Merchant.objects.filter(pk__in=[quick.pk, slow.pk, idle.pk]).values_list(
            "pk", "learned_prep_time_s"
        )
    )
    assert times == {quick.pk: 120, slow.pk: 1800, idle.pk: None}


def test_a_merchant_whose_samples_age_out_goes_back_to_the_default():
    shop = factories.merchant()
    Merchant.objects.filter(pk=shop.pk).update(learned_prep_time_s=240)
    seed_samples(shop, [240] * 20, days_ago=30)
    assert learned(shop) is None


def test_learning_writes_only_what_differs_and_bumps_only_then(
    django_capture_on_commit_callbacks,
):
    shop = factories.merchant()
    seed_samples(shop, [400] * 20)
    with django_capture_on_commit_callbacks() as bumps:
        assert merchant_prep_times_learn(samples_sql=PREP_TIME_SAMPLES_SQL) == [shop.pk]
    assert bumps
    with django_capture_on_commit_callbacks() as bumps:
        assert merchant_prep_times_learn(samples_sql=PREP_TIME_SAMPLES_SQL) == []
    assert not bumps


def test_the_samples_are_read_from_the_history_placement_and_transitions_write():
    order = order_placed()
    owner = order.merchant.owner
    for status in (OrderStatus.PREPARING, OrderStatus.READY):
        order_transition(order_id=order.pk, actor=owner, to_status=status)
    with connection.cursor() as cursor:
        cursor.execute(PREP_TIME_SAMPLES_SQL, {"since": timezone.now() - timedelta(days=1)})
        samples = cursor.fetchall()
    assert [merchant_id for merchant_id, _ in samples] == [order.merchant_id]
    assert 0 <= samples[0][1] < 60


def ready(order, *, run_callbacks) -> None:
    owner = order.merchant.owner
    order_transition(order_id=order.pk, actor=owner, to_status=OrderStatus.PREPARING)
    with run_callbacks(execute=True):
        order_transition(order_id=order.pk, actor=owner, to_status=OrderStatus.READY)


def test_the_order_that_makes_twenty_samples_learns_at_once(django_capture_on_commit_callbacks):
    # Not an hour later: the merchant shows its own time from its twentieth order on.
    order = order_placed()
    shop = order.merchant
    seed_samples(shop, [300] * 19)
    client = APIClient()
    assert client.get(f"/api/v1/merchants/{shop.pk}/").json()["prep_time_s"] == 600
    ready(order, run_callbacks=django_capture_on_commit_callbacks)
    # Sorted: this order's few seconds, then nineteen of 300: the middle two are 300.
    assert Merchant.objects.get(pk=shop.pk).learned_prep_time_s == 300
    # The cached answer is unreachable.
    assert client.get(f"/api/v1/merchants/{shop.pk}/").json()["prep_time_s"] == 300


def test_a_merchant_with_a_learned_time_waits_for_the_refresh(django_capture_on_commit_callbacks):
    # Refreshed on every `ready`, a learned time would bump every merchant answer's
    # version as often as any order of the platform gets ready.
    order = order_placed()
    shop = order.merchant
    seed_samples(shop, [300] * 20)
    assert learned(shop) == 300
    seed_samples(shop, [900] * 30)
    ready(order, run_callbacks=django_capture_on_commit_callbacks)
    assert Merchant.objects.get(pk=shop.pk).learned_prep_time_s == 300
    assert learned(shop) == 900


@pytest.mark.parametrize(
    "error", [DatabaseError("the primary went away"), InterfaceError("connection already closed")]
)
def test_the_orders_change_stands_when_learning_fails(
    django_capture_on_commit_callbacks, monkeypatch, caplog, error
):
    from orders.services import transitions

    def fails(**_):
        raise error

    monkeypatch.setattr(transitions, "merchant_prep_times_learn", fails)
    order = order_placed()
    ready(order, run_callbacks=django_capture_on_commit_callbacks)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.READY
    assert "preparation time failed" in caplog.text


# --- shown as prep_time_s ------------------------------------------------------------------


def shown_everywhere(client: APIClient, merchant_id: int) -> list[dict]:
    """The merchant as each answer that shows merchants shows it."""
    listed = client.get("/api/v1/merchants/").json()["results"]
    nearby = client.get("/api/v1/merchants/nearby/", HERE).json()["results"]
    delivering = client.get("/api/v1/merchants/delivering-to/", HERE).json()["results"]
    return [
        client.get(f"/api/v1/merchants/{merchant_id}/").json(),
        *(row for row in [*listed, *nearby, *delivering] if row["id"] == merchant_id),
    ]


def test_prep_time_s_is_the_learned_time_or_the_default_in_every_answer(
    django_capture_on_commit_callbacks,
):
    learning = factories.merchant(**HERE)
    default = factories.merchant(lat=HERE["lat"] + 0.001, lng=HERE["lng"])
    for shop in (learning, default):
        factories.zone(merchant=shop)
    client = APIClient()
    seed_samples(learning, [750] * 20)
    # Cached before learning: learning makes the cached answer unreachable.
    assert {row["prep_time_s"] for row in shown_everywhere(client, learning.pk)} == {
        settings.ETA_PREPARATION_SECONDS
    }
    with django_capture_on_commit_callbacks(execute=True):
        prep_times_learn()
    for merchant_id, expected in ((learning.pk, 750), (default.pk, 600)):
        shown = shown_everywhere(client, merchant_id)
        assert len(shown) == 4
        assert [row["prep_time_s"] for row in shown] == [expected] * 4


def test_the_default_is_the_setting(settings):
    settings.ETA_PREPARATION_SECONDS = 420
    shop = factories.merchant(**HERE)
    factories.zone(merchant=shop)
    assert [row["prep_time_s"] for row in shown_everywhere(APIClient(), shop.pk)] == [420] * 4


# --- in ETAs --------------------------------------------------------------------------------


def test_a_confirmed_orders_tracking_eta_counts_the_learned_time():
    order = order_placed()
    operator = APIClient()
    operator.force_authenticate(factories.user(is_staff=True))
    tracking = f"/api/v1/orders/{order.pk}/tracking/"
    by_default = operator.get(tracking).json()["eta_s"]
    seed_samples(order.merchant, [90] * 20)
    prep_times_learn()
    assert (
        operator.get(tracking).json()["eta_s"] == by_default - settings.ETA_PREPARATION_SECONDS + 90
    )
