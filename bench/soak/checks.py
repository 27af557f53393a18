"""After the load: the outbox and the worker drained, then the invariants checked in SQL."""

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import psycopg

from bench.common.report import log, percentile
from bench.soak.city import Marks
from bench.soak.config import (
    ACTIVE_STATUSES,
    ALLOWED_TRANSITIONS,
    CACHE_KEY_PREFIX,
    SOLD_STATUSES,
)
from bench.soak.load import CAPACITY_SQL, Load
from bench.soak.stack import Supervisor
from bench.soak.streams import location_leaks
from bench.soak.webhooks import EventRow, Receivers, delivery_lags


@dataclass(frozen=True)
class Drained:
    outbox: int  # outbox rows unpublished
    confirmations: int  # confirmations missing
    events: int  # events whose webhooks were not handed to the broker
    deliveries: int  # events a healthy endpoint has not got


def events_read(connection) -> list[EventRow]:
    return [
        EventRow(*row)
        for row in connection.execute("SELECT id, merchant_id, type FROM events_event ORDER BY id")
    ]


def drain(
    dsn: str, marks: Marks, timeout: float, supervisor: Supervisor, receivers: Receivers
) -> Drained:
    """Wait for the outbox to empty, every confirmation to be recorded, and every event
    to reach the healthy webhook endpoints that take it."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last_log = 0.0
    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            pending, missing, events = connection.execute(
                """
                SELECT (SELECT count(*) FROM orders_outboxmessage WHERE published_at IS NULL),
                       (SELECT count(*) FROM orders_order o
                        WHERE o.id > %s AND o.status <> 'rejected' AND NOT EXISTS (
                            SELECT 1 FROM orders_ordernotification n
                            WHERE n.order_id = o.id AND n.kind = 'confirmation')),
                       (SELECT count(*) FROM events_event WHERE published_at IS NULL)
                """,
                [marks.order_id],
            ).fetchone()
            compared = receivers.compare(events_read(connection), marks.event_id)
            undelivered = len({e for check in compared.values() for e in check.missing})
            drained = Drained(pending, missing, events, undelivered)
            now = time.monotonic()
            text = (
                f"{pending} outbox rows pending, {missing} confirmations missing, {events} "
                f"events unpublished, {undelivered} not yet at a healthy webhook endpoint"
            )
            if not any((pending, missing, events, undelivered)) or now > deadline:
                log(f"drain: {text} after {now - started:.0f} s")
                return drained
            if now - last_log > 10:
                log(f"  draining: {text}")
                last_log = now
            supervisor.check()
            time.sleep(1.0)


def broker_unacked(redis_url: str) -> list[int]:
    """Order ids of confirmations the broker holds as delivered but not acknowledged
    (kombu's `unacked` hash: the message, its exchange and routing key)."""
    import base64

    import redis

    ids = []
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=3)
        for raw in client.hvals("unacked"):
            message = json.loads(raw)[0]
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)
            kwargs = args[1] if isinstance(args, list) and len(args) > 1 else {}
            if isinstance(kwargs, dict) and "order_id" in kwargs:
                ids.append(kwargs["order_id"])
    except Exception:  # noqa: S110 - a diagnostic only
        pass
    return sorted(ids)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def stream_entry_statuses(redis_url: str, order_ids: set[int]) -> dict[tuple[int, str], str]:
    """The status each point of the orders' Redis streams was made in (field `s`, see
    events.streams), by order and entry id: the status its ping read."""
    import redis

    statuses = {}
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        for order_id in order_ids:
            for entry_id, fields in client.xrange(f"{CACHE_KEY_PREFIX}:order-stream:{order_id}"):
                if fields.get(b"e") == b"location":
                    statuses[(order_id, entry_id.decode())] = fields[b"s"].decode()
    except redis.RedisError as exc:
        # The check then says how few points it found; customers' are held to the history.
        log(f"the orders' Redis streams could not be read: {exc!r}")
    return statuses


