"""The reads of events: the feed, its cursor, and the webhook endpoints a user sees."""

import base64
import functools
import re

from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL

from events.models import Event, WebhookDelivery, WebhookEndpoint
from events.shapes import EVENT, WEBHOOK, WEBHOOK_DELIVERY
from geomarket.accounts.roles import ACTIVE, OPERATOR, is_operator, user_merchant_id
from geomarket.api.pagination import CountedPage
from geomarket.errors import DomainError, Forbidden
from geomarket.sql import CompiledPage, CompiledQuery, fetch_all, fetch_value
from merchants.selectors import merchant_ref

# A cursor is the last event's feed position as 8 bytes, URL-safe base64 without padding: always 11
# characters, the last of them one of 16 (its two low bits are padding), so the schema can
# state exactly which strings are cursors.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$"
_MAX_ID = 2**63 - 1


def cursor_encode(position: int) -> str:
    return base64.urlsafe_b64encode(position.to_bytes(8, "big")).decode().rstrip("=")


def cursor_decode(cursor: str, *, field: str = "after") -> int:
    """The feed position a cursor stands for; 400 for a string that is not a cursor. One
    beyond every position (past bigint) is read as the last bigint, which the feed never
    reaches (`events_feed` refuses it)."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise DomainError("Not a cursor of this feed.", field=field)
    return min(int.from_bytes(base64.urlsafe_b64decode(cursor + "="), "big"), _MAX_ID)


def events_scope(user) -> int | None:
    """The merchant whose events `user` may read, None for all of them (operators);
    403 for anyone else."""
    if is_operator(user):
        return None
    merchant_id = user_merchant_id(user)
    if merchant_id is None:
        raise Forbidden("Only merchant owners and operators may read events.")
    return merchant_id


def webhook_merchant(*, user, merchant_id: int | None) -> int | None:
    """The merchant whose events an endpoint `user` creates takes: an owner's own,
    whatever `merchant_id` says; an operator's `merchant_id` (None: every merchant's),
    which must be a merchant (400), as the endpoint's foreign key would otherwise refuse
    only at commit."""
    scope = events_scope(user)
    if scope is not None:
        return scope
    if merchant_id is not None and merchant_ref(user=user, merchant_id=merchant_id) is None:
        raise DomainError("Unknown merchant.", field="merchant_id")
    return merchant_id


# Stand in for the call's values in the compiled reads below: never a real one.
_POSITION_STAND_IN = -7_000_003
_MERCHANT_STAND_IN = -7_000_004
_ID_STAND_IN = -7_000_005
_TYPES_STAND_IN = ["\x00type"]


def _feed(*, merchant_id: int | None, after_position: int, types: list[str] | None) -> QuerySet:
    events = Event.objects.filter(feed_position__gt=after_position)
    if merchant_id is not None:
        events = events.filter(merchant_id=merchant_id)
    if types:
        # One array parameter, whatever the number of types: one SQL text for them all.
        events = events.filter(type__in=RawSQL("SELECT unnest(%s::text[])", [types]))
    return events.order_by("feed_position")


@functools.cache
def _feed_compiled(*, scoped: bool, typed: bool) -> CompiledQuery:
    events = _feed(
        merchant_id=_MERCHANT_STAND_IN if scoped else None,
        after_position=_POSITION_STAND_IN,
        types=_TYPES_STAND_IN if typed else None,
    )
    slots = {
        "after": _POSITION_STAND_IN,
        **({"merchant": _MERCHANT_STAND_IN} if scoped else {}),
        **({"types": _TYPES_STAND_IN} if typed else {}),
    }
    return CompiledQuery(events.values_list(*EVENT.columns, "feed_position"), slots=slots)


# The last position the feed has given. Positions only grow, and a cursor is a position a
# read found committed, so every cursor the feed gave is at or before it. One past it is
# another deployment's, or from before the database was reset or restored: read after it,
# it would answer nothing until the feed got there, then pass every event before it. Asked
# only of a read that found nothing: one that found events has reached its cursor.
_FEED_END_SQL = "SELECT COALESCE(max(feed_position), 0) FROM events_event"
CURSOR_UNREACHED = (
    "Not a cursor of this feed: it is past the feed's last event (from another deployment,"
    " or from before the database was reset). Read the feed again without `after`."
)


def cursor_reached(*, position: int) -> bool:
    """Whether the feed has reached the position `position`, as every cursor it gave has
    (`_FEED_END_SQL`)."""
    return position <= fetch_value(_FEED_END_SQL, {})


def events_feed(
    *, user, after_position: int = 0, types: list[str] | None = None, limit: int = 100
) -> tuple[list[dict], int | None]:
    """The events `user` may read after the feed position `after_position`, in the order
    they committed (`events_feed_positions_assign` gives the positions), as answered, and
    the last one's position (None when there is none).

    A position the feed has not reached is no cursor it gave (`_FEED_END_SQL`): 400.

    The statement is compiled once for each kind of read: building the queryset costs
    more CPU than running it."""
    merchant_id = events_scope(user)
    compiled = _feed_compiled(scoped=merchant_id is not None, typed=bool(types))
    values = {"after": after_position, "merchant": merchant_id, "types": types}
    rows = fetch_all(f"{compiled.sql} LIMIT %s", [*compiled.params(**values), limit])
    if not rows and after_position and not cursor_reached(position=after_position):
        raise DomainError(CURSOR_UNREACHED, field="after")
    return EVENT.render_rows([row[:-1] for row in rows]), (rows[-1][-1] if rows else None)


# Whether an endpoint takes its events now: on, and its creator still someone who may read
# them (`events_scope`, in SQL): an active operator, or the active owner of the endpoint's
# merchant. An endpoint of every merchant created before creators were recorded (none)
# takes them as before. Fan-out, delivery and the endpoints' answers (`is_active`) all
# read this one rule.
_CREATOR = "created_by"
ENDPOINT_RECEIVES = Q(is_active=True) & (
    # Not a merchant's: one created without a creator by a process older than migration
    # 0010, still running beside it, would otherwise take its merchant's events for good.
    Q(created_by__isnull=True, merchant__isnull=True)
    | (ACTIVE.q(_CREATOR) & (OPERATOR.q(_CREATOR) | Q(merchant__owner_id=F("created_by_id"))))
)


# `ENDPOINT_RECEIVES` as a value of each endpoint's row.
RECEIVES = Case(When(ENDPOINT_RECEIVES, then=Value(True)), default=Value(False))


def webhooks_receiving() -> QuerySet[WebhookEndpoint]:
    """The endpoints events are delivered to (`ENDPOINT_RECEIVES`)."""
    return WebhookEndpoint.objects.filter(ENDPOINT_RECEIVES)


def webhooks_visible_to(user) -> QuerySet[WebhookEndpoint]:
    return _endpoints_of(events_scope(user))


def _endpoints_of(merchant_id: int | None) -> QuerySet[WebhookEndpoint]:
    endpoints = WebhookEndpoint.objects.order_by("id")
    return endpoints if merchant_id is None else endpoints.filter(merchant_id=merchant_id)


def _answered(endpoints: QuerySet[WebhookEndpoint]) -> QuerySet:
    """The endpoints' rows for `WEBHOOK`: `is_active` says whether they take events now,
    so an endpoint whose creator may no longer read them is answered off."""
    return endpoints.annotate(receives=RECEIVES).values_list(*WEBHOOK.columns)


def webhook_deliveries_recent(*, endpoint_id: int) -> QuerySet[WebhookDelivery]:
    """The endpoint's attempts, latest first."""
    return WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("-id")


