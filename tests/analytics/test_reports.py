"""Every report against the same numbers computed in plain Python, exact to the cent."""

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.contrib.gis.geos import Point
from rest_framework.renderers import JSONRenderer

from analytics.selectors import (
    DateRange,
    merchants_json_statement,
    merchants_report,
    revenue_json_statement,
    top_products_json_statement,
)
from analytics.services import rollups_rebuild
from geomarket.sql import fetch_value
from merchants.models import Address, Merchant
from merchants.services import merchant_update
from orders.models import Order, OrderItem
from tests import factories
from tests.analytics.history import build_history

pytestmark = pytest.mark.django_db

CENT = Decimal("0.01")
DAY0 = date(2026, 3, 1)


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def delivered_between(history, date_from, date_to, merchant_id=None):
    return [
        o
        for o in history["orders"]
        if o.status == "delivered"
        and date_from <= o.delivered_at.date() <= date_to
        and (merchant_id is None or o.merchant_id == merchant_id)
    ]


def expected_top(history, date_from, date_to, top, merchant_id=None):
    units, revenue = defaultdict(int), defaultdict(Decimal)
    for order in delivered_between(history, date_from, date_to, merchant_id):
        for product, quantity in order.chosen:
            units[(order.merchant_id, product.pk)] += quantity
            revenue[(order.merchant_id, product.pk)] += product.price * quantity
    rows = []
    for merchant_id in sorted({m for m, _ in units}):
        mine = [(units[k], k[1]) for k in units if k[0] == merchant_id]
        distinct = sorted({u for u, _ in mine}, reverse=True)
        for u, product_id in sorted(mine, key=lambda r: (-r[0], r[1])):
            rank = distinct.index(u) + 1
            if rank <= top:
                rows.append(
                    {
                        "merchant_id": merchant_id,
                        "product_id": product_id,
                        "units_sold": u,
                        "revenue": money(revenue[(merchant_id, product_id)]),
                        "rank": rank,
                    }
                )
    return rows


