"""Settings shared by every environment; development, test and production override a few."""

import copy
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from geomarket.env import env_bool, env_int, env_list, env_networks, env_str, local_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# The project-local services of `make services` (their ports: scripts/ports.env).
DEFAULT_DATABASE_URL = f"postgis://geomarket:geomarket@127.0.0.1:{local_port('PG_PORT')}/geomarket"
DEFAULT_REDIS_URL = f"redis://127.0.0.1:{local_port('REDIS_PORT')}/0"
# The broker has a Redis server of its own (append-only, unlike the cache's).
DEFAULT_BROKER_URL = f"redis://127.0.0.1:{local_port('REDIS_BROKER_PORT')}/0"

SECRET_KEY = env_str("SECRET_KEY", "insecure-development-key-not-for-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
PORT = env_int("PORT", 8000)

# The apps of the marketplace's domain, lowest first; each declares its own paths under
# /api/v1/ in its `urls` module (geomarket/urls.py).
DOMAIN_APPS = (
    "merchants",
    "catalog",
    "inventory",
    # Below every app that records events, above none of them.
    "events",
    "orders",
    "delivery",
    "analytics",
    "tracking",
)

# Apps with paths outside /api/v1/ (map tiles), in their `site_urls` module.
SITE_URL_APPS = ("merchants", "console")

INSTALLED_APPS = [
    "geomarket.admin_site.GeoMarketAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "geomarket.accounts",
    "geomarket.cache",
    # The event-loop lane's start-up checks.
    "geomarket.lane",
    # The vendored map library and the offline admin map widget.
    "geomarket.maps",
    *DOMAIN_APPS,
    # The operations console, above every domain app.
    "console",
    # Seeds the tables of every app above; nothing imports it.
    "demo",
]

MIDDLEWARE = [
    "geomarket.api.middleware.RequestBodyLimitMiddleware",
    # Public reads open to web maps on other origins (geomarket/api/cors.py).
    "geomarket.api.cors.PublicReadsCorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "geomarket.urls"
# Like every other error, a refused form post answers JSON, not an HTML page.
CSRF_FAILURE_VIEW = "geomarket.api.views.csrf_failure"
# The functions that a lower app calls in a higher one (geomarket.hooks), by hook.
HOOKS = {
    # After an order's status changed, in its transaction: order, from_status, to_status.
    "order_transitioned": [
        "delivery.services.courier_order_transitioned",
        "analytics.services.rollups_order_transitioned",
    ],
    # Before products are deleted with what cascades from them: product_ids.
    "products_deleting": ["inventory.locks.inventory_rows_lock"],
}
WSGI_APPLICATION = "geomarket.wsgi.application"
ASGI_APPLICATION = "geomarket.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# A transaction pooler. What needs a session of its own across transactions, which a
# transaction pooler gives no client, goes to PostgreSQL itself, DATABASE_DIRECT_URL: the
# outbox relay's LISTEN, session-level advisory locks (geomarket/locks.py), and the tests'
# CREATE and DROP DATABASE, which a pooler's idle server connections would hold up. Only
# its address and credentials are used: the database is the app's (under tests, the test
# database). With PGBOUNCER on, DATABASE_URL defaults to the project-local PgBouncer
# (scripts/services.sh, on PGBOUNCER_PORT), which forwards every database to the local
# PostgreSQL; so a DATABASE_URL at that PgBouncer (a test's child process, say) has the
# local PostgreSQL as its direct address. Any other defaults to DATABASE_URL: no pooler.
PGBOUNCER = env_bool("PGBOUNCER", False)
PGBOUNCER_PORT = local_port("PGBOUNCER_PORT")
DEFAULT_PGBOUNCER_URL = f"postgis://geomarket:geomarket@127.0.0.1:{PGBOUNCER_PORT}/geomarket"
DATABASE_URL = env_str("DATABASE_URL", DEFAULT_PGBOUNCER_URL if PGBOUNCER else DEFAULT_DATABASE_URL)
_app_database = dj_database_url.parse(DATABASE_URL)
if env_str("DATABASE_DIRECT_URL", ""):
    DATABASE_DIRECT = dj_database_url.parse(env_str("DATABASE_DIRECT_URL", ""))
elif (_app_database["HOST"], _app_database["PORT"]) == ("127.0.0.1", PGBOUNCER_PORT):
    DATABASE_DIRECT = {**_app_database, "PORT": local_port("PG_PORT")}
else:
    DATABASE_DIRECT = _app_database
DATABASE_POOLED = any(DATABASE_DIRECT[key] != _app_database[key] for key in ("HOST", "PORT"))
# CONN_HEALTH_CHECKS makes the pool check each connection it lends (a poll of its socket,
# geomarket/db/pool.py), so connections broken by a database restart are replaced
# instead of failing a request.
# Pooling suits the ASGI server: each request borrows a connection and returns it,
# instead of every request thread opening its own persistent connection.
DATABASE_POOL = env_bool("DATABASE_POOL", True)
DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", 20)
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 3)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        engine="geomarket.db.postgis",
        conn_max_age=0 if DATABASE_POOL else env_int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
# The API's statements are short; PostgreSQL compiles JIT code for any whose estimated cost
# passes its thresholds, and estimates over many rows overshoot: the old reports spent 0.5
# to 1.5 s compiling. The event-loop pool turns it off the same way (lane/async_db.py).
# A transaction pooler refuses startup options it cannot restore per client, as jit is:
# there it is off on the pooler's server connections (the local PgBouncer's connect_query;
# elsewhere `ALTER ROLE ... SET jit = off`).
if not DATABASE_POOLED:
    _session_options = DATABASES["default"]["OPTIONS"].get("options", "")
    DATABASES["default"]["OPTIONS"]["options"] = f"{_session_options} -c jit=off".strip()
if DATABASE_POOL:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX,
        "timeout": DATABASE_CONNECT_TIMEOUT,
    }

