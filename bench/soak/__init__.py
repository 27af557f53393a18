"""`make soak`: a mixed workload against the production stack, Redis faults, then invariants.

1. Recreate the database `geomarket_soak` (or `SOAK_DATABASE_URL`): migrate, then seed a
   city of 200 merchants x 40 products with 2,000 orders of history and 60 couriers.
2. Start everything as subprocesses of this one: two redis-servers of its own (one as
   `REDIS_URL`: the cache, the rate limiter and the Celery results; one as the Celery
   broker), the production web server (uvicorn), a Celery worker, a webhook worker, the
   outbox relay, Celery beat, and two webhook receivers on loopback (one healthy, one
   failing), registered as endpoints through the API. Rate limits are lifted through the
   environment; the limiter still runs on every request it guards. A process that exits
   is restarted, and the exit reported.
3. Drive a mixed workload for `SOAK_SECONDS` (default 300) with async httpx clients:
   searches, nearby, delivering-to, suggest and ETA; orders on a few hot products with
   little stock and on many cold ones (some with an Idempotency-Key, some retried with
   it); customers cancelling; owners moving orders through preparing and ready,
   cancelling a few and restocking the hot products; operators running priority
   assignment (two at once), courier candidates and analytics; couriers pinging their
   location (some points sent late), picking up and delivering what they were assigned;
   customers, owners and others following orders' live streams; new customers signing
   up and logging in.
4. Faults while the load goes on: both redis-servers stopped for up to 25 s (the cache
   and the broker at once, as when the one Redis of a deployment goes down), and later
   the broker alone for up to 20 s. `/healthz` is polled apart and says what it sees.
5. Stop the load, let the outbox relay and the workers drain (until the healthy receiver
   has every event), check the invariants (in SQL, against the receivers' logs and what
   each stream showed) and print each with PASS or FAIL; any FAIL makes the exit status 1.

Every subprocess is stopped at the end, also on Ctrl-C or an error; the logs of the run
stay in `.local/soak/` until the next one.
"""