def expected_revenue(history, date_from, date_to, interval, merchant_id=None):
    def period_of(day):
        if interval == "day":
            return day
        if interval == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    periods, cursor = [], period_of(date_from)
    while cursor <= period_of(date_to):
        periods.append(cursor)
        cursor = (
            (cursor + timedelta(days=1 if interval == "day" else 7))
            if interval != "month"
            else (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        )
    count, total = defaultdict(int), defaultdict(Decimal)
    for order in delivered_between(history, date_from, date_to, merchant_id):
        count[period_of(order.delivered_at.date())] += 1
        total[period_of(order.delivered_at.date())] += order.total
    rows, running = [], Decimal("0")
    for index, period in enumerate(periods):
        running += total[period]
        window = [total[p] for p in periods[max(0, index - 6) : index + 1]]
        rows.append(
            {
                "period": period.isoformat(),
                "orders": count[period],
                "revenue": money(total[period]),
                "running_revenue": money(running),
                "moving_avg_7": money(sum(window, Decimal("0")) / len(window)),
            }
        )
    return rows


def failed_between(history, date_from, date_to):
    """The orders that failed in the range, dated by their failure (`failed_at`), also
    those returned since."""
    return [
        o for o in history["orders"] if o.failed_at and date_from <= o.failed_at.date() <= date_to
    ]


def _rounded(value: Decimal, places: str) -> float:
    # Exact decimals, rounded half up (away from zero), as the reports round.
    return float(value.quantize(Decimal(places), ROUND_HALF_UP))


def expected_merchants(history, date_from, date_to):
    delivered = delivered_between(history, date_from, date_to)
    grand = sum((o.total for o in delivered), Decimal("0"))
    by_merchant, failed = defaultdict(list), defaultdict(int)
    for order in delivered:
        by_merchant[order.merchant_id].append(order)
    for order in failed_between(history, date_from, date_to):
        failed[order.merchant_id] += 1
    listed = set(by_merchant) | set(failed)
    revenues = {m: sum((o.total for o in by_merchant[m]), Decimal("0")) for m in listed}
    distinct = sorted(set(revenues.values()), reverse=True)
    rows = []
    for merchant_id in sorted(revenues, key=lambda m: (-revenues[m], m)):
        orders = by_merchant[merchant_id]
        minutes = None
        if orders:
            delivery = sum((o.delivered_at - o.created_at for o in orders), timedelta(0)) / len(
                orders
            )
            seconds = Decimal(delivery.days * 86400 + delivery.seconds) + Decimal(
                delivery.microseconds
            ) / Decimal(10**6)
            minutes = _rounded(seconds / 60, "0.01")
        rows.append(
            {
                "merchant_id": merchant_id,
                "orders": len(orders),
                "revenue": money(revenues[merchant_id]),
                "revenue_share": _rounded(revenues[merchant_id] / grand, "0.000001")
                if grand
                else 0.0,
                "rank": distinct.index(revenues[merchant_id]) + 1,
                "avg_delivery_minutes": minutes,
                "failed": failed[merchant_id],
                "failure_rate": _rounded(
                    Decimal(failed[merchant_id]) / (len(orders) + failed[merchant_id]), "0.0001"
                ),
            }
        )
    return rows


@pytest.fixture(scope="module")
def history(module_db):
    """The reports only read the history: it is made once for the module."""
    return build_history()


@pytest.fixture
def operator(as_user):
    return as_user(factories.user(is_staff=True))


RANGES = [
    (date(2026, 3, 1), date(2026, 3, 31)),
    (date(2026, 3, 5), date(2026, 3, 5)),
    (date(2026, 3, 8), date(2026, 3, 14)),
    (date(2026, 2, 20), date(2026, 4, 3)),
]


@pytest.mark.parametrize(("date_from", "date_to"), RANGES)
@pytest.mark.parametrize("top", [1, 3, 5])
def test_top_products_match_python(history, operator, date_from, date_to, top):
    rows = operator.get(
        "/api/v1/analytics/top-products/", {"date_from": date_from, "date_to": date_to, "top": top}
    ).json()
    trimmed = [
        {k: r[k] for k in ("merchant_id", "product_id", "units_sold", "revenue", "rank")}
        for r in rows
    ]
    assert trimmed == expected_top(history, date_from, date_to, top)
    assert all(r["title"] and r["merchant_name"] for r in rows)


def test_top_products_ties_share_a_dense_rank(operator):
    shop = factories.merchant()
    a, b, c = (factories.product(merchant=shop, price="2.00") for _ in range(3))
    address = Address.objects.create(
        line1="x", city="B", postal_code="1", location=Point(13.4, 52.5, srid=4326)
    )
    when = datetime(2026, 5, 5, 12, tzinfo=UTC)
    for product, quantity in [(a, 3), (b, 3), (c, 1)]:
        order = Order.objects.create(
            buyer=factories.user(),
            merchant=shop,
            delivery_address=address,
            status="delivered",
            subtotal=Decimal("2.00") * quantity,
            delivery_fee=0,
            total=Decimal("2.00") * quantity,
            delivered_at=when,
        )
        OrderItem.objects.create(
            order=order,
            product=product,
            title=product.title,
            unit_price=Decimal("2.00"),
            quantity=quantity,
            line_total=Decimal("2.00") * quantity,
        )
    rollups_rebuild()
    rows = operator.get(
        "/api/v1/analytics/top-products/",
        {"date_from": "2026-05-05", "date_to": "2026-05-05", "top": 2},
    ).json()
    assert [(r["product_id"], r["units_sold"], r["rank"]) for r in rows] == [
        (a.pk, 3, 1),
        (b.pk, 3, 1),
        (c.pk, 1, 2),
    ]
    only_first = operator.get(
        "/api/v1/analytics/top-products/",
        {"date_from": "2026-05-05", "date_to": "2026-05-05", "top": 1},
    )
    assert [r["product_id"] for r in only_first.json()] == [a.pk, b.pk]


@pytest.mark.parametrize(("date_from", "date_to"), RANGES)
@pytest.mark.parametrize("interval", ["day", "week", "month"])
def test_revenue_matches_python_with_empty_periods(history, operator, date_from, date_to, interval):
    rows = operator.get(
        "/api/v1/analytics/revenue/",
        {"date_from": date_from, "date_to": date_to, "interval": interval},
    ).json()
    assert rows == expected_revenue(history, date_from, date_to, interval)


def test_revenue_for_one_merchant(history, operator):
    shop = history["shops"][2]
    rows = operator.get(
        "/api/v1/analytics/revenue/",
        {"date_from": "2026-03-01", "date_to": "2026-03-31", "merchant_id": shop.pk},
    ).json()
    assert rows == expected_revenue(history, date(2026, 3, 1), date(2026, 3, 31), "day", shop.pk)
    gap = [r for r in rows if r["period"] in ("2026-03-10", "2026-03-11", "2026-03-12")]
    assert [r["orders"] for r in gap] == [0, 0, 0]


def test_top_products_for_one_merchant(history, operator):
    shop = history["shops"][1]
    rows = operator.get(
        "/api/v1/analytics/top-products/",
        {"date_from": "2026-03-01", "date_to": "2026-03-31", "merchant_id": shop.pk},
    ).json()
    trimmed = [
        {k: r[k] for k in ("merchant_id", "product_id", "units_sold", "revenue", "rank")}
        for r in rows
    ]
    assert trimmed == expected_top(history, date(2026, 3, 1), date(2026, 3, 31), 5, shop.pk)


def test_report_rows_carry_their_merchant_and_product_names(history, operator):
    names = {shop.pk: shop.name for shop in history["shops"]}
    titles = {item.product_id: item.product.title for item in history["items"]}
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    top = operator.get("/api/v1/analytics/top-products/", params).json()
    merchants = operator.get("/api/v1/analytics/merchants/", params).json()
    assert top
    assert merchants
    assert all(r["merchant_name"] == names[r["merchant_id"]] for r in top)
    assert all(r["title"] == titles[r["product_id"]] for r in top)
    assert all(r["name"] == names[r["merchant_id"]] for r in merchants)


@pytest.mark.parametrize(("date_from", "date_to"), RANGES)
def test_merchants_match_python(history, operator, date_from, date_to):
    rows = operator.get(
        "/api/v1/analytics/merchants/", {"date_from": date_from, "date_to": date_to}
    ).json()
    for row in rows:
        assert row.pop("name").startswith("Shop ")
    assert rows == expected_merchants(history, date_from, date_to)


def test_range_boundaries_are_inclusive_utc_dates(history, operator):
    order = next(o for o in history["orders"] if o.status == "delivered")
    edge = datetime.combine(order.delivered_at.date(), datetime.max.time(), tzinfo=UTC)
    Order.objects.filter(pk=order.pk).update(delivered_at=edge)
    rollups_rebuild()
    day = edge.date().isoformat()
    rows = operator.get("/api/v1/analytics/merchants/", {"date_from": day, "date_to": day}).json()
    assert order.merchant_id in [r["merchant_id"] for r in rows]
    next_day = (edge.date() + timedelta(days=1)).isoformat()
    after = operator.get(
        "/api/v1/analytics/revenue/", {"date_from": next_day, "date_to": next_day}
    ).json()
    assert after[0]["period"] == next_day


def test_combined_report_holds_all_three(history, operator):
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    combined = operator.get("/api/v1/orders/analytics/", params).json()
    assert (
        combined["top_products"] == operator.get("/api/v1/analytics/top-products/", params).json()
    )
    assert combined["revenue"] == operator.get("/api/v1/analytics/revenue/", params).json()
    assert combined["merchants"] == operator.get("/api/v1/analytics/merchants/", params).json()


@pytest.mark.parametrize("path", ["top-products", "revenue", "merchants"])
def test_csv_has_the_same_rows(history, operator, path):
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    rows = operator.get(f"/api/v1/analytics/{path}/", params).json()
    response = operator.get(f"/api/v1/analytics/{path}/", {**params, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert parsed == [{k: str(v) for k, v in row.items()} for row in rows]
    assert response.content.decode().splitlines()[0] == ",".join(rows[0])


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v1/analytics/top-products/", "top-products"),
        ("/api/v1/analytics/revenue/", "revenue"),
        ("/api/v1/analytics/merchants/", "merchants"),
        ("/api/v1/orders/analytics/", "analytics"),
    ],
)
def test_csv_is_an_attachment_named_for_the_report_and_its_dates(operator, url, name):
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    response = operator.get(url, {**params, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="{name}_2026-03-01_2026-03-31.csv"'
    )
    assert "Content-Disposition" not in operator.get(url, params)


def test_an_empty_reports_csv_is_its_header_line_alone(operator):
    response = operator.get(
        "/api/v1/analytics/merchants/",
        {"date_from": "2020-01-01", "date_to": "2020-01-31", "format": "csv"},
    )
    assert response.content.decode() == (
        "merchant_id,name,orders,revenue,revenue_share,rank,avg_delivery_minutes,failed,"
        "failure_rate\r\n"
    )


def test_revenue_periods_from_mid_week_and_mid_month_by_hand(operator):
    """Worked out by hand: 2037-03-04 is a Wednesday, 2037-03-30 a Monday (a year the
    module's history of March 2026 is not in)."""
    shop = factories.merchant()
    address = Address.objects.create(
        line1="x", city="B", postal_code="1", location=Point(13.4, 52.5, srid=4326)
    )
    for moment, total in [
        (datetime(2037, 3, 3, 23, 59, tzinfo=UTC), "99.00"),  # the day before the range
        (datetime(2037, 3, 4, 10, tzinfo=UTC), "10.00"),
        (datetime(2037, 3, 9, tzinfo=UTC), "20.00"),
        (datetime(2037, 3, 31, 23, 59, 59, 999999, tzinfo=UTC), "5.00"),
        (datetime(2037, 4, 1, tzinfo=UTC), "30.00"),
        (datetime(2037, 4, 2, tzinfo=UTC), "1.00"),  # the day after
    ]:
        Order.objects.create(
            buyer=factories.user(),
            merchant=shop,
            delivery_address=address,
            status="delivered",
            subtotal=Decimal(total),
            delivery_fee=0,
            total=Decimal(total),
            delivered_at=moment,
        )
    rollups_rebuild()

    def report(interval):
        rows = operator.get(
            "/api/v1/analytics/revenue/",
            {"date_from": "2037-03-04", "date_to": "2037-04-01", "interval": interval},
        ).json()
        return [tuple(row.values()) for row in rows]

    assert report("week") == [
        ("2037-03-02", 1, "10.00", "10.00", "10.00"),
        ("2037-03-09", 1, "20.00", "30.00", "15.00"),
        ("2037-03-16", 0, "0.00", "30.00", "10.00"),
        ("2037-03-23", 0, "0.00", "30.00", "7.50"),
        ("2037-03-30", 2, "35.00", "65.00", "13.00"),
    ]
    assert report("month") == [
        ("2037-03-01", 3, "35.00", "35.00", "35.00"),
        ("2037-04-01", 1, "30.00", "65.00", "32.50"),
    ]
    days = report("day")
    assert len(days) == 29
    assert days[0] == ("2037-03-04", 1, "10.00", "10.00", "10.00")
    # Six days of the range so far: 30.00 / 6.
    assert days[5] == ("2037-03-09", 1, "20.00", "30.00", "5.00")
    # 03-26 to 04-01: 35.00 / 7.
    assert days[-1] == ("2037-04-01", 1, "30.00", "65.00", "5.00")


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x","y")', "+cmd", "-1+2", "@SUM(A1)", "\tx", "\rx"]
)
def test_csv_writes_a_text_a_spreadsheet_would_run_as_a_formula_behind_a_quote(
    history, operator, name
):
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    first = operator.get("/api/v1/analytics/merchants/", params).json()[0]
    merchant_update(merchant=Merchant.objects.get(pk=first["merchant_id"]), data={"name": name})
    rows = operator.get("/api/v1/analytics/merchants/", params).json()
    response = operator.get("/api/v1/analytics/merchants/", {**params, "format": "csv"})
    parsed = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    # JSON carries the name as it is.
    assert [r["name"] for r in rows if r["merchant_id"] == first["merchant_id"]] == [name]
    for row, cells in zip(rows, parsed, strict=True):
        # Only that name moves: money, shares and ids stay numbers, as in JSON.
        expected = {key: str(value) for key, value in row.items()}
        if row["merchant_id"] == first["merchant_id"]:
            expected["name"] = "'" + name
        assert cells == expected


REPORT_URLS = [
    "/api/v1/analytics/top-products/",
    "/api/v1/analytics/revenue/",
    "/api/v1/analytics/merchants/",
    "/api/v1/orders/analytics/",
]


@pytest.mark.parametrize(
    ("url", "one_merchant", "reports"),
    [
        ("/api/v1/analytics/top-products/", False, 1),
        ("/api/v1/analytics/top-products/", True, 1),
        ("/api/v1/analytics/revenue/", False, 1),
        ("/api/v1/analytics/revenue/", True, 1),
        ("/api/v1/analytics/merchants/", False, 1),
        # The three in one statement: one snapshot (`combined_json_statement`).
        ("/api/v1/orders/analytics/", False, 1),
    ],
)
def test_each_report_is_one_query(
    history, operator, url, one_merchant, reports, django_assert_num_queries
):
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    if one_merchant:
        params["merchant_id"] = history["orders"][0].merchant_id
    with django_assert_num_queries(1 + reports):  # the token, then one per report
        response = operator.get(url, params)
    assert response.status_code == 200
    assert response.json()


@pytest.mark.parametrize("url", REPORT_URLS)
def test_only_operators_see_reports(as_user, url):
    assert as_user(None).get(url).status_code == 401
    assert as_user(factories.user()).get(url).status_code == 403
    assert as_user(factories.merchant().owner).get(url).status_code == 403


@pytest.mark.parametrize("url", REPORT_URLS)
def test_a_head_answers_the_headers_of_its_get(operator, url):
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    for asked in (params, {**params, "format": "csv"}):
        get, head = operator.get(url, asked), operator.head(url, asked)
        assert head.status_code == get.status_code == 200
        assert head["Content-Type"] == get["Content-Type"]
        assert head.get("Content-Disposition") == get.get("Content-Disposition")
    # Its errors stay JSON, as a GET's do.
    refused = operator.head(url, {"format": "csv", "date_to": "never"})
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/json"


def test_the_schema_says_what_range_a_report_covers_by_default(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for url in REPORT_URLS:
        described = {
            p["name"]: p.get("description", "") for p in schema["paths"][url]["get"]["parameters"]
        }
        assert "by default the 30 days up to `date_to`" in described["date_from"]
        assert "by default today (UTC)" in described["date_to"]


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2026-13-01"},
        {"date_to": "yesterday"},
        {"date_from": "2026-3-1", "date_to": "2026-03-05"},
        {"date_from": "20260301", "date_to": "2026-03-05"},
        {"date_from": "2026-W10-3", "date_to": "2026-03-05"},
        {"date_to": "2026-03-05T00:00:00Z"},
        {"date_from": "2026-03-10", "date_to": "2026-03-01"},
        {"interval": "hour"},
        {"date_from": "1900-01-01", "date_to": "2026-01-01"},
        {"date_to": "0001-01-05"},
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},
    ],
)
def test_bad_report_parameters_are_400(operator, params):
    response = operator.get("/api/v1/analytics/revenue/", params)
    assert response.status_code == 400
    assert response.json()