REDIS_URL = env_str("REDIS_URL", DEFAULT_REDIS_URL)
CACHE_TIMEOUT_SECONDS = env_int("CACHE_TIMEOUT_SECONDS", 60)
# After a Redis failure, answers skip the cache this long before trying Redis again.
CACHE_BREAKER_SECONDS = float(env_str("CACHE_BREAKER_SECONDS", "5"))
# Public, unmetered answers that the ASGI server may answer from Redis before Django
# (geomarket/lane/front_cache.py). Rate-limited paths must never be listed.
FRONT_CACHE_PATHS = (
    frozenset(
        {
            "/api/v1/products/nearby/",
            "/api/v1/merchants/delivering-to/",
            "/api/v1/search/products/",
        }
    )
    if env_bool("FRONT_CACHE", True)
    else frozenset()
)
# Each server process keeps a copy of the front-cache entries it served lately, this many
# bytes at most (0 turns it off), kept current by Redis (geomarket/lane/near_cache.py). Its
# connection to Redis must answer a heartbeat this often for the copy to be used.
NEAR_CACHE_BYTES = env_int("NEAR_CACHE_BYTES", 32 * 1024 * 1024)
NEAR_CACHE_HEARTBEAT_SECONDS = float(env_str("NEAR_CACHE_HEARTBEAT_SECONDS", "0.5"))
# The modules declaring the fast routes: requests answered on the ASGI event loop
# (geomarket/lane/routes.py), through a pool of its own (geomarket/lane/async_db.py).
FAST_ROUTES = [
    "catalog.nearby_route",
    "catalog.search_route",
    "merchants.lane_routes",
    "analytics.route",
    "delivery.ping_route",
]
# Anonymous, valid products/nearby requests (catalog/nearby_route.py). The lane's pool
# prepares a statement on its second use, and so do Django's connections for the
# statements run through their `prepared_cursor` (geomarket/db/postgis/base.py; their
# other cursors prepare nothing); set ASYNC_DB_PREPARE_THRESHOLD to "off" behind a
# connection pooler that cannot keep prepared statements (PgBouncer before 1.21, in
# transaction mode).
NEARBY_ROUTE = env_bool("NEARBY_ROUTE", True)
# Anonymous, valid search/products requests (catalog/search_route.py), the same way.
SEARCH_ROUTE = env_bool("SEARCH_ROUTE", True)
# Anonymous, valid merchants/nearby and delivering-to requests (merchants/lane_routes.py),
# the same way.
MERCHANT_ROUTES = env_bool("MERCHANT_ROUTES", True)
# Operators' revenue and one-merchant top-products reports, answered the same way
# (analytics/route.py).
ANALYTICS_ROUTE = env_bool("ANALYTICS_ROUTE", True)
# Couriers' location pings, answered the same way (delivery/ping_route.py).
PING_ROUTE = env_bool("PING_ROUTE", True)
_prepare_threshold = env_str("ASYNC_DB_PREPARE_THRESHOLD", "1")
ASYNC_DB_PREPARE_THRESHOLD = None if _prepare_threshold == "off" else int(_prepare_threshold)
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = ASYNC_DB_PREPARE_THRESHOLD

