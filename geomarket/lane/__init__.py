"""The event-loop lane: requests the ASGI server answers without entering Django.

Django's request cycle costs a few milliseconds of CPU around answers that PostgreSQL or
Redis give in a fraction of one, so `geomarket.asgi.SingleHopASGIHandler` first tries
this lane, on the event loop:
- `front_cache` (with `near_cache` and `redis_async`): a current answer Django already gave
  to the same anonymous request;
- the fast routes the apps declare (`routes.FastRoute`, listed by the `FAST_ROUTES`
  setting): one statement through the lane's own pool (`async_db`), answered with the
  headers Django set on its own answer to a request like it (`learned_headers`).

Everything the lane does not answer goes to Django unchanged. Because the lane replays
what Django's middleware did to an earlier answer, `checks` refuses to start with a
middleware whose work differs from one request to the next.
"""