@pytest.mark.parametrize("url", REPORT_URLS)
def test_dates_past_the_calendars_ends_are_400_not_500(operator, url):
    # A default 30 days before 0001-01-05, or the day after 9999-12-31, has no date.
    for params in ({"date_to": "0001-01-05"}, {"date_from": "9999-12-31", "date_to": "9999-12-31"}):
        response = operator.get(url, params)
        assert response.status_code == 400
        assert set(response.json()) <= {"date_from", "date_to"}


def test_a_date_from_after_today_names_the_default_it_comes_after(operator):
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    response = operator.get("/api/v1/analytics/revenue/", {"date_from": tomorrow})
    assert response.status_code == 400
    assert response.json() == {"date_from": ["Must not be after today (UTC), the default date_to."]}
    given = operator.get(
        "/api/v1/analytics/revenue/", {"date_from": tomorrow, "date_to": "2026-01-01"}
    )
    assert given.json() == {"date_from": ["Must not be after date_to."]}


def test_csv_request_with_bad_parameters_gets_json_errors(operator):
    response = operator.get(
        "/api/v1/analytics/revenue/", {"format": "csv", "top": "x", "date_to": "never"}
    )
    assert response.status_code == 400
    assert response.json() == {"date_to": [response.json()["date_to"][0]]}


