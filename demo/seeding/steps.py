"""The seed, step by step. `SEED_STEPS` runs in order inside one transaction.

A step takes the shared `SeedContext`, writes its tables in bulk (COPY, or one
`bulk_create` for a handful of rows), and leaves what later steps need on the
context. To seed something new, write a step and append it, as the orders and then the
couriers were; each step draws from its own random generator, so the steps before it
keep their rows.
"""

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.models import Model
from rest_framework.authtoken.models import Token

from catalog.models import Product, ProductCategory
from delivery.models import Courier
from demo.seeding import content
from demo.seeding.context import (
    DEMO_CUSTOMER,
    DEMO_OPERATOR,
    DEMO_OWNER,
    DEMO_PASSWORD,
    DemoAccount,
    MerchantPlan,
    SeedContext,
    SeedRefused,
    copy_rows,
    ids_reserve,
)
from demo.seeding.couriers import couriers_seed
from demo.seeding.hours import hours_seed
from demo.seeding.orders import orders_seed
from demo.seeding.shapes import (
    irregular_ring,
    multipolygon_ewkt,
    point_ewkt,
    round_ring,
    scattered_point,
)
from demo.seeding.users import user_row, users_copy
from geomarket.accounts.models import User
from inventory.models import Inventory
from merchants.models import Address, Closure, DeliveryZone, Merchant, OpeningInterval, SlotPlan
from orders.models import Order, OrderItem, OrderStatusChange

# Progress is redrawn once per this many rows in steps that advance row by row.
_TICK = 1000


@dataclass(frozen=True)
class SeedStep:
    name: str
    run: Callable[[SeedContext], None]
    # Every table the step writes: locked before the first step, analysed after the last.
    models: tuple[type[Model], ...]


def categories_seed(ctx: SeedContext) -> None:
    """The fixed category list; categories that already exist (same slug) are reused."""
    ctx.progress.start(label="categories", total=len(content.CATEGORIES))
    ProductCategory.objects.bulk_create(
        [ProductCategory(name=c.name, slug=c.slug) for c in content.CATEGORIES],
        ignore_conflicts=True,
    )
    ctx.category_ids = dict(
        ProductCategory.objects.filter(slug__in=[c.slug for c in content.CATEGORIES]).values_list(
            "slug", "id"
        )
    )
    ctx.counts["categories"] = len(ctx.category_ids)
    ctx.progress.finish()


def _owner_username(index: int) -> str:
    return f"owner-{index:05d}"