@functools.cache
def _webhook_pages(*, scoped: bool) -> CompiledPage:
    endpoints = _endpoints_of(_MERCHANT_STAND_IN if scoped else None)
    slots = {"merchant": _MERCHANT_STAND_IN} if scoped else {}
    return CompiledPage(_answered(endpoints), slots=slots)


def webhook_page(*, user, offset: int, limit: int) -> CountedPage:
    """Rows `offset` to `offset + limit` of the endpoints `user` sees, for
    `WEBHOOK.render_rows`, with the count of all of them."""
    merchant_id = events_scope(user)
    pages = _webhook_pages(scoped=merchant_id is not None)
    return pages.read(offset=offset, limit=limit, merchant=merchant_id)


@functools.cache
def _webhook_compiled(*, scoped: bool) -> CompiledQuery:
    endpoints = _endpoints_of(_MERCHANT_STAND_IN if scoped else None).filter(pk=_ID_STAND_IN)
    slots = {"id": _ID_STAND_IN, **({"merchant": _MERCHANT_STAND_IN} if scoped else {})}
    return CompiledQuery(_answered(endpoints), slots=slots)


def webhook_answer(*, user, webhook_id: int) -> dict | None:
    """The endpoint `webhook_id` as answered, if `user` sees it."""
    merchant_id = events_scope(user)
    compiled = _webhook_compiled(scoped=merchant_id is not None)
    rows = fetch_all(compiled.sql, compiled.params(id=webhook_id, merchant=merchant_id))
    return WEBHOOK.render(rows[0]) if rows else None


@functools.cache
def _delivery_pages() -> CompiledPage:
    deliveries = webhook_deliveries_recent(endpoint_id=_ID_STAND_IN)
    return CompiledPage(
        deliveries.values_list(*WEBHOOK_DELIVERY.columns), slots={"endpoint": _ID_STAND_IN}
    )


def webhook_delivery_page(*, endpoint_id: int, offset: int, limit: int) -> CountedPage:
    """Rows `offset` to `offset + limit` of `webhook_deliveries_recent`, for
    `WEBHOOK_DELIVERY.render_rows`, with the count of all of them."""
    return _delivery_pages().read(offset=offset, limit=limit, endpoint=endpoint_id)