def test_the_reports_answers_are_postgresqls_text_as_sent(history, operator):
    # Sent as PostgreSQL's UTF-8 bytes, never decoded: a name beyond ASCII stays the same.
    Merchant.objects.filter(pk=history["shops"][1].pk).update(name="Caf\u00e9 \u2028 \U0001f600")
    dates = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    march = DateRange(date(2026, 3, 1), date(2026, 3, 31))
    texts = {
        name: fetch_value(statement.sql, statement.params)
        for name, statement in (
            ("top_products", top_products_json_statement(range_=march)),
            ("revenue", revenue_json_statement(range_=march)),
            ("merchants", merchants_json_statement(range_=march)),
        )
    }
    assert "Caf\u00e9 \\u2028 \U0001f600" in texts["merchants"]
    answer = operator.get("/api/v1/analytics/merchants/", dates)
    assert answer["Content-Type"] == "application/json"
    assert answer.content == texts["merchants"].encode()
    # The same numbers as the rows DRF renders (a ratio's text keeps its trailing zeros).
    assert json.loads(answer.content) == json.loads(
        JSONRenderer().render(merchants_report(range_=march))
    )
    combined = operator.get("/api/v1/orders/analytics/", dates).content
    parts = ",".join(f'"{name}":{text}' for name, text in texts.items())
    assert combined == f"{{{parts}}}".encode()