def users_seed(ctx: SeedContext) -> None:
    """The three demo accounts, one owner per further merchant, and the demo tokens.

    The demo owner owns the first merchant. Bulk owners get an unusable password ("!"),
    as `set_unusable_password` would, and no token: nobody logs in as them.
    """
    rng = ctx.rng("users")
    merchants = ctx.options.merchants
    bulk_usernames = [_owner_username(index) for index in range(2, merchants + 1)]
    demo_roles = (("customer", DEMO_CUSTOMER), ("owner", DEMO_OWNER), ("operator", DEMO_OPERATOR))

    # One array parameter: a million names would overflow a list of placeholders.
    ctx.cursor.execute(
        f"SELECT username FROM {connection.ops.quote_name(User._meta.db_table)} "  # noqa: S608
        "WHERE username = ANY(%s) ORDER BY username LIMIT 3",
        [[username for _, username in demo_roles] + bulk_usernames],
    )
    taken = [username for (username,) in ctx.cursor.fetchall()]
    if taken:
        raise SeedRefused(
            f"Users named like the seed's already exist ({', '.join(taken)}, ...); "
            "seed an empty database."
        )

    total = len(demo_roles) + len(bulk_usernames)
    ctx.progress.start(label="users", total=total)
    first_id = ids_reserve(ctx=ctx, model=User, count=total)
    ctx.demo_accounts = [
        DemoAccount(role=role, username=username, password=DEMO_PASSWORD, user_id=first_id + i)
        for i, (role, username) in enumerate(demo_roles)
    ]
    demo_owner_id = next(a.user_id for a in ctx.demo_accounts if a.role == "owner")
    bulk_first_id = first_id + len(demo_roles)
    ctx.owner_ids = [demo_owner_id] + [bulk_first_id + i for i in range(len(bulk_usernames))]

    def rows() -> Iterator[tuple]:
        for account in ctx.demo_accounts:
            yield user_row(
                user_id=account.user_id,
                username=account.username,
                first_name="Demo",
                last_name=account.role.capitalize(),
                joined_at=ctx.base_time - timedelta(days=1000),
                password=make_password(account.password),
                operator=account.role == "operator",
            )
        for i, username in enumerate(bulk_usernames):
            if i % _TICK == 0:
                ctx.progress.advance(min(_TICK, len(bulk_usernames) - i))
            yield user_row(
                user_id=bulk_first_id + i,
                username=username,
                first_name=rng.choice(content.FIRST_NAMES),
                last_name=rng.choice(content.LAST_NAMES),
                # Before any merchant was opened (30-900 days back).
                joined_at=ctx.base_time
                - timedelta(seconds=rng.randint(900 * 86_400, 1000 * 86_400)),
            )

    users_copy(ctx=ctx, count_as="users", rows=rows())
    tokens = Token.objects.bulk_create(
        [Token(key=Token.generate_key(), user_id=a.user_id) for a in ctx.demo_accounts]
    )
    for account, token in zip(ctx.demo_accounts, tokens, strict=True):
        account.token = token.key
    ctx.counts["API tokens"] = len(tokens)
    ctx.progress.finish()


def _merchant_name(
    *, rng: random.Random, kind: content.MerchantKind, district: str, used: set[str]
) -> str:
    noun = rng.choice(kind.nouns)
    pattern = rng.randrange(6)
    if pattern == 0:
        name = f"{rng.choice(content.LAST_NAMES)}'s {noun}"
    elif pattern == 1:
        name = f"{district} {noun}"
    elif pattern == 2:
        name = f"The {rng.choice(content.NAME_ADJECTIVES)} {noun}"
    elif pattern == 3:
        name = f"{noun} {rng.choice(content.LAST_NAMES)}"
    elif pattern == 4:
        name = f"{rng.choice(content.FIRST_NAMES)}'s {noun}"
    else:
        name = f"{rng.choice(content.NAME_ADJECTIVES)} {noun}"
    # Chains have branches: a repeated name gets its district, then a number.
    if name in used:
        name = f"{name} {district}"
    candidate, branch = name, 2
    while candidate in used:
        candidate = f"{name} {branch}"
        branch += 1
    used.add(candidate)
    return candidate


