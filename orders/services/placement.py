"""Placing an order: its Idempotency-Key, validation, stock, and the rows it writes."""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from catalog.selectors import MERCHANT_PUBLISHED_PRODUCTS_SQL
from events.models import EventType
from events.services import EVENT_INSERT_SQL
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.api.fields import format_datetime
from geomarket.errors import Conflict, DomainError
from geomarket.sql import point_ewkt
from inventory.services import stock_take
from merchants.models import Address, DeliveryZone, Merchant
from merchants.selectors import MERCHANT_COVERING_ZONE_SQL, MERCHANT_TIMING_SQL
from merchants.services import ADDRESS_FIELDS, ADDRESS_INSERT_SQL, SlotNotOffered, slot_book
from orders.models import IdempotencyKey, Order, OrderItem, OrderStatus, OrderStatusChange
from orders.services.notifications import CONFIRMATION_TASK

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_LINES = 100


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used with a different request."


@dataclass(frozen=True)
class OrderLine:
    product_id: int
    quantity: int


def _request_hash(
    *,
    merchant_id: int,
    lines: list[OrderLine],
    delivery_address: dict,
    slot_starts_at: datetime | None,
) -> str:
    address = dict(delivery_address)
    location = address.pop("location")
    canonical = {
        "merchant_id": merchant_id,
        "items": sorted([line.product_id, line.quantity] for line in lines),
        # `+ 0.0` makes -0.0 (on the prime meridian or the equator) 0.0: the same point.
        "delivery_address": {**address, "location": [location.x + 0.0, location.y + 0.0]},
        # The instant, whatever offset it was written with.
        "slot_starts_at": slot_starts_at and slot_starts_at.timestamp(),
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _claim_idempotency_key(*, user, key: str, request_hash: str) -> IdempotencyKey | Order:
    """Claim the key for this request, or return the order it already produced.

    The INSERT waits on the unique index while another transaction holding the same key
    is open, so of two concurrent requests exactly one claims it; the other sees the
    committed first order. A key older than the TTL is claimed afresh.
    """
    now = timezone.now()
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_idempotencykey (user_id, key, request_hash, created_at)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (user_id, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash, created_at = EXCLUDED.created_at,
                    order_id = NULL
                WHERE orders_idempotencykey.created_at < %s
            RETURNING id
            """,
            [user.pk, key, request_hash, now, now - IDEMPOTENCY_TTL],
        )
        claimed = cursor.fetchone()
    if claimed is not None:
        return IdempotencyKey(pk=claimed[0], user=user, key=key, request_hash=request_hash)
    existing = IdempotencyKey.objects.get(user=user, key=key)
    return _first_order(existing.request_hash, existing.order_id, request_hash=request_hash)


def _first_order(claimed_hash: str, order_id: int, *, request_hash: str) -> Order:
    if claimed_hash != request_hash:
        raise IdempotencyKeyReused()
    return Order.objects.get(pk=order_id)


def _replayed_order(*, user, key: str, request_hash: str) -> Order | None:
    """The order a live claim of the key already produced, for a request that failed
    validation: a retry is answered with the first order even when the same body would
    no longer validate (a product since unpublished), as the claim answers it."""
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            "SELECT request_hash, order_id FROM orders_idempotencykey"
            " WHERE user_id = %s AND key = %s AND created_at >= %s AND order_id IS NOT NULL",
            [user.pk, key, timezone.now() - IDEMPOTENCY_TTL],
        )
        live = cursor.fetchone()
    return None if live is None else _first_order(*live, request_hash=request_hash)


# Everything placing an order checks, in one round trip: the merchant, its cheapest
# active zone covering the delivery point and whether it is open now or offers the
# requested slot (merchants' fragments), and the requested products (catalog's); by
# whether the order is for a slot.
ORDER_CONTEXT_SQL = {
    for_slot: f"""
SELECT m.id, m.name, m.owner_id, m.zone_id, m.delivery_fee, m.min_order_amount,
       products.ids, products.titles, products.prices,
       timing.open_now, timing.next_opening_at, timing.slot_ends_at
FROM ({MERCHANT_COVERING_ZONE_SQL}) m
CROSS JOIN LATERAL ({MERCHANT_PUBLISHED_PRODUCTS_SQL.format(merchant="m.id")}) products
CROSS JOIN ({timing}) timing
"""  # noqa: S608 - only fixed fragments are interpolated
    for for_slot, timing in MERCHANT_TIMING_SQL.items()
}


@dataclass(frozen=True)
class _OrderContext:
    merchant: Merchant
    zone: DeliveryZone
    # product id -> (title, price)
    products: dict[int, tuple[str, Decimal]]
    # The end of the requested slot; None for an order to deliver now.
    slot_ends_at: datetime | None


def _validated_lines(lines: list[OrderLine]) -> None:
    if not lines:
        raise DomainError("An order needs at least one item.", field="items")
    if len(lines) > MAX_LINES:
        raise DomainError(f"An order may have at most {MAX_LINES} lines.", field="items")
    ids = [line.product_id for line in lines]
    if len(set(ids)) != len(ids):
        raise DomainError("Each product may appear only once.", field="items")
    for line in lines:
        if not 1 <= line.quantity <= 999:
            raise DomainError("Quantities must be between 1 and 999.", field="items")


def _refuse_untimely(
    *, open_now: bool | None, next_opening_at: datetime | None, slot_ends_at: datetime | None
) -> None:
    """The 400 for an order the merchant cannot take at this time: without a slot
    (`open_now` not None) while it is closed, naming when it opens; with one, when the
    slot is not one of its current slots."""
    if open_now is None:
        if slot_ends_at is None:
            raise SlotNotOffered(field="slot_starts_at")
    elif not open_now:
        opening = (
            f"next opening {format_datetime(next_opening_at)}"
            if next_opening_at
            else "no opening within 14 days"
        )
        raise DomainError(f"closed: the merchant is closed now; {opening}.", field="merchant_id")


class OrderContextStatement(NamedTuple):
    """The read of an order's context (`ORDER_CONTEXT_SQL`) with its parameters."""

    sql: str
    params: dict[str, Any]


def order_context_statement(
    *,
    merchant_id: int,
    lines: list[OrderLine],
    delivery_address: dict[str, Any],
    slot_starts_at: datetime | None,
) -> OrderContextStatement:
    """The statement `order_place` reads the order's context with, for the same
    arguments: for a caller that has it read by a round trip it makes anyway and hands
    `order_place` the row (`ReadContext`)."""
    location = delivery_address["location"]
    return OrderContextStatement(
        ORDER_CONTEXT_SQL[slot_starts_at is not None],
        {
            "merchant_id": merchant_id,
            "product_ids": [line.product_id for line in lines],
            "point": point_ewkt(lat=location.y, lng=location.x),
            "slot_starts_at": slot_starts_at,
        },
    )


class ReadContext(NamedTuple):
    """The row (None: none) its caller read of `statement`, an `order_context_statement`:
    `order_place` takes it for the row of its own read when the statement is its own."""

    statement: OrderContextStatement
    row: tuple | None


def _order_context(
    *, lines: list[OrderLine], statement: OrderContextStatement, read: ReadContext | None
) -> _OrderContext:
    """The merchant, zone and products of an order, or the 400 that says which is wrong;
    from the row already `read` when it was read by this `statement`."""
    _validated_lines(lines)
    if read is not None and read.statement == statement:
        row = read.row
    else:
        with connection.prepared_cursor() as cursor:
            cursor.execute(*statement)
            row = cursor.fetchone()
    if row is None:
        raise DomainError("Unknown or inactive merchant.", field="merchant_id")
    merchant_pk, name, owner_id, zone_id, fee, min_order, ids, titles, prices = row[:9]
    open_now, next_opening_at, slot_ends_at = row[9:]
    products = dict(zip(ids or [], zip(titles or [], prices or [], strict=True), strict=True))
    for line in lines:
        if line.product_id not in products:
            raise DomainError(
                f"Product {line.product_id} is not sold by this merchant.", field="items"
            )
    if zone_id is None:
        raise DomainError(
            "The merchant does not deliver to this location.", field="delivery_address"
        )
    _refuse_untimely(open_now=open_now, next_opening_at=next_opening_at, slot_ends_at=slot_ends_at)
    return _OrderContext(
        merchant=Merchant(pk=merchant_pk, name=name, owner_id=owner_id),
        zone=DeliveryZone(pk=zone_id, delivery_fee=fee, min_order_amount=min_order),
        products=products,
        slot_ends_at=slot_ends_at,
    )


@contextmanager
def _deleted_meanwhile_refused(
    *, lines: list[OrderLine], statement: OrderContextStatement
) -> Iterator[None]:
    """An order whose merchant or product was deleted after its context was read is
    refused as one placed after the delete would be (400 naming it), not as a conflict.

    The order's foreign keys are checked when it commits, and refuse its rows then:
    nothing is written. The context read again tells what is gone; an integrity error
    that it does not explain is raised as it is."""
    try:
        yield
    except IntegrityError:
        _order_context(lines=lines, statement=statement, read=None)
        raise


def _column_max(model: type[models.Model], name: str) -> Decimal:
    """The largest amount the numeric column behind `model.name` holds."""
    field = model._meta.get_field(name)
    return Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal(1).scaleb(
        -field.decimal_places
    )


# The largest amounts an order's columns hold. An order past one is refused with a 400
# naming its items before the transaction: the database would refuse only its record,
# after its stock was taken and locked, with an error that names no field.
_LINE_TOTAL_MAX = _column_max(OrderItem, "line_total")
_SUBTOTAL_MAX = _column_max(Order, "subtotal")
_TOTAL_MAX = _column_max(Order, "total")


def _priced(
    *, lines: list[OrderLine], statement: OrderContextStatement, read: ReadContext | None
) -> tuple[_OrderContext, list[tuple[OrderLine, str, Decimal]], Decimal]:
    """The order's context, its lines with their titles and prices, and its subtotal;
    or the 400 that says what is wrong: the zone's minimum order, or an amount (a line's
    total, the subtotal, the total with the delivery fee) past what its column holds."""
    context = _order_context(lines=lines, statement=statement, read=read)
    zone = context.zone
    priced = [(line, *context.products[line.product_id]) for line in lines]
    line_totals = [price * line.quantity for line, _, price in priced]
    for line, line_total in zip(lines, line_totals, strict=True):
        if line_total > _LINE_TOTAL_MAX:
            raise DomainError(
                f"The total of the line of product {line.product_id} would pass "
                f"{_LINE_TOTAL_MAX:,.2f}.",
                field="items",
            )
    subtotal = sum(line_totals, Decimal("0.00"))
    if subtotal > _SUBTOTAL_MAX:
        raise DomainError(f"The order's subtotal would pass {_SUBTOTAL_MAX:,.2f}.", field="items")
    if subtotal + zone.delivery_fee > _TOTAL_MAX:
        raise DomainError(f"The order's total would pass {_TOTAL_MAX:,.2f}.", field="items")
    if subtotal < zone.min_order_amount:
        raise DomainError(
            f"The subtotal {subtotal:.2f} is below this zone's minimum of "
            f"{zone.min_order_amount:.2f}.",
            field="items",
        )
    return context, priced, subtotal


# The rows of a placed order, in one round trip: its address (through merchants'
# fragment: merchants owns addresses), the order, its lines, the first history entry,
# when confirmed the confirmation in the outbox, the order's event (placed or rejected,
# through events' fragment), and, when the request carried an Idempotency-Key, the link
# from the key to the order.
ORDER_RECORD_SQL = f"""
WITH address AS ({ADDRESS_INSERT_SQL}), placed AS (
    INSERT INTO orders_order (
        buyer_id, merchant_id, delivery_address_id, status, subtotal, delivery_fee, total,
        rejection_reason, shortages, courier_id, created_at, updated_at, delivered_at,
        slot_starts_at, slot_ends_at)
    SELECT %(buyer_id)s, %(merchant_id)s, address.id, %(status)s, %(subtotal)s,
           %(delivery_fee)s, %(total)s, %(rejection_reason)s, %(shortages)s, NULL, %(now)s,
           %(now)s, NULL, %(slot_starts_at)s, %(slot_ends_at)s
    FROM address
    RETURNING id
), items AS (
    INSERT INTO orders_orderitem (order_id, product_id, title, unit_price, quantity, line_total)
    SELECT placed.id, line.product_id, line.title, line.unit_price, line.quantity,
           line.line_total
    FROM placed, unnest(%(product_ids)s::bigint[], %(titles)s::text[],
                        %(unit_prices)s::numeric[], %(quantities)s::integer[],
                        %(line_totals)s::numeric[])
         WITH ORDINALITY AS line(product_id, title, unit_price, quantity, line_total, position)
    ORDER BY line.position
    RETURNING id, product_id
), history AS (
    INSERT INTO orders_orderstatuschange (order_id, from_status, to_status, actor_id, reason,
                                          created_at)
    SELECT placed.id, '', %(status)s, %(buyer_id)s, '', %(now)s FROM placed
    RETURNING id
), outbox AS (
    INSERT INTO orders_outboxmessage (task_name, payload, created_at, published_at, attempts,
                                      last_error)
    SELECT %(task_name)s, jsonb_build_object('order_id', placed.id), %(now)s, NULL, 0, ''
    FROM placed
    WHERE %(confirmed)s
    RETURNING id
), event AS (
    {EVENT_INSERT_SQL}
    SELECT %(event_type)s, %(now)s, %(merchant_id)s, placed.id,
           jsonb_build_object('status', %(status)s::text, 'total', %(total)s::text,
                              'rejection_reason', %(rejection_reason)s::text,
                              'shortages', %(shortages)s::jsonb)
    FROM placed
    RETURNING id
), key_fulfilled AS (
    UPDATE orders_idempotencykey SET order_id = placed.id
    FROM placed
    WHERE orders_idempotencykey.id = %(claim_id)s::bigint
    RETURNING orders_idempotencykey.id
)
SELECT placed.id, address.id, history.id, (SELECT id FROM outbox),
       (SELECT array_agg(items.id) FROM items), (SELECT array_agg(items.product_id) FROM items)
FROM placed, address, history
"""  # noqa: S608 - only fixed fragments are interpolated


def order_place(
    *,
    buyer,
    merchant_id: int,
    lines: list[OrderLine],
    delivery_address: dict[str, Any],
    idempotency_key: str | None = None,
    slot_starts_at: datetime | None = None,
    read_context: ReadContext | None = None,
) -> Order:
    """Validate, then take the stock and record the order in one transaction.

    1. Validate the merchant, the products, the delivery zone, and that the merchant is
       open now or, for an order placed for a slot (`slot_starts_at`), offers that slot
       (400 on failure). It is one read, made before the transaction: a refused order
       then costs that read alone, and under READ COMMITTED it sees what it would see
       inside. A caller that made that read already (`order_context_statement`) hands
       its row in `read_context`.
    2. With an `Idempotency-Key`, claim it or return the order it already produced.
    3. Take the stock; any shortage records a rejected order instead. Else book the
       slot, after the stock as every placement does, so two never wait on each other
       in opposite orders; a full slot refuses the order (409) and undoes the rest.
    4. Record the order, its lines and history; a confirmed order queues its
       confirmation in the outbox and makes cached stock answers unreachable. A
       merchant or product deleted since step 1 fails the commit, and the order is
       refused as step 1 would refuse it now (`_deleted_meanwhile_refused`).

    Placing orders is the marketplace's hottest write, so each step is one statement,
    prepared on the connection (`prepared_cursor`: PostgreSQL planned the context read
    and the record anew for each order, in more time than it ran them), and the order
    is answered from what is in hand, not read back. Between taking the
    stock and committing, only the record statement runs: the answer's objects are built
    after the commit, so no Python work (nor a wait for the GIL) holds inventory locks.
    """
    request_hash = (
        _request_hash(
            merchant_id=merchant_id,
            lines=lines,
            delivery_address=delivery_address,
            slot_starts_at=slot_starts_at,
        )
        if idempotency_key
        else None
    )
    statement = order_context_statement(
        merchant_id=merchant_id,
        lines=lines,
        delivery_address=delivery_address,
        slot_starts_at=slot_starts_at,
    )
    try:
        context, priced, subtotal = _priced(lines=lines, statement=statement, read=read_context)
    except DomainError:
        if idempotency_key:
            replayed = _replayed_order(user=buyer, key=idempotency_key, request_hash=request_hash)
            if replayed is not None:
                return replayed
        raise
    zone = context.zone
    record = {
        **{name: delivery_address.get(name, "") for name in ADDRESS_FIELDS},
        "point": statement.params["point"],
        "buyer_id": buyer.pk,
        "merchant_id": context.merchant.pk,
        "subtotal": subtotal,
        "delivery_fee": zone.delivery_fee,
        "total": subtotal + zone.delivery_fee,
        "product_ids": [line.product_id for line, _, _ in priced],
        "titles": [title for _, title, _ in priced],
        "unit_prices": [price for _, _, price in priced],
        "quantities": [line.quantity for line, _, _ in priced],
        "line_totals": [price * line.quantity for line, _, price in priced],
        "task_name": CONFIRMATION_TASK,
        "claim_id": None,
        "slot_starts_at": slot_starts_at,
        "slot_ends_at": context.slot_ends_at,
    }
    with _deleted_meanwhile_refused(lines=lines, statement=statement), transaction.atomic():
        if idempotency_key:
            claim = _claim_idempotency_key(
                user=buyer, key=idempotency_key, request_hash=request_hash
            )
            if isinstance(claim, Order):
                return claim
            record["claim_id"] = claim.pk
        record["now"] = timezone.now()
        shortages = stock_take(lines=lines)
        if slot_starts_at is not None and not shortages:
            record["slot_ends_at"] = slot_book(
                merchant_id=context.merchant.pk, starts_at=slot_starts_at
            )
        status = OrderStatus.REJECTED if shortages else OrderStatus.CONFIRMED
        record["status"] = status
        record["rejection_reason"] = "insufficient_stock" if shortages else ""
        record["shortages"] = Jsonb(shortages)
        record["confirmed"] = not shortages
        record["event_type"] = EventType.ORDER_REJECTED if shortages else EventType.ORDER_PLACED
        with connection.prepared_cursor() as cursor:
            cursor.execute(ORDER_RECORD_SQL, record)
            ids = cursor.fetchone()
        if not shortages:
            # The relay (`orders.relay`) is woken by the outbox's NOTIFY trigger once this
            # commits, and publishes the confirmation from its own process.
            versions_bump(Namespace.CATALOG)
    return _placed_order(
        buyer=buyer, context=context, delivery_address=delivery_address, record=record, ids=ids
    )


def _placed_order(
    *, buyer, context: _OrderContext, delivery_address: dict, record: dict, ids: tuple
) -> Order:
    """The placed order as model instances, with its lines and first history entry in
    hand for the serializers, from what was written."""
    order_id, address_id, change_id, _, item_ids, item_products = ids
    address = Address(pk=address_id, **delivery_address)
    order = Order(
        pk=order_id,
        buyer=buyer,
        merchant=context.merchant,
        delivery_address=address,
        status=record["status"],
        subtotal=record["subtotal"],
        delivery_fee=record["delivery_fee"],
        total=record["total"],
        rejection_reason=record["rejection_reason"],
        shortages=record["shortages"].obj,
        created_at=record["now"],
        updated_at=record["now"],
        slot_starts_at=record["slot_starts_at"],
        slot_ends_at=record["slot_ends_at"],
    )
    order._state.adding = address._state.adding = False
    item_pks = dict(zip(item_products, item_ids, strict=True))
    items = []
    for product_id, title, price, quantity, line_total in zip(
        record["product_ids"],
        record["titles"],
        record["unit_prices"],
        record["quantities"],
        record["line_totals"],
        strict=True,
    ):
        item = OrderItem(
            pk=item_pks[product_id],
            order=order,
            product_id=product_id,
            title=title,
            unit_price=price,
            quantity=quantity,
            line_total=line_total,
        )
        item._state.adding = False
        items.append(item)
    first_change = OrderStatusChange(
        pk=change_id,
        order=order,
        to_status=record["status"],
        actor=buyer,
        created_at=record["now"],
    )
    first_change._state.adding = False
    # What the answer shows is in hand: let serializers read it instead of the database.
    order._prefetched_objects_cache = {"items": items, "history": [first_change]}
    return order


def idempotency_keys_prune() -> int:
    deleted, _ = IdempotencyKey.objects.filter(
        created_at__lt=timezone.now() - IDEMPOTENCY_TTL
    ).delete()
    return deleted