def checks_run(
    dsn: str, marks: Marks, load: Load, drained: Drained, receivers: Receivers
) -> list[Check]:
    results: list[Check] = []
    with psycopg.connect(dsn, autocommit=True) as connection:

        def rows(sql: str, params=None) -> list[tuple]:
            return connection.execute(sql, params).fetchall()

        # 1. Stock: start + restocks - what the soak's orders hold (not rejected, cancelled
        # or returned; failed ones hold theirs until they are returned).
        mismatches = rows(
            """
            WITH sold AS (
                SELECT i.product_id, sum(i.quantity) AS quantity
                FROM orders_orderitem i JOIN orders_order o ON o.id = i.order_id
                WHERE o.id > %(order)s AND o.status = ANY(%(sold)s)
                GROUP BY i.product_id
            ), restocked AS (
                SELECT inv.product_id, sum(a.delta) AS quantity
                FROM inventory_inventoryadjustment a
                JOIN inventory_inventory inv ON inv.id = a.inventory_id
                WHERE a.id > %(adjustment)s
                GROUP BY inv.product_id
            )
            SELECT s.product_id, s.quantity, coalesce(r.quantity, 0), coalesce(d.quantity, 0),
                   inv.quantity
            FROM soak_stock_start s
            FULL JOIN inventory_inventory inv ON inv.product_id = s.product_id
            LEFT JOIN sold d ON d.product_id = coalesce(s.product_id, inv.product_id)
            LEFT JOIN restocked r ON r.product_id = coalesce(s.product_id, inv.product_id)
            WHERE inv.quantity IS DISTINCT FROM
                  s.quantity + coalesce(r.quantity, 0) - coalesce(d.quantity, 0)
            ORDER BY 1
            """,
            {
                "order": marks.order_id,
                "adjustment": marks.adjustment_id,
                "sold": list(SOLD_STATUSES),
            },
        )
        touched, checked, units, restocked, held_failed, given_back = rows(
            """
            WITH units AS (
                SELECT o.status, sum(i.quantity) AS quantity FROM orders_orderitem i
                JOIN orders_order o ON o.id = i.order_id
                WHERE o.id > %(order)s GROUP BY 1
            )
            SELECT (SELECT count(DISTINCT i.product_id) FROM orders_orderitem i
                    WHERE i.order_id > %(order)s),
                   (SELECT count(*) FROM inventory_inventory),
                   (SELECT coalesce(sum(quantity), 0) FROM units WHERE status = ANY(%(sold)s)),
                   (SELECT coalesce(sum(delta), 0) FROM inventory_inventoryadjustment
                    WHERE id > %(adjustment)s),
                   (SELECT coalesce(sum(quantity), 0) FROM units WHERE status = 'failed'),
                   (SELECT coalesce(sum(quantity), 0) FROM units WHERE status = 'returned')
            """,
            {
                "order": marks.order_id,
                "adjustment": marks.adjustment_id,
                "sold": list(SOLD_STATUSES),
            },
        )[0]
        results.append(
            Check(
                "stock = start + restocks - sold (soak orders neither rejected, cancelled nor"
                " returned: failed ones hold their stock, returned ones gave it back)",
                not mismatches,
                f"{checked:,} products, {touched:,} ordered, {units:,} units sold, "
                f"{restocked:,} restocked, {held_failed:,} held by failed orders, "
                f"{given_back:,} given back by returned ones; {len(mismatches)} mismatches"
                + "".join(
                    f"\n      product {p}: start {s}, restocked {r}, sold {d}, now {n}"
                    for p, s, r, d, n in mismatches[:10]
                ),
            )
        )
        negative = rows("SELECT product_id, quantity FROM inventory_inventory WHERE quantity < 0")
        results.append(Check("no negative stock", not negative, f"{len(negative)} rows below zero"))

        # 2. Assignment: no order in two assignment answers, the database agrees with them,
        # and no courier carries more active orders than its capacity.
        assigned = load.assigned
        disagree = rows(
            "SELECT o.id, o.courier_id, a.courier_id FROM orders_order o"
            " JOIN unnest(%s::bigint[], %s::bigint[]) AS a(order_id, courier_id)"
            " ON a.order_id = o.id WHERE o.courier_id IS DISTINCT FROM a.courier_id",
            [list(assigned), list(assigned.values())],
        )
        results.append(
            Check(
                "no order assigned twice",
                not load.double_assignments and not disagree,
                f"{len(assigned):,} assignments answered, {len(load.double_assignments)} orders "
                f"in two answers, {len(disagree)} orders whose courier differs from the answer"
                + "".join(f"\n      {d}" for d in load.double_assignments[:5])
                + "".join(
                    f"\n      order {o}: courier {c}, answered {a}" for o, c, a in disagree[:5]
                ),
            )
        )
        over = rows(CAPACITY_SQL, [list(ACTIVE_STATUSES)])
        results.append(
            Check(
                "no courier over capacity",
                not over and not load.capacity_violations,
                f"at the end: {len(over)} couriers over; sampled every 5 s during the run "
                f"({load.capacity_samples} samples): {len(load.capacity_violations)} violations"
                + "".join(f"\n      {v}" for v in load.capacity_violations[:5]),
            )
        )
        carried_without = rows(
            "SELECT id FROM orders_order WHERE id > %s AND courier_id IS NULL"
            " AND status IN ('picked_up', 'delivered', 'failed', 'returned')",
            [marks.order_id],
        )
        results.append(
            Check(
                "picked-up, delivered, failed and returned orders have a courier",
                not carried_without,
                f"{len(carried_without)} without one",
            )
        )

        # 3. Notifications: exactly one confirmation per non-rejected soak order, none for
        # rejected ones.
        counts = rows(
            """
            SELECT o.status = 'rejected', count(n.id)
            FROM orders_order o
            LEFT JOIN orders_ordernotification n
                   ON n.order_id = o.id AND n.kind = 'confirmation'
            WHERE o.id > %s
            GROUP BY o.id, o.status
            """,
            [marks.order_id],
        )
        confirmed = [n for rejected, n in counts if not rejected]
        rejected = [n for rejected, n in counts if rejected]
        wrong = sum(1 for n in confirmed if n != 1) + sum(1 for n in rejected if n != 0)
        detail = (
            f"{len(confirmed):,} non-rejected orders: "
            f"{sum(1 for n in confirmed if n == 1):,} with one, "
            f"{sum(1 for n in confirmed if n == 0):,} with none, "
            f"{sum(1 for n in confirmed if n > 1):,} with more; "
            f"{len(rejected):,} rejected orders, {sum(1 for n in rejected if n):,} notified"
        )
        if wrong:
            stuck = broker_unacked(load.redis["broker"].url())
            if stuck:
                detail += (
                    f"\n      {len(stuck)} confirmations sit in the broker's unacked set (held "
                    "until the visibility timeout, CELERY_VISIBILITY_TIMEOUT): "
                    + ", ".join(map(str, stuck[:10]))
                )
        results.append(Check("one confirmation per confirmed order", not wrong, detail))
        results.append(
            Check(
                "outbox drained",
                drained.outbox == 0,
                f"{drained.outbox} outbox rows unpublished after the drain",
            )
        )

        # 4. History: every soak order's changes form a chain of allowed transitions that
        # ends in its status.
        broken = rows(
            """
            WITH h AS (
                SELECT c.order_id, c.from_status, c.to_status,
                       lag(c.to_status) OVER w AS previous,
                       row_number() OVER w AS n,
                       count(*) OVER (PARTITION BY c.order_id) AS total
                FROM orders_orderstatuschange c
                WHERE c.order_id > %(order)s
                WINDOW w AS (PARTITION BY c.order_id ORDER BY c.created_at, c.id)
            )
            SELECT o.id, o.status FROM orders_order o
            WHERE o.id > %(order)s AND (
                NOT EXISTS (SELECT 1 FROM h WHERE h.order_id = o.id)
                OR EXISTS (
                    SELECT 1 FROM h WHERE h.order_id = o.id AND (
                        (h.n = 1 AND (h.from_status <> '' OR
                                      h.to_status NOT IN ('confirmed', 'rejected')))
                        OR (h.n > 1 AND (h.from_status IS DISTINCT FROM h.previous OR
                            (h.from_status, h.to_status) NOT IN (SELECT * FROM unnest(
                                %(froms)s::text[], %(tos)s::text[]))))
                        OR (h.n = h.total AND h.to_status <> o.status)))
            )
            """,
            {
                "order": marks.order_id,
                "froms": [a for a, _ in ALLOWED_TRANSITIONS],
                "tos": [b for _, b in ALLOWED_TRANSITIONS],
            },
        )
        results.append(
            Check(
                "status history is a chain of allowed transitions ending in the status",
                not broken,
                f"{len(broken)} orders break it"
                + "".join(f"\n      order {o} ({s})" for o, s in broken[:5]),
            )
        )

        results.append(rollups_check(rows))

        # 5. Live delivery: webhooks, streams, late pings.
        events = events_read(connection)
        results.append(webhooks_check(events, marks, drained, receivers, rows))
        results.append(feed_check(events, load.feed_ids))
        watched = {item.order_id for item in load.shown}
        history = defaultdict(list)
        for order_id, at, status in rows(
            "SELECT order_id, created_at, to_status FROM orders_orderstatuschange"
            " WHERE order_id = ANY(%s) ORDER BY order_id, created_at, id",
            [list(watched)],
        ):
            history[order_id].append((at, status))
        results.append(
            streams_check(load, history, stream_entry_statuses(load.redis["cache"].url(), watched))
        )
        results.append(late_pings_check(load, rows))

    # 6. HTTP: no 5xx (healthz apart), no failed request, idempotent retries agree.
    fivexx = Counter(
        {
            label: sum(n for code, n in counter.items() if code >= 500)
            for label, counter in load.stats.statuses.items()
        }
    )
    fivexx = +fivexx
    results.append(
        Check(
            "zero 5xx responses (/healthz not counted)",
            not fivexx,
            f"{sum(fivexx.values())} 5xx"
            + "".join(f"\n      {label}: {n}" for label, n in fivexx.most_common()),
        )
    )
    results.append(
        Check(
            "zero failed requests (connection errors, timeouts)",
            not load.stats.transport,
            f"{sum(load.stats.transport.values())} failed"
            + "".join(f"\n      {label}: {n}" for label, n in load.stats.transport.most_common()),
        )
    )
    client_errors = Counter(
        {key: n for key, n in load.stats.unexpected.items() if 400 <= key[1] < 500}
    )
    results.append(
        Check(
            "no unexpected 4xx (409 on a raced transition is expected)",
            not client_errors,
            f"{sum(client_errors.values())} unexpected"
            + "".join(
                f"\n      {label}: {code} x {n}" for (label, code), n in client_errors.most_common()
            ),
        )
    )
    results.append(
        Check(
            "idempotent retries return the first order",
            not load.idempotency_mismatches,
            f"{load.stats.statuses['orders: retry with the same key'].total()} retries, "
            f"{len(load.idempotency_mismatches)} with another order"
            + "".join(f"\n      {m}" for m in load.idempotency_mismatches[:5]),
        )
    )
    return results