def merchants_seed(ctx: SeedContext) -> None:
    """Merchants and their addresses, spread over the area and densest in the centre.

    The address point is the merchant's location; the database trigger copies it into
    merchant.location as well (merchants migration 0002), and the same point is written
    here so that the row is right with or without the trigger.
    """
    rng = ctx.rng("merchants")
    options = ctx.options
    total = options.merchants
    ctx.progress.start(label="merchants", total=total)
    kinds = [kind for kind, _ in content.MERCHANT_KINDS]
    kind_weights = [weight for _, weight in content.MERCHANT_KINDS]
    address_first = ids_reserve(ctx=ctx, model=Address, count=total)
    merchant_first = ids_reserve(ctx=ctx, model=Merchant, count=total)

    addresses: list[Sequence[Any]] = []
    merchants: list[Sequence[Any]] = []
    used_names: set[str] = set()
    for index in range(total):
        kind = rng.choices(kinds, weights=kind_weights)[0]
        lat, lng = scattered_point(
            rng=rng, lat=options.center_lat, lng=options.center_lng, radius_m=options.radius_m
        )
        # Rounded as stored (7 decimals, about 1 cm), so zones are built around the
        # very point the database holds.
        lat, lng = round(lat, 7), round(lng, 7)
        district = rng.choice(content.DISTRICTS)
        created_at = ctx.base_time - timedelta(seconds=rng.randint(30 * 86_400, 900 * 86_400))
        plan = MerchantPlan(
            id=merchant_first + index,
            kind=kind.key,
            lat=lat,
            lng=lng,
            is_active=index == 0 or rng.random() >= 0.03,
            created_at=created_at,
        )
        ctx.merchants.append(plan)
        location = point_ewkt(lat=lat, lng=lng)
        addresses.append(
            (
                address_first + index,
                f"{rng.choice(content.STREETS)} {rng.randint(1, 180)}",
                "Courtyard, ground floor" if rng.random() < 0.1 else "",
                "Berlin",
                str(rng.randint(10115, 14199)),
                "Germany",
                location,
            )
        )
        merchants.append(
            (
                plan.id,
                _merchant_name(rng=rng, kind=kind, district=district, used=used_names),
                kind.description.format(district=district),
                f"+49 30 {rng.randint(2_000_000, 99_999_999)}",
                location,
                plan.is_active,
                created_at,
                created_at + timedelta(seconds=rng.randint(0, 25 * 86_400)),
                address_first + index,
                ctx.owner_ids[index],
            )
        )
        if index % _TICK == 0:
            ctx.progress.advance(min(_TICK, total - index))

    copy_rows(
        ctx=ctx,
        model=Address,
        count_as="addresses",
        columns=("id", "line1", "line2", "city", "postal_code", "country", "location"),
        rows=addresses,
    )
    copy_rows(
        ctx=ctx,
        model=Merchant,
        count_as="merchants",
        columns=(
            "id",
            "name",
            "description",
            "phone",
            "location",
            "is_active",
            "created_at",
            "updated_at",
            "address_id",
            "owner_id",
        ),
        rows=merchants,
    )
    ctx.progress.finish()


_NEAR_FEES = ("0.00", "0.99", "1.49", "1.99")
_NEAR_MINIMUMS = ("10.00", "12.00", "15.00")
_FAR_FEES = ("2.99", "3.49", "3.99", "4.99", "5.99")
_FAR_MINIMUMS = ("20.00", "25.00", "30.00", "40.00")
_SINGLE_FEES = ("1.49", "1.99", "2.49", "2.99", "3.49")
_SINGLE_MINIMUMS = ("10.00", "12.00", "15.00", "20.00")


def zones_seed(ctx: SeedContext) -> None:
    """One or two delivery zones per merchant, each a valid polygon around it.

    Most merchants deliver within one zone of 1.5-6 km; nearly half have a cheap near
    zone and a dearer far one with a higher minimum order, as real shops price the
    ride. Shapes alternate between wobbly circles and irregular polygons. The widest
    reaches 6 km x 1.25 = 7.5 km, far below the 5,000 km² a zone may cover.
    """
    rng = ctx.rng("zones")
    ctx.progress.start(label="delivery zones", total=len(ctx.merchants))

    def shape(*, lat: float, lng: float, radius_m: float) -> str:
        build = round_ring if rng.random() < 0.6 else irregular_ring
        return multipolygon_ewkt(ring=build(rng=rng, lat=lat, lng=lng, radius_m=radius_m))

    def rows() -> Iterator[Sequence[Any]]:
        for index, merchant in enumerate(ctx.merchants):
            if index % _TICK == 0:
                ctx.progress.advance(min(_TICK, len(ctx.merchants) - index))
            at = {"lat": merchant.lat, "lng": merchant.lng}
            if rng.random() < 0.45:
                near = rng.uniform(1500, 3000)
                far = min(near * rng.uniform(1.6, 2.4), 6000)
                yield (
                    merchant.id,
                    "Nearby",
                    shape(**at, radius_m=near),
                    rng.choice(_NEAR_FEES),
                    rng.choice(_NEAR_MINIMUMS),
                    True,
                )
                yield (
                    merchant.id,
                    "Extended area",
                    shape(**at, radius_m=far),
                    rng.choice(_FAR_FEES),
                    rng.choice(_FAR_MINIMUMS),
                    rng.random() >= 0.06,
                )
            else:
                yield (
                    merchant.id,
                    "Delivery area",
                    shape(**at, radius_m=rng.uniform(1500, 6000)),
                    rng.choice(_SINGLE_FEES),
                    rng.choice(_SINGLE_MINIMUMS),
                    True,
                )

    copy_rows(
        ctx=ctx,
        model=DeliveryZone,
        count_as="delivery zones",
        columns=("merchant_id", "name", "area", "delivery_fee", "min_order_amount", "is_active"),
        rows=rows(),
    )
    ctx.progress.finish()