# Read replicas (geomarket/db/replicas.py): each URL of DATABASE_REPLICA_URLS is the
# database alias replica_0, replica_1... with the primary's options. Only the read-only
# selectors marked `replica_reads` read from them, from one that is up, lags at most
# REPLICA_MAX_LAG_SECONDS (read every REPLICA_CHECK_SECONDS per process) and has replayed
# what the read needs: a client's own writes of the last REPLICA_STICKY_SECONDS, the
# cache versions its answer is filed under.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
REPLICA_MAX_LAG_SECONDS = float(env_str("REPLICA_MAX_LAG_SECONDS", "5"))
REPLICA_CHECK_SECONDS = float(env_str("REPLICA_CHECK_SECONDS", "1"))
REPLICA_STICKY_SECONDS = env_int("REPLICA_STICKY_SECONDS", 30)


def replica_database(url: str) -> dict:
    """A replica's DATABASES entry: the primary's, at the replica's address."""
    parsed = dj_database_url.parse(url)
    return {
        **copy.deepcopy(DATABASES["default"]),
        **{key: parsed[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
    }


REPLICA_ALIASES = [f"replica_{index}" for index in range(len(DATABASE_REPLICA_URLS))]
for _alias, _url in zip(REPLICA_ALIASES, DATABASE_REPLICA_URLS, strict=True):
    DATABASES[_alias] = replica_database(_url)
if REPLICA_ALIASES:
    DATABASE_ROUTERS = ["geomarket.db.replicas.ReplicaRouter"]
    MIDDLEWARE.insert(1, "geomarket.db.replicas.ReplicaReadsMiddleware")

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "TIMEOUT": CACHE_TIMEOUT_SECONDS,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "geomarket"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # Every model permission to an active operator: the admin is theirs (API.md).
    "geomarket.accounts.backends.OperatorBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "geomarket.accounts.validators.NotOnlyWhitespaceValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# Maps (geomarket/maps): where a map opens, and a tile server to draw under geometries,
# `{z}/{x}/{y}` in the URL. Empty: a plain background, which needs no internet access.
MAP_CENTER = (float(env_str("MAP_CENTER_LAT", "52.52")), float(env_str("MAP_CENTER_LNG", "13.405")))
MAP_TILE_URL = env_str("MAP_TILE_URL", "")
STATIC_ROOT = BASE_DIR / ".local" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# gis.W001 warns that GDAL older than 3.9 (Debian 12 ships 3.6) cannot block file and
# network access while reading spatial references. Client geometries never reach GDAL:
# `geomarket.geo` builds them from plain coordinates with GEOS and ignores any "crs".
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

CURRENCY = env_str("CURRENCY", "EUR")
# The zone of a merchant that names none (an IANA name).
DEFAULT_MERCHANT_TIMEZONE = env_str("DEFAULT_MERCHANT_TIMEZONE", "UTC")

# Larger request bodies are refused with 413 before any parser reads them.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES

# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed; nobody
# else's is, whatever the web server in front of Django would believe (scripts/serve).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES", [])
SUGGEST_RATE_LIMIT_PER_MINUTE = env_int("SUGGEST_RATE_LIMIT_PER_MINUTE", 20)
# Credential guessing and account farming: per client IP.
TOKEN_RATE_LIMIT_PER_MINUTE = env_int("TOKEN_RATE_LIMIT_PER_MINUTE", 10)
REGISTER_RATE_LIMIT_PER_MINUTE = env_int("REGISTER_RATE_LIMIT_PER_MINUTE", 5)
# Order placement: per user and per IP (many accounts behind one address).
ORDER_RATE_LIMIT_PER_MINUTE = env_int("ORDER_RATE_LIMIT_PER_MINUTE", 30)
ORDER_IP_RATE_LIMIT_PER_MINUTE = env_int("ORDER_IP_RATE_LIMIT_PER_MINUTE", 120)

# Dispatch: a courier location older than this is stale (the courier is offline).
COURIER_LOCATION_TTL = env_int("COURIER_LOCATION_TTL", 300)
DISPATCH_MAX_DISTANCE_M = env_int("DISPATCH_MAX_DISTANCE_M", 10_000)
# Couriers' tracks (every ping) are kept this many days, pruned by whole UTC days.
COURIER_TRACK_RETENTION_DAYS = env_int("COURIER_TRACK_RETENTION_DAYS", 30)
# Geofences (metres, on the spheroid): an assigned courier this near the merchant before
# pickup, or the delivery point after it.
GEOFENCE_MERCHANT_M = env_int("GEOFENCE_MERCHANT_M", 75)
GEOFENCE_ARRIVING_M = env_int("GEOFENCE_ARRIVING_M", 500)
# Live order streams (GET orders/{id}/stream/): a comment line at least this often keeps
# proxies from closing an idle stream; a reconnecting client gets the events of this long.
ORDER_STREAM_KEEPALIVE_SECONDS = float(env_str("ORDER_STREAM_KEEPALIVE_SECONDS", "15"))
ORDER_STREAM_HISTORY_SECONDS = env_int("ORDER_STREAM_HISTORY_SECONDS", 3600)
# The console's courier stream (every courier's moves): what a reconnect can resume. Short,
# as a reconnecting console reads the couriers' snapshot again too.
COURIER_STREAM_HISTORY_SECONDS = env_int("COURIER_STREAM_HISTORY_SECONDS", 60)
# An open live stream (an order's, the console's couriers') reads its caller's standing
# again this often, and ends once the caller may no longer follow it (deactivated, no
# longer the order's party, no longer staff or owner).
STREAM_RECHECK_SECONDS = float(env_str("STREAM_RECHECK_SECONDS", "30"))
# How long a stream ticket (POST orders/{id}/stream-ticket/) may wait for its one use.
STREAM_TICKET_SECONDS = env_int("STREAM_TICKET_SECONDS", 60)

# ETA: the provider ("geodesic", "osrm" or a dotted path to a provider class), and the
# built-in geodesic estimate it falls back to: distance / speed + preparation time.
ETA_PROVIDER = env_str("ETA_PROVIDER", "geodesic")
ETA_OSRM_URL = env_str("ETA_OSRM_URL", "http://127.0.0.1:5000")
ETA_PROVIDER_TIMEOUT_SECONDS = float(env_str("ETA_PROVIDER_TIMEOUT_SECONDS", "1.0"))
ETA_DEADLINE_SECONDS = float(env_str("ETA_DEADLINE_SECONDS", "2.5"))
ETA_MAX_IN_FLIGHT = env_int("ETA_MAX_IN_FLIGHT", 25)
ETA_PREPARATION_SECONDS = env_int("ETA_PREPARATION_SECONDS", 600)
ETA_DEFAULT_VEHICLE = env_str("ETA_DEFAULT_VEHICLE", "bike")
ETA_SPEEDS_M_PER_S = {"bike": 4.2, "scooter": 6.9, "car": 8.3}
# Couriers' routes (POST couriers/{id}/route/): the solver's time budget for one plan
# (exhausted: the greedy plan), and how many of a courier's active orders one plan takes.
ROUTE_SOLVE_SECONDS = float(env_str("ROUTE_SOLVE_SECONDS", "0.7"))
ROUTE_MAX_ORDERS = env_int("ROUTE_MAX_ORDERS", 30)

HEALTHCHECK_TIMEOUT_SECONDS = env_int("HEALTHCHECK_TIMEOUT_SECONDS", 2)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "geomarket.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": ["geomarket.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "geomarket.api.renderers.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "geomarket.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "geomarket.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "geomarket.api.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "GeoMarket API",
    "DESCRIPTION": "Local-delivery marketplace: geo search, merchant dashboard, orders, "
    "courier dispatch and operator analytics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "geomarket.api.schema.add_plain_views",
        "geomarket.api.schema.partial_nested_patches",
        "geomarket.api.geojson.feature_collection_schemas",
    ],
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.OrderStatus",
        "CourierStatusEnum": "delivery.models.CourierStatus",
        "CourierSelfStatusEnum": ["available", "offline"],
        "VehicleEnum": "delivery.models.Vehicle",
        "EventTypeEnum": "events.models.EventType",
        "IncidentKindEnum": "orders.models.IncidentKind",
    },
}

