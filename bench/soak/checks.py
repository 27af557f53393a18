"""After the load: the outbox and the worker drained, then the invariants checked in SQL."""

import json
import time
from collections import Counter
from dataclasses import dataclass

import psycopg

from bench.common.report import log
from bench.soak.city import Marks
from bench.soak.config import ACTIVE_STATUSES, ALLOWED_TRANSITIONS, SOLD_STATUSES
from bench.soak.load import CAPACITY_SQL, Load
from bench.soak.stack import Supervisor


def drain(dsn: str, marks: Marks, timeout: float, supervisor: Supervisor) -> tuple[int, int]:
    """Wait for the outbox to empty and every confirmation to be recorded."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last_log = 0.0
    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            pending, missing = connection.execute(
                """
                SELECT (SELECT count(*) FROM orders_outboxmessage WHERE published_at IS NULL),
                       (SELECT count(*) FROM orders_order o
                        WHERE o.id > %s AND o.status <> 'rejected' AND NOT EXISTS (
                            SELECT 1 FROM orders_ordernotification n
                            WHERE n.order_id = o.id AND n.kind = 'confirmation'))
                """,
                [marks.order_id],
            ).fetchone()
            now = time.monotonic()
            if (pending == 0 and missing == 0) or now > deadline:
                log(
                    f"drain: {pending} outbox rows pending, {missing} confirmations missing"
                    f" after {now - started:.0f} s"
                )
                return pending, missing
            if now - last_log > 10:
                log(f"  draining: {pending} outbox rows pending, {missing} confirmations missing")
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


def checks_run(dsn: str, marks: Marks, load: Load, drained: tuple[int, int]) -> list[Check]:
    results: list[Check] = []
    with psycopg.connect(dsn, autocommit=True) as connection:

        def rows(sql: str, params=None) -> list[tuple]:
            return connection.execute(sql, params).fetchall()

        # 1. Stock: start + restocks - what non-rejected, non-cancelled soak orders took.
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
        touched, checked, units, restocked = rows(
            """
            SELECT (SELECT count(DISTINCT i.product_id) FROM orders_orderitem i
                    WHERE i.order_id > %(order)s),
                   (SELECT count(*) FROM inventory_inventory),
                   (SELECT coalesce(sum(i.quantity), 0) FROM orders_orderitem i
                    JOIN orders_order o ON o.id = i.order_id
                    WHERE o.id > %(order)s AND o.status = ANY(%(sold)s)),
                   (SELECT coalesce(sum(delta), 0) FROM inventory_inventoryadjustment
                    WHERE id > %(adjustment)s)
            """,
            {
                "order": marks.order_id,
                "adjustment": marks.adjustment_id,
                "sold": list(SOLD_STATUSES),
            },
        )[0]
        results.append(
            Check(
                "stock = start + restocks - sold (non-rejected, non-cancelled soak orders)",
                not mismatches,
                f"{checked:,} products, {touched:,} ordered, {units:,} units sold, "
                f"{restocked:,} restocked; {len(mismatches)} mismatches"
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
            " AND status IN ('picked_up', 'delivered')",
            [marks.order_id],
        )
        results.append(
            Check(
                "picked-up and delivered orders have a courier",
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
                drained[0] == 0,
                f"{drained[0]} outbox rows unpublished after the drain",
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

    # 5. HTTP: no 5xx (healthz apart), no failed request, idempotent retries agree.
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
