"""What every anonymous `GET` route does around its own answer (catalog's nearby and
search routes, merchants' nearby and delivering-to routes): it answers only for a scheme,
host and `Accept` Django has already answered with a 200 in this process, copying that
answer's headers; it leaves the request to Django while Redis recovers from an outage or
the database rests after a failure; and it files its answer in the front cache under the
versions read before it was computed, no longer than the answer says it is true.
"""

from collections.abc import Awaitable, Callable

import psycopg
from django.conf import settings

from geomarket import answer_cache
from geomarket.answer_cache import Expiring
from geomarket.db import replicas
from geomarket.lane import async_db, front_cache
from geomarket.lane.learned_headers import Learned, LearnedHeaders, send_ok
from geomarket.lane.routes import FastRoute


def learner(learned: LearnedHeaders) -> Callable[..., None]:
    """A route's `learn_headers`: the headers of Django's 200 answers to anonymous
    requests, from answers the front cache could file (`answer_versions`)."""

    def learn_headers(route, scope, response) -> None:
        if response.status_code != 200 or response.streaming:
            return
        if response.cookies or not hasattr(response, "answer_versions"):
            return
        identity = route.auth(scope)
        if identity is not None:
            learned.learn(identity, response)

    return learn_headers


# The answer's bytes for the parsed query and the learned answer (with the instant it
# stops being true, as `Expiring`, for one that shows what the clock decides), or None
# for a request only Django should answer (a page past the end).
Answer = Callable[[dict, Learned], Awaitable[bytes | Expiring | None]]


async def respond_anonymous(
    route,
    scope,
    send,
    *,
    front: front_cache.Lookup,
    learned: LearnedHeaders,
    answer: Answer,
    label: str,
    keep: bool | Callable[[dict], bool] = True,
) -> bool:
    """Answer the request with `answer` and return True, or return False for Django to
    answer it. The answer is filed under `front`'s key and versions when `keep` (of the
    parsed query) says it may be."""
    versions = front.versions
    identity = route.auth(scope)
    headers = learned.get(identity) if identity is not None else None
    if headers is None:
        return False
    if versions is None and answer_cache.recovery_pending():
        # Redis is back after an outage: Django's cache layer invalidates what it missed.
        return False
    if async_db.resting():
        return False
    query = route.parse(scope.get("query_string", b""))
    if query is None:
        return False
    try:
        # A replica may compute it, if it has replayed the bumps of the versions it is
        # filed under.
        with replicas.replica_scope(), replicas.reads_at_least(front.min_lsn):
            body = await answer(query, headers)
    except psycopg.Error as exc:
        async_db.failed(exc, route=label)
        return False
    if body is None:
        return False
    body, expires_at = body if isinstance(body, Expiring) else (body, None)
    await send_ok(send, headers, body, (b"x-cache", b"MISS"))
    kept = keep(query) if callable(keep) else keep
    if versions is not None and front.key is not None and kept:
        await front_cache.store_answer(
            front.key,
            versions=versions,
            headers=headers.text,
            wire_headers=headers.wire,
            body=body,
            answer_expires_at=expires_at,
        )
    return True


def responder(
    *,
    enabled: str,
    learned: LearnedHeaders,
    answer: Answer,
    label: str,
    keep: bool | Callable[[dict], bool] = True,
) -> Callable[..., Awaitable[bool]]:
    """A route's `respond`: `respond_anonymous` with these, while the setting named
    `enabled` is true (read on each request, so a test or a deployment can turn it off)."""

    async def respond(route, scope, send, *, front: front_cache.Lookup) -> bool:
        if not getattr(settings, enabled):
            return False
        return await respond_anonymous(
            route,
            scope,
            send,
            front=front,
            learned=learned,
            answer=answer,
            label=label,
            keep=keep,
        )

    return respond


def anonymous_route(
    *,
    url_name: str,
    parse: Callable[[bytes], dict | None],
    statement: Callable,
    answer: Answer,
    enabled: str,
    label: str,
    keep: bool | Callable[[dict], bool] = True,
) -> FastRoute:
    """An anonymous `GET` route of the view named `url_name`, with headers learned from
    that view's answers alone, answered by `answer` while the setting `enabled` is true."""
    learned = LearnedHeaders()
    return FastRoute(
        url_name=url_name,
        parse=parse,
        statement=statement,
        auth=front_cache.anonymous_identity,
        respond=responder(enabled=enabled, learned=learned, answer=answer, label=label, keep=keep),
        learn_headers=learner(learned),
        learned=learned,
    )
