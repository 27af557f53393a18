from geomarket.env import env_str

from .base import *  # noqa: F403
from .base import CACHES, DATABASES

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