# The merchants' days of the analytics rollups against the raw orders, the seed's and the
# soak's: each day's delivered orders and revenue (by the UTC day of delivery) and failed
# orders (by the UTC day of their `failed` status change, returned since or not), and the
# running totals of each day, all as the merchants report reads them.
ROLLUPS_WRONG_SQL = """
WITH raw AS (
    SELECT merchant_id, (delivered_at AT TIME ZONE 'UTC')::date AS day,
           count(*) AS orders, sum(total) AS revenue, 0 AS failed
    FROM orders_order WHERE status = 'delivered' GROUP BY 1, 2
    UNION ALL
    SELECT o.merchant_id, (c.created_at AT TIME ZONE 'UTC')::date, 0, 0, count(*)
    FROM orders_orderstatuschange c JOIN orders_order o ON o.id = c.order_id
    WHERE c.to_status = 'failed' GROUP BY 1, 2
), expected AS (
    SELECT merchant_id, day, sum(orders) AS orders, sum(revenue) AS revenue,
           sum(failed) AS failed,
           sum(sum(orders)) OVER w AS orders_to_date, sum(sum(failed)) OVER w AS failed_to_date
    FROM raw GROUP BY 1, 2
    WINDOW w AS (PARTITION BY merchant_id ORDER BY day)
)
SELECT coalesce(e.merchant_id, d.merchant_id), coalesce(e.day, d.day),
       e.orders, e.failed, d.orders, d.failed
FROM expected e
FULL JOIN analytics_merchantday d ON d.merchant_id = e.merchant_id AND d.day = e.day
WHERE (e.orders, e.revenue, e.failed, e.orders_to_date, e.failed_to_date)
      IS DISTINCT FROM (d.orders, d.revenue, d.failed, d.orders_to_date, d.failed_to_date)
ORDER BY 1, 2
"""


