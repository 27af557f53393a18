"""The hot geo queries use their GiST indexes on tables of thousands of merchants."""

import re
from datetime import UTC, datetime

import pytest
from django.db import connection

from catalog.selectors import products_nearby_statement
from merchants.selectors import DELIVERING_TO_PLAN, merchants_nearby_sql

pytestmark = pytest.mark.django_db

POINT = "SRID=4326;POINT(13.405 52.52)"
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)

BIG_CITY_SQL = [
    """
INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name,
                                       email, is_staff, is_active, date_joined)
            SELECT '!', false, 'plan' || n, '', '', '', false, true, now()
            FROM generate_series(1, 5000) n
    """,
    """
INSERT INTO merchants_address (line1, line2, city, postal_code, country, location)
            SELECT 'Street ' || n, '', 'Berlin', '10115', 'DE',
                   ST_SetSRID(ST_MakePoint(13.405 + 0.6 * (random() - 0.5),
                                           52.52 + 0.4 * (random() - 0.5)), 4326)::geography
            FROM generate_series(1, 5000) n
    """,
    """
INSERT INTO merchants_merchant (owner_id, name, description, phone, address_id,
                                            location, is_active, created_at, updated_at)
            SELECT u.id, 'Shop ' || u.id, '', '', a.id, a.location, true, now(), now()
            FROM (SELECT id, row_number() OVER (ORDER BY id) r FROM accounts_user
                  WHERE username LIKE 'plan%%') u
            JOIN (SELECT id, location, row_number() OVER (ORDER BY id) r
                  FROM merchants_address) a USING (r)
    """,
    """
INSERT INTO merchants_deliveryzone (merchant_id, name, area, delivery_fee,
                                                min_order_amount, is_active)
            SELECT id, 'zone', ST_Multi(ST_Buffer(location, 2000, 2)::geometry)::geography,
                   2.00, 10.00, true
            FROM merchants_merchant
    """,
    """
INSERT INTO catalog_productcategory (name, slug) VALUES ('Plan', 'plan')
    """,
    """
INSERT INTO catalog_product (merchant_id, category_id, title, description, price,
                                         is_published, created_at, updated_at)
            SELECT m.id, c.id, 'Item', '', 1.00, true, now(), now()
            FROM merchants_merchant m, catalog_productcategory c WHERE c.slug = 'plan'
    """,
    """
INSERT INTO inventory_inventory (merchant_id, product_id, quantity,
                                             low_stock_threshold, updated_at)
            SELECT merchant_id, id, 5, 1, now() FROM catalog_product
    """,
    """
ANALYZE accounts_user, merchants_address, merchants_merchant,
                    merchants_deliveryzone, catalog_product, inventory_inventory
    """,
]


@pytest.fixture(scope="module")
def big_city(module_db):
    """5,000 merchants with a product and a zone each, generated inside PostgreSQL once
    for the module (about five seconds, mostly cutting the zones into their parts).

    The plans are the same from a few hundred merchants up to the bench city's 20,000,
    and each test fails alike at 5,000 and at 20,000 when its query's index use is taken
    away; 5,000 keep the plans well clear of where they would change, and put about thirty
    zones over POINT for the walk of the last test, in a quarter of 20,000's time."""
    with connection.cursor() as cursor:
        # Statistics left by earlier tests can make the planner join the two numberings
        # below with a nested loop (minutes); a hash join takes milliseconds.
        cursor.execute("SET LOCAL enable_nestloop = off")
        for statement in BIG_CITY_SQL:
            cursor.execute(statement)
        cursor.execute("RESET enable_nestloop")


def plan(sql: str, params: dict) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def answer_plan(params: dict, options: str = "") -> list:
    """The plan of delivering-to's statement as its function runs it (a generic plan,
    `DELIVERING_TO_PLAN.explain_rows`)."""
    with connection.cursor() as cursor:
        rows = DELIVERING_TO_PLAN.explain_rows(
            cursor, {"open_at": None, "prep_time_default_s": 600, **params}, options=options
        )
    return [row[0] for row in rows]


# The index gives the merchants nearest first (`Order By` on the index scan): an index
# scan for the radius alone, with the distances sorted after, is no walk.
LOCATION_WALK = (
    r"Index Scan using merchants_merchant_location_\w+ on merchants_merchant mm[^\n]*\n"
    r"\s+Index Cond: [^\n]*\n\s+Order By: \(location <->"
)


def test_products_nearby_walks_the_merchant_location_index(big_city):
    lng, lat = (float(part) for part in POINT.split("(")[1].rstrip(")").split())
    text = plan(*products_nearby_statement(lat=lat, lng=lng, radius=5000, limit=20))
    assert re.search(LOCATION_WALK, text), text


def test_merchants_nearby_walks_the_location_index(big_city):
    text = plan(
        merchants_nearby_sql(open_at=False),
        {"point": POINT, "radius": 5000, "limit": 20, "now": NOW},
    )
    assert re.search(LOCATION_WALK, text), text


def test_delivering_to_uses_the_zone_area_index(big_city):
    text = "\n".join(answer_plan({"point": POINT, "limit": 100, "now": NOW}))
    assert re.search(
        r"Index Scan using merchants_deliveryzonecell_nearest on merchants_deliveryzonecell"
        r"[^\n]*\n\s+Index Cond: \(cell @> \$\d+\)",
        text,
    ), text


def test_delivering_to_walks_nearest_first_and_stops(big_city):
    """The covering zone cells come nearest merchant first from one index walk, which the
    `limit` stops, instead of every covering zone of the city being ranked."""
    text = "\n".join(answer_plan({"point": POINT, "limit": 100, "now": NOW}))
    assert re.search(
        r"Index Scan using merchants_deliveryzonecell_nearest on merchants_deliveryzonecell"
        r"[^\n]*\n(?:[^\n]*\n)*?\s+Order By: \(merchant_unit <<->>",
        text,
    ), text
    assert "Run Condition: (dense_rank() OVER" in text, text


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def test_delivering_to_computes_open_state_for_answered_merchants_only(big_city):
    """The walk reads more zone cells than it answers merchants; each merchant's open
    period is computed once for each merchant answered, after the walk, never for the
    cells it passes. The node computing it outputs `merchants_open_bounds` inlined, whose fallback
    for periods not kept names `merchants_period_bounds`."""
    limit = 5
    (answer,) = answer_plan(
        {"point": POINT, "limit": limit, "now": NOW}, "(ANALYZE, VERBOSE, FORMAT JSON)"
    )
    top = answer[0]["Plan"]
    nodes = list(plan_nodes(top))
    walked = [
        node for node in nodes if node.get("Index Name") == "merchants_deliveryzonecell_nearest"
    ]
    opened = [
        node
        for node in nodes
        if any("merchants_period_bounds(" in output for output in node.get("Output", []))
    ]
    # One answer, rendered from the `limit` merchants' rows.
    assert (top["Actual Rows"], top["Plans"][0]["Actual Rows"]) == (1, limit)
    assert walked[0]["Actual Rows"] > limit
    # The nodes above show it too (EXPLAIN spells out what they read from below).
    assert max(node["Actual Loops"] for node in opened) == limit
