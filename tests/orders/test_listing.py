from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from orders.models import Order
from orders.selectors import order_stats
from orders.serializers import OrderStatsSerializer
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


def place(market, client=None, qty=2):
    client = client or market["client"]
    response = client.post(ORDERS, order_body(market, (market["bread"], qty)))
    assert response.status_code == 201
    return response.json()["id"]


def ids(response):
    return ids_of(response.json())


def ids_of(page: dict) -> list[int]:
    return [row["id"] for row in page["results"]]


def test_each_role_sees_its_own_orders_newest_first(market, as_user):
    first, second = place(market), place(market)
    stranger = as_user(factories.user())
    theirs = place(market, client=stranger)
    assert ids(market["client"].get(ORDERS)) == [second, first]
    assert ids(stranger.get(ORDERS)) == [theirs]
    assert ids(market["owner_client"].get(ORDERS)) == [theirs, second, first]
    assert ids(as_user(factories.merchant().owner).get(ORDERS)) == []
    assert ids(as_user(factories.user(is_staff=True)).get(ORDERS)) == [theirs, second, first]


def test_another_customers_order_is_404(market, as_user):
    order_id = place(market)
    assert as_user(factories.user()).get(f"{ORDERS}{order_id}/").status_code == 404
    assert market["client"].get(f"{ORDERS}{order_id}/").status_code == 200
    assert as_user(None).get(f"{ORDERS}{order_id}/").status_code == 401


def test_filters(market):
    first, second = place(market), place(market)
    Order.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(days=3))
    market["client"].post(f"{ORDERS}{second}/status/", {"status": "cancelled"})
    client = market["client"]
    assert ids(client.get(ORDERS, {"status": "cancelled"})) == [second]
    assert ids(client.get(ORDERS, {"merchant_id": market["shop"].pk})) == [second, first]
    assert ids(client.get(ORDERS, {"merchant_id": 999999})) == []
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(client.get(ORDERS, {"created_after": since})) == [second]
    assert ids(client.get(ORDERS, {"created_before": since})) == [first]
    assert client.get(ORDERS, {"status": "lost"}).status_code == 400
    assert client.get(ORDERS, {"created_after": "yesterday"}).status_code == 400


def test_created_after_past_created_before_is_400(market):
    place(market)
    response = market["client"].get(
        ORDERS,
        {"created_after": "2026-03-02T00:00:00Z", "created_before": "2026-03-01T23:59:59+00:00"},
    )
    assert response.status_code == 400
    assert response.json() == {"created_after": ["Must not be after created_before."]}
    # The same instant at both ends is a range: its orders, none here.
    same = {"created_after": "2026-03-02T00:00:00Z", "created_before": "2026-03-02T01:00:00+01:00"}
    assert market["client"].get(ORDERS, same).json()["count"] == 0


def test_order_list_runs_a_fixed_number_of_queries(market, django_assert_num_queries):
    for _ in range(6):
        place(market)
    client = market["client"]
    # the token, then the page with its merchants, addresses, lines and the count
    for size in (2, 6):
        with django_assert_num_queries(2):
            assert len(ids(client.get(ORDERS, {"page_size": size}))) == size


def test_pages_share_one_count_and_the_last_page_is_found_from_it(market):
    placed = [place(market) for _ in range(5)]
    newest_first = sorted(placed, reverse=True)
    client = market["client"]
    pages = [client.get(ORDERS, {"page_size": 2, "page": n}).json() for n in (1, 2, 3)]
    assert [page["count"] for page in pages] == [5, 5, 5]
    assert [ids_of(page) for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    last = client.get(ORDERS, {"page_size": 2, "page": "last"}).json()
    assert (last["page"], ids_of(last)) == (3, newest_first[4:])
    # Past the end: the page is empty, so only its count says there is no such page.
    assert client.get(ORDERS, {"page_size": 2, "page": 4}).status_code == 404


def test_merchant_orders_sum_quantities_in_sql(market, as_user, django_assert_num_queries):
    body = order_body(market, (market["bread"], 2), (market["milk"], 3))
    order_id = market["client"].post(ORDERS, body).json()["id"]
    place(market, qty=4)
    url = f"/api/v1/merchants/{market['shop'].pk}/orders/"
    rows = market["owner_client"].get(url).json()["results"]
    assert rows[1] == {
        "id": order_id,
        "status": "confirmed",
        "created_at": rows[1]["created_at"],
        "total_items": 5,
        "total": "11.25",
    }
    assert rows[0]["total_items"] == 4
    # the token with the caller's profiles, the merchant's active flag, then the page and
    # its count
    for size in (1, 2):
        with django_assert_num_queries(3):
            page = market["owner_client"].get(url, {"page_size": size})
        assert page.status_code == 200
        assert len(page.json()["results"]) == size
    assert as_user(factories.user()).get(url).status_code == 403
    assert as_user(factories.merchant().owner).get(url).status_code == 403


def test_stats_count_revenue_of_live_and_delivered_orders(market, as_user):
    live, cancelled, delivered = place(market), place(market), place(market)
    market["client"].post(ORDERS, order_body(market, (market["bread"], 50)))  # rejected
    market["client"].post(f"{ORDERS}{cancelled}/status/", {"status": "cancelled"})
    Order.objects.filter(pk=delivered).update(status="delivered")
    stats = market["owner_client"].get(f"{ORDERS}stats/").json()
    assert stats["orders"] == 4
    assert stats["by_status"]["confirmed"] == 1
    assert stats["by_status"]["cancelled"] == 1
    assert stats["by_status"]["delivered"] == 1
    assert stats["by_status"]["rejected"] == 1
    assert stats["revenue"] == "15.00"  # two orders of 6.00 + 1.50 delivery
    assert live
    operator = as_user(factories.user(is_staff=True))
    assert operator.get(f"{ORDERS}stats/").json()["orders"] == 4
    other = factories.merchant()
    assert operator.get(f"{ORDERS}stats/", {"merchant_id": other.pk}).json()["orders"] == 0
    assert market["client"].get(f"{ORDERS}stats/").status_code == 403
    assert (
        market["owner_client"].get(f"{ORDERS}stats/", {"merchant_id": other.pk}).status_code == 403
    )


def test_the_stats_answer_is_what_the_schemas_serializer_renders(market, as_user):
    place(market)
    cancelled = place(market)
    market["client"].post(f"{ORDERS}{cancelled}/status/", {"status": "cancelled"})
    operator = as_user(factories.user(is_staff=True))
    shop, other = market["shop"].pk, factories.merchant().pk
    for client, params, merchant_id in (
        (market["owner_client"], {}, shop),
        (operator, {}, None),
        (operator, {"merchant_id": shop}, shop),
        (operator, {"merchant_id": other}, other),
    ):
        answer = client.get(f"{ORDERS}stats/", params)
        stats = OrderStatsSerializer(order_stats(merchant_id=merchant_id)).data
        assert answer.content == JSONRenderer().render(stats)