def rollups_check(rows) -> Check:
    """The rollups the reports read, kept by each delivery and failure in its own
    transaction, hold what the orders say."""
    wrong = rows(ROLLUPS_WRONG_SQL)
    delivered, failed, returned = rows(
        "SELECT count(*) FILTER (WHERE status = 'delivered'),"
        " count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'returned')"
        " FROM orders_order"
    )[0]
    return Check(
        "analytics rollups equal the orders (delivered; failed, returned or not)",
        not wrong,
        f"{delivered:,} delivered, {failed:,} failed and {returned:,} returned orders; "
        f"{len(wrong)} merchant days differ"
        + "".join(
            f"\n      merchant {m} on {d}: orders {eo} / failed {ef} in the orders,"
            f" {ro} / {rf} in the rollups"
            for m, d, eo, ef, ro, rf in wrong[:5]
        ),
    )


def webhooks_check(
    events: list[EventRow], marks: Marks, drained: Drained, receivers: Receivers, rows
) -> Check:
    """Every event after the mark reached every healthy endpoint that takes it (at least
    once: by `webhook-id`, duplicates allowed), signed with its secret, and nothing else
    reached it."""
    compared = receivers.compare(events, marks.event_id)
    recent = Counter(event.type for event in events if event.id > marks.event_id)
    lines = []
    for endpoint, check in compared.items():
        lines.append(
            f"\n      {endpoint.name}: {check.expected:,} events to get, {check.distinct:,} got "
            f"in {check.received:,} requests ({check.duplicates:,} sent again); "
            f"{len(check.missing)} missing, {len(check.foreign)} not its own, "
            f"{len(check.unsigned)} badly signed"
        )
        lines += [f"\n        missing: event {event_id}" for event_id in check.missing[:5]]
        lines += [f"\n        not its own: {text}" for text in check.foreign[:5]]
        lines += [f"\n        badly signed: {text}" for text in check.unsigned[:5]]
    failing = rows(
        "SELECT e.url, e.is_active, e.failure_count, e.disabled_at IS NOT NULL,"
        " (SELECT count(*) FROM events_webhookdelivery d WHERE d.endpoint_id = e.id)"
        " FROM events_webhookendpoint e WHERE e.id = ANY(%s)",
        [[endpoint.id for endpoint in receivers.endpoints if not endpoint.healthy]],
    )
    written = dict(
        rows(
            "SELECT id, extract(epoch FROM created_at)::float8 FROM events_event WHERE id > %s",
            [marks.event_id],
        )
    )
    for endpoint in receivers.healthy():
        lags = delivery_lags(
            written=written, deliveries=receivers.received("healthy"), path=endpoint.path
        )
        lines.append(
            f"\n      {endpoint.name}: each event got {percentile(lags, 0.5):.1f} s after it was "
            f"written at the median, {percentile(lags, 0.95):.1f} s at p95, "
            f"{max(lags, default=float('nan')):.1f} s at most"
        )
    for url, active, failures, disabled, attempts in failing:
        lines.append(
            f"\n      failing receiver {url}: {len(receivers.received('failing')):,} requests "
            f"got, {attempts:,} attempts recorded, {failures} failures in a row, "
            + ("disabled" if disabled else "active" if active else "inactive")
        )
    return Check(
        "every event reached every healthy webhook endpoint that takes it",
        bool(compared) and all(check.passed for check in compared.values()),
        f"{sum(recent.values()):,} events in the soak ("
        + ", ".join(f"{name} {n:,}" for name, n in recent.most_common())
        + f"), {drained.events} unpublished after the drain"
        + "".join(lines),
    )


