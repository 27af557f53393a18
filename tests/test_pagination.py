"""A page and its count read by one statement (`geomarket.api.pagination.queryset_page`),
for every kind of queryset the lists page."""

import pytest
from django.db.models import Count, Sum
from drf_spectacular.generators import SchemaGenerator

from delivery.services import courier_create
from events.services import webhook_create
from geomarket.api.pagination import PAGE_PARAMETER_MAX, PageNumberPagination, queryset_page
from merchants.models import Merchant
from orders.models import Order
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchants():
    tag = factories.category()
    made = [factories.merchant(categories=[tag]) for _ in range(5)]
    factories.merchant(is_active=False)
    return made


def test_a_page_of_models_carries_the_count_of_every_row(merchants, django_assert_num_queries):
    active = Merchant.objects.filter(is_active=True).order_by("id")
    with django_assert_num_queries(1):
        page = queryset_page(active, offset=2, limit=2)
    assert [m.pk for m in page.rows] == [m.pk for m in merchants[2:4]]
    assert (page.count, page.count_is_estimate) == (5, False)


def test_the_count_ignores_what_the_rows_show_but_keeps_their_filters(merchants):
    # A join that repeats rows is counted as the rows repeat; an annotation is not.
    by_tags = (
        Merchant.objects.filter(categories__isnull=False, is_active=True)
        .annotate(tags=Count("categories"))
        .values("id", "tags")
        .order_by("id")
    )
    page = queryset_page(by_tags, offset=0, limit=3)
    assert [row["tags"] for row in page.rows] == [1, 1, 1]
    assert page.count == 5


def test_grouped_rows_are_counted_as_groups(market):
    for quantity in (2, 3, 4):
        body = order_body(market, (market["bread"], quantity), (market["milk"], 1))
        response = market["client"].post(ORDERS, body)
        assert response.status_code == 201, response.json()
    grouped = (
        Order.objects.annotate(units=Sum("items__quantity")).order_by("-id").values("id", "units")
    )
    page = queryset_page(grouped, offset=0, limit=2)
    assert [row["units"] for row in page.rows] == [5, 4]
    assert page.count == 3


def test_past_the_end_the_count_is_read_alone(merchants):
    active = Merchant.objects.filter(is_active=True).order_by("id")
    page = queryset_page(active, offset=10, limit=2)
    assert (list(page.rows), page.count) == ([], 5)
    assert queryset_page(active.none(), offset=0, limit=2).count == 0


def test_past_the_bound_the_count_is_the_planners_estimate(merchants):
    active = Merchant.objects.filter(is_active=True).order_by("id")
    exact = queryset_page(active, offset=0, limit=2, count_bound=5)
    assert (exact.count, exact.count_is_estimate) == (5, False)
    estimated = queryset_page(active, offset=0, limit=2, count_bound=3)
    assert estimated.count_is_estimate is True
    # At least one past the bound, whatever the planner guesses.
    assert estimated.count >= 4


def test_single_values_keep_their_shape_and_carry_the_count(merchants):
    names = Merchant.objects.filter(is_active=True).order_by("id").values_list("name", flat=True)
    page = queryset_page(names, offset=3, limit=5)
    assert list(page.rows) == [m.name for m in merchants[3:]]
    assert page.count == 5


def test_the_last_page_a_client_may_ask_for_is_past_the_end_of_every_list(market, as_user):
    # Its offset passes int4: a statement that took the offset as one refused it (400).
    operator_user = factories.user(is_staff=True)
    operator = as_user(operator_user)
    courier_user = factories.user()
    courier_create(user=courier_user, name="Rider", vehicle="bike")
    response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert response.status_code == 201, response.json()
    ids = {
        "merchant_id": market["shop"].pk,
        "order_id": response.json()["id"],
        "webhook_id": webhook_create(
            created_by=operator_user,
            merchant_id=None,
            url="https://93.184.215.14/hook",
            event_types=[],
        ).pk,
    }
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paged = [
        path
        for path, operations in schema["paths"].items()
        if any(p["name"] == "page" for p in operations.get("get", {}).get("parameters", ()))
    ]
    assert "/api/v1/merchants/" in paged
    answers = {}
    for path in paged:
        client = as_user(courier_user) if path.startswith("/api/v1/couriers/me/") else operator
        response = client.get(
            path.format(**ids),
            {"page": PAGE_PARAMETER_MAX, "page_size": PageNumberPagination.max_page_size},
        )
        answers[path] = response.status_code
    assert set(answers.values()) == {404}, answers
