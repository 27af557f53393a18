"""Test data built through the real services, so tests exercise the same write paths."""

import itertools
from datetime import datetime, time
from decimal import Decimal

from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from catalog.models import Product, ProductCategory
from catalog.services import category_create, product_create
from geomarket.accounts.services import user_register
from inventory.models import Inventory
from inventory.services import inventory_create
from merchants.models import DeliveryZone, Merchant
from merchants.services import (
    closure_create,
    delivery_zone_create,
    merchant_create,
    merchant_hours_replace,
)

_sequence = itertools.count(1)

BERLIN = (52.52, 13.405)


def new_username() -> str:
    """A username no other made in this process has: every test's users draw from here."""
    return f"user{next(_sequence)}"


def user(*, username: str | None = None, is_staff: bool = False):
    account, _token = user_register(
        username=username or new_username(), password="pw-Secret-123", email=""
    )
    if is_staff:
        account.is_staff = True
        account.save(update_fields=["is_staff"])
    return account


def category(*, name: str | None = None) -> ProductCategory:
    number = next(_sequence)
    name = name or f"Category {number}"
    return category_create(name=name, slug=f"category-{number}")


def square(*, lat: float, lng: float, half_side_deg: float = 0.02) -> MultiPolygon:
    d = half_side_deg
    ring = [
        (lng - d, lat - d),
        (lng + d, lat - d),
        (lng + d, lat + d),
        (lng - d, lat + d),
        (lng - d, lat - d),
    ]
    return MultiPolygon(Polygon(ring), srid=4326)


def merchant(
    *,
    owner=None,
    name: str | None = None,
    lat: float = BERLIN[0],
    lng: float = BERLIN[1],
    categories=(),
    is_active: bool = True,
) -> Merchant:
    return merchant_create(
        owner=owner or user(),
        name=name or f"Merchant {next(_sequence)}",
        address={
            "line1": "Alexanderplatz 1",
            "city": "Berlin",
            "postal_code": "10178",
            "country": "DE",
            "location": Point(lng, lat, srid=4326),
        },
        categories=categories,
        is_active=is_active,
    )


def zone(
    *,
    merchant: Merchant,
    fee: str = "2.50",
    min_order: str = "10.00",
    area: MultiPolygon | None = None,
    is_active: bool = True,
) -> DeliveryZone:
    location = merchant.location
    return delivery_zone_create(
        merchant=merchant,
        name=f"Zone {next(_sequence)}",
        area=area or square(lat=location.y, lng=location.x),
        delivery_fee=Decimal(fee),
        min_order_amount=Decimal(min_order),
        is_active=is_active,
    )


def product(
    *,
    merchant: Merchant,
    category: ProductCategory | None = None,
    title: str | None = None,
    price: str = "9.99",
    is_published: bool = True,
    description: str = "",
) -> Product:
    return product_create(
        merchant=merchant,
        category=category or globals()["category"](),
        title=title or f"Product {next(_sequence)}",
        description=description,
        price=Decimal(price),
        is_published=is_published,
    )


def stock(*, product: Product, quantity: int = 10, low_stock_threshold: int = 5) -> Inventory:
    return inventory_create(
        product=product, quantity=quantity, low_stock_threshold=low_stock_threshold
    )


def delivery_address(*, near: Merchant) -> dict:
    """A delivery address about 70 m east of `near`, inside its `zone()`."""
    return {
        "line1": "x",
        "city": "B",
        "postal_code": "1",
        "location": Point(near.location.x + 0.001, near.location.y, srid=4326),
    }


def hours(merchant: Merchant, *intervals: tuple[int, str, str], timezone: str = "Europe/Berlin"):
    """Weekly hours from `(weekday, "HH:MM", "HH:MM")` triples, through the service."""
    merchant_hours_replace(
        merchant=merchant,
        timezone=timezone,
        weekly=[
            {
                "weekday": day,
                "opens": time.fromisoformat(opens),
                "closes": time.fromisoformat(closes),
            }
            for day, opens, closes in intervals
        ],
    )


def closure(merchant: Merchant, starts_at: str, ends_at: str, reason: str = ""):
    return closure_create(
        merchant=merchant,
        starts_at=datetime.fromisoformat(starts_at),
        ends_at=datetime.fromisoformat(ends_at),
        reason=reason,
    )
