"""Where the bench's and the soak's orders go: a merchant, a delivery point inside its
cheapest covering active zone, and the products it can sell there."""

from dataclasses import dataclass
from decimal import Decimal

# The merchant `m` is open now and an hour on: an order without a slot needs its merchant
# open (merchants_open_at, migration merchants/0009), and a run lasts minutes.
OPEN_FOR_A_RUN = (
    "merchants_open_at(m.id, m.timezone, now())"
    " AND merchants_open_at(m.id, m.timezone, now() + interval '1 hour')"
)

# A point up to 1,500 m from the merchant `m`, in a random direction.
POINT_NEAR_MERCHANT = "ST_Project(m.location, random() * 1500, radians(random() * 360))"


@dataclass(frozen=True)
class Item:
    product_id: int
    inventory_id: int
    title: str
    price: Decimal


@dataclass(frozen=True)
class Spot:
    merchant_id: int
    lat: float
    lng: float
    fee: Decimal
    min_order: Decimal
    items: tuple[Item, ...]


def spots_sql(points: str, *, one_per_merchant: bool = False) -> str:
    """The spots among `points`, a query of (merchant_id, point) rows: each point inside an
    active zone of its merchant, with the cheapest such zone's fee and minimum order; with
    `one_per_merchant`, only the first such point of each merchant. Rows fit `Spot`."""
    distinct = "DISTINCT ON (p.merchant_id)" if one_per_merchant else ""
    order = "ORDER BY p.merchant_id" if one_per_merchant else ""
    return f"""
WITH p AS ({points})
SELECT {distinct} p.merchant_id, ST_Y(p.point::geometry), ST_X(p.point::geometry),
       z.delivery_fee, z.min_order_amount
FROM p
CROSS JOIN LATERAL (
    SELECT delivery_fee, min_order_amount FROM merchants_deliveryzone z
    WHERE z.merchant_id = p.merchant_id AND z.is_active AND ST_Covers(z.area, p.point)
    ORDER BY z.delivery_fee, z.id LIMIT 1
) z
{order}
"""