def streams_check(
    load: Load,
    history: dict[int, list],
    entry_statuses: dict[tuple[int, str], str],
) -> Check:
    """No stream showed a courier's point to a customer outside `picked_up`, or to an owner
    outside `ready` and `picked_up` (`streams.location_leaks`)."""
    leaks, restricted, verified = location_leaks(
        shown=load.shown, entry_statuses=entry_statuses, history=history
    )
    shown = Counter((item.role, item.event) for item in load.shown)
    roles = sorted({role for role, _ in shown})
    made = Counter(entry_statuses.values())
    return Check(
        "no stream showed a courier's point to a customer outside picked_up (nor to an owner"
        " outside ready and picked_up)",
        not leaks,
        f"{sum(len(orders) for orders in load.watched.values()):,} order streams followed, "
        f"in {load.stream_connections.total():,} connections ("
        + ", ".join(f"{how} {n:,}" for how, n in load.stream_connections.most_common())
        + "); events shown: "
        + "; ".join(
            f"{role} "
            + ", ".join(f"{event} {n:,}" for (r, event), n in sorted(shown.items()) if r == role)
            for role in roles
        )
        + f"\n      the followed orders' streams hold {sum(made.values()):,} points, by the "
        "status their ping read: "
        + ", ".join(f"{status} {n:,}" for status, n in made.most_common())
        + f"; {restricted:,} points shown to customers and owners, {verified:,} of them found "
        f"in their order's stream; {len(leaks)} shown outside the rule"
        + "".join(f"\n      {leak}" for leak in leaks[:10]),
    )


