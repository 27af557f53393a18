from geomarket.env import env_str, local_port

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, MIDDLEWARE, REPLICA_ALIASES, replica_database

DEBUG = False

# pytest-django creates and drops the test database; a pool bound to it would outlive it.
DATABASES["default"]["OPTIONS"].pop("pool", None)
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Tests share the Redis server with a running dev stack; a prefix of their own keeps apart.
CACHES["default"]["KEY_PREFIX"] = "geomarket-test"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# pytest uses locmem whatever this says; worker processes started by tests read the
# environment, so a test can give them a backend it can observe from outside.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

# Two test runs at once (say, from two checkouts) each need their own database. Under
# pytest-xdist, pytest-django appends each worker's id to it: name_gw0, name_gw1.
_test_database_name = env_str("TEST_DATABASE_NAME", "")
if _test_database_name:
    DATABASES["default"]["TEST"] = {"NAME": _test_database_name}

# Django's backend but for emptying the tables after each transactional test, by `DELETE`
# in milliseconds where `TRUNCATE` takes half a second (tests/db/postgis/base.py).
DATABASES["default"]["ENGINE"] = "tests.db.postgis"

# The replica of `make replica` (or the DATABASE_REPLICA_URLS given) as replica_0...,
# under the test database's name (Django's TEST MIRROR: the primary's test database
# reaches it by replication). No read goes to one unless a test names it in
# REPLICA_ALIASES (tests/replica): the other tests' rows, in transactions, never reach it.
TEST_REPLICA_ALIASES = REPLICA_ALIASES or ["replica_0"]
if not REPLICA_ALIASES:
    _replica_port = local_port("REPLICA_PORT")
    DATABASES["replica_0"] = replica_database(
        f"postgis://geomarket:geomarket@127.0.0.1:{_replica_port}/geomarket"
    )
for _alias in TEST_REPLICA_ALIASES:
    DATABASES[_alias]["OPTIONS"].pop("pool", None)
    DATABASES[_alias].update(ENGINE=DATABASES["default"]["ENGINE"], CONN_MAX_AGE=0)
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}
REPLICA_ALIASES = []
DATABASE_ROUTERS = ["geomarket.db.replicas.ReplicaRouter"]
if "geomarket.db.replicas.ReplicaReadsMiddleware" not in MIDDLEWARE:
    MIDDLEWARE.insert(1, "geomarket.db.replicas.ReplicaReadsMiddleware")