# An external REDIS_URL without a CELERY_BROKER_URL serves as the broker too.
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL", REDIS_URL if env_str("REDIS_URL", "") else DEFAULT_BROKER_URL
)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Webhook deliveries have a queue (and workers) of their own: a slow receiver holds up
# only other deliveries.
WEBHOOK_QUEUE = "webhooks"
CELERY_TASK_ROUTES = {"events.webhook_deliver": {"queue": WEBHOOK_QUEUE}}
CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {"task": "orders.outbox_relay", "schedule": 5.0},
    # Version bumps that writes could not make while Redis was failing (answer_cache).
    "pending-version-bumps": {
        "task": "geomarket.pending_bumps_retry",
        "schedule": 1.0,
        # A run that waited this long is superseded by a later one.
        "options": {"expires": 10.0},
    },
    "prune-idempotency-keys": {"task": "orders.prune_idempotency_keys", "schedule": 3600.0},
    "stale-couriers": {"task": "delivery.mark_stale_couriers_offline", "schedule": 60.0},
    # Track partitions a week ahead, and those past retention dropped.
    "courier-track-partitions": {
        "task": "delivery.courier_track_partitions",
        "schedule": crontab(hour=0, minute=30),
    },
    # Each merchant's open periods, kept on its row for the hours filters, reach 16 days
    # ahead; those refreshed over a day ago are refreshed again.
    "open-periods": {"task": "merchants.open_periods_refresh", "schedule": 3600.0},
    # Each merchant's preparation time, learned from its orders of the last 28 days.
    "learned-prep-times": {"task": "orders.prep_times_learn", "schedule": 3600.0},
    "daily-inventory-summary": {
        "task": "inventory.daily_inventory_summary",
        "schedule": crontab(hour=0, minute=0),
    },
}

# Webhook URLs must be https and resolve to public addresses; this lets development and
# tests deliver to a receiver on loopback, over plain http too.
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
# A delivery handed to the broker whose attempt is not recorded this long after is handed
# over again (events.models.WebhookPending): far above a task's run (the POST's timeout)
# and a normal queue's wait, far below Redis's visibility timeout.
WEBHOOK_RESEND_SECONDS = env_int("WEBHOOK_RESEND_SECONDS", 300)
# The same for the order outbox's tasks (orders.models.OutboxMessage): a published message
# whose task has not run this long after is sent again.
OUTBOX_RESEND_SECONDS = env_int("OUTBOX_RESEND_SECONDS", 300)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / ".local" / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "GeoMarket <no-reply@geomarket.local>")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django logs every 4xx as a warning: a refused order, a wrong token, a bad page.
        # Those are the clients' mistakes, told to them in the answer, and logging each
        # cost about 0.1 ms of a refused order's 3 ms budget; 5xx are still logged.
        "django.request": {"level": env_str("REQUEST_LOG_LEVEL", "ERROR")},
    },
}