def _product_counts(*, rng: random.Random, ctx: SeedContext) -> list[int]:
    """Split the requested total over merchants by shop size, summing to it exactly.

    A supermarket lists more than a kiosk; every merchant gets at least one product when
    there are enough to go round. Largest remainders settle the rounding.
    """
    total = ctx.options.products
    merchants = len(ctx.merchants)
    sizes = {kind.key: kind.size for kind, _ in content.MERCHANT_KINDS}
    weights = [sizes[m.kind] * rng.lognormvariate(0, 0.4) for m in ctx.merchants]
    floor_each = 1 if total >= merchants else 0
    spread = total - floor_each * merchants
    weight_sum = sum(weights)
    shares = [spread * w / weight_sum for w in weights]
    counts = [floor_each + math.floor(s) for s in shares]
    by_remainder = sorted(range(merchants), key=lambda i: (-(shares[i] % 1), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


_PREMIUM = frozenset(
    {"Organic", "Premium", "Artisan", "Grass-Fed", "Dry-Aged", "Wild", "Free-Range", "Craft"}
)
_SIZE_FACTORS = (1.0, 1.8, 3.2)


def products_seed(ctx: SeedContext) -> None:
    """Products assembled from the category vocabulary, and each merchant's categories.

    A title is [producer] [adjective] [variety] item [size], as in "Havelland Organic
    Braeburn Apples 1kg". Prices start from the item's typical price, scale with pack
    size and premium words, vary by shop, and end in 9 like shelf prices. About 3% are
    unpublished.
    """
    rng = ctx.rng("products")
    counts = _product_counts(rng=rng, ctx=ctx)
    ctx.product_counts = counts
    total = sum(counts)
    ctx.progress.start(label="products", total=total)
    ctx.product_id_start = ids_reserve(ctx=ctx, model=Product, count=total) if total else 0

    categories = {c.slug: c for c in content.CATEGORIES}
    mixes = {
        kind.key: (
            [(categories[slug], ctx.category_ids[slug]) for slug in kind.category_weights],
            list(kind.category_weights.values()),
        )
        for kind, _ in content.MERCHANT_KINDS
    }
    merchant_categories: list[set[int]] = [set() for _ in ctx.merchants]
    base_time = ctx.base_time
    roll = rng.random
    randint = rng.randint
    choice = rng.choice

    def rows() -> Iterator[Sequence[Any]]:
        product_id = ctx.product_id_start
        for index, (merchant, count) in enumerate(zip(ctx.merchants, counts, strict=True)):
            pairs, weights = mixes[merchant.kind]
            picks = rng.choices(pairs, weights=weights, k=count)
            span = int((base_time - merchant.created_at).total_seconds())
            shop_markup = rng.uniform(0.9, 1.15)
            for category, category_id in picks:
                merchant_categories[index].add(category_id)
                item = choice(category.items)
                adjectives = category.adjectives if item.adjectives is None else item.adjectives
                words = []
                factor = shop_markup * rng.uniform(0.9, 1.1)
                if category.producers and roll() < 0.5:
                    words.append(choice(category.producers))
                if adjectives and roll() < 0.6:
                    adjective = choice(adjectives)
                    words.append(adjective)
                    if adjective in _PREMIUM:
                        factor *= 1.3
                if item.varieties and roll() < 0.75:
                    words.append(choice(item.varieties))
                words.append(item.name)
                size_index = rng.randrange(len(item.sizes))
                size = item.sizes[size_index]
                name = " ".join(words)
                price = item.price * _SIZE_FACTORS[size_index] * factor
                blurb = choice(category.blurbs)
                created_at = merchant.created_at + timedelta(seconds=randint(0, span))
                yield (
                    product_id,
                    f"{name} {size}" if size else name,
                    f"{name}, {size}. {blurb}" if size else f"{name}. {blurb}",
                    f"{max(0.29, round(price, 1) - 0.01):.2f}",
                    roll() >= 0.03,
                    created_at,
                    min(base_time, created_at + timedelta(seconds=randint(0, 30 * 86_400))),
                    merchant.id,
                    category_id,
                )
                product_id += 1
            ctx.progress.advance(count)

    copy_rows(
        ctx=ctx,
        model=Product,
        count_as="products",
        columns=(
            "id",
            "title",
            "description",
            "price",
            "is_published",
            "created_at",
            "updated_at",
            "merchant_id",
            "category_id",
        ),
        rows=rows(),
    )
    copy_rows(
        ctx=ctx,
        model=Merchant.categories.through,
        count_as="merchant categories",
        columns=("merchant_id", "productcategory_id"),
        rows=(
            (merchant.id, category_id)
            for merchant, ids in zip(ctx.merchants, merchant_categories, strict=True)
            for category_id in sorted(ids)
        ),
    )
    ctx.progress.finish()


def inventory_seed(ctx: SeedContext) -> None:
    """One stock row per product, with the product's merchant.

    About 8% are sold out and 10% at or below their low-stock threshold, so stock
    filters, low-stock reports and rejected orders have something to find.
    """
    rng = ctx.rng("inventory")
    roll = rng.random
    randint = rng.randint
    total = sum(ctx.product_counts)
    ctx.progress.start(label="inventory", total=total)
    thresholds = (3, 5, 5, 5, 10)

    def rows() -> Iterator[Sequence[Any]]:
        product_id = ctx.product_id_start
        for merchant, count in zip(ctx.merchants, ctx.product_counts, strict=True):
            for _ in range(count):
                threshold = thresholds[randint(0, 4)]
                stock = roll()
                if stock < 0.08:
                    quantity = 0
                elif stock < 0.18:
                    quantity = randint(1, threshold)
                else:
                    quantity = threshold + 1 + int(rng.expovariate(1 / 40))
                yield (
                    quantity,
                    threshold,
                    ctx.base_time - timedelta(minutes=randint(0, 14 * 24 * 60)),
                    merchant.id,
                    product_id,
                )
                product_id += 1
            ctx.progress.advance(count)

    copy_rows(
        ctx=ctx,
        model=Inventory,
        count_as="inventory rows",
        columns=("quantity", "low_stock_threshold", "updated_at", "merchant_id", "product_id"),
        rows=rows(),
    )
    ctx.progress.finish()


SEED_STEPS: tuple[SeedStep, ...] = (
    SeedStep(name="categories", run=categories_seed, models=(ProductCategory,)),
    SeedStep(name="users", run=users_seed, models=(User, Token)),
    SeedStep(name="merchants", run=merchants_seed, models=(Address, Merchant)),
    SeedStep(name="zones", run=zones_seed, models=(DeliveryZone,)),
    SeedStep(name="products", run=products_seed, models=(Product, Merchant.categories.through)),
    SeedStep(name="inventory", run=inventory_seed, models=(Inventory,)),
    # Appended last, so that adding it left every earlier step's rows as they were.
    SeedStep(
        name="orders",
        run=orders_seed,
        models=(User, Address, Order, OrderItem, OrderStatusChange),
    ),
    # After the orders, so that couriers can carry some of those in flight; it sets only
    # `orders_order.courier_id` on the orders it gives a courier.
    SeedStep(name="couriers", run=couriers_seed, models=(User, Token, Courier, Order)),
    # Last, so that it changes no earlier step's rows but the merchants' time zone.
    SeedStep(name="hours", run=hours_seed, models=(Merchant, OpeningInterval, Closure, SlotPlan)),
)