# A courier stands at its newest point: the one with the latest time in its track.
COURIERS_OFF_NEWEST_SQL = """
SELECT c.id, c.location_updated_at, p.recorded_at
FROM delivery_courier c
CROSS JOIN LATERAL (
    SELECT recorded_at, location FROM delivery_courierping
    WHERE courier_id = c.id ORDER BY recorded_at DESC LIMIT 1
) p
WHERE c.location_updated_at IS DISTINCT FROM p.recorded_at
   OR NOT ST_Equals(c.location::geometry, p.location::geometry)
"""


def late_pings_check(load: Load, rows) -> Check:
    sent = load.late_pings
    lost = rows(
        "SELECT l.courier_id, l.at"
        " FROM unnest(%s::bigint[], %s::timestamptz[]) AS l(courier_id, at)"
        " WHERE NOT EXISTS (SELECT 1 FROM delivery_courierping p"
        " WHERE p.courier_id = l.courier_id AND p.recorded_at = l.at)",
        [[courier for courier, _ in sent], [at for _, at in sent]],
    )
    off = rows(COURIERS_OFF_NEWEST_SQL)
    return Check(
        "late pings are kept in the track and never move the courier back",
        not lost and not off and not load.moved_back,
        f"{len(sent):,} late pings taken, {len(lost)} of them not in the track; "
        f"{len(load.moved_back)} answers with the courier off its newest point; at the end "
        f"{len(off)} couriers not at their newest point"
        + "".join(f"\n      courier {c}: late ping of {at} not in the track" for c, at in lost[:5])
        + "".join(f"\n      {text}" for text in load.moved_back[:5])
        + "".join(
            f"\n      courier {c}: its point is of {at}, its newest ping of {newest}"
            for c, at, newest in off[:5]
        ),
    )


def feed_skipped(table_ids: list[int], feed_ids: list[int]) -> list[int]:
    """The events a reader of the feed passed without being given: in the table, below
    the last id the feed gave it, and never given. (One written after the reader had read
    past its id, by a transaction that committed after a later one: an id cursor skips it
    for good.)"""
    if not feed_ids:
        return []
    given, last = set(feed_ids), max(feed_ids)
    return [event_id for event_id in table_ids if event_id <= last and event_id not in given]


def feed_check(events: list[EventRow], feed_ids: list[int]) -> Check:
    skipped = feed_skipped([event.id for event in events], feed_ids)
    by_id = {event.id: event for event in events}
    again = len(feed_ids) - len(set(feed_ids))
    return Check(
        "the event feed, followed by its cursor, skipped no event and gave none twice",
        not skipped and not again,
        f"{len(set(feed_ids)):,} events read, up to event {max(feed_ids, default=0)}, of "
        f"{len(events):,} in the table; {len(skipped)} passed without being given, "
        f"{again} given twice"
        + "".join(
            f"\n      event {event_id} ({by_id[event_id].type}, merchant "
            f"{by_id[event_id].merchant_id})"
            for event_id in skipped[:10]
        ),
    )
