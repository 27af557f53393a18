"""Settings come from the environment; production refuses unsafe defaults."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "REDIS_PORT",
    "REDIS_BROKER_PORT",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "PORT",
    "DJANGO_SETTINGS_MODULE",
)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_development_defaults_work_with_no_environment():
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    result = manage("check", DJANGO_SETTINGS_MODULE="geomarket.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_deploy_check_reports_nothing():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "DEBUG",
        DJANGO_SETTINGS_MODULE="geomarket.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="geomarket.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_read_the_environment():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['PORT'], s.CACHES['default']['LOCATION'],"
        " s.CELERY_BROKER_URL, s.DEBUG, s.ALLOWED_HOSTS, s.PORT,"
        " s.DATABASES['default']['CONN_HEALTH_CHECKS'], s.DATABASES['default']['ATOMIC_REQUESTS'])"
    )
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        code,
        DATABASE_URL="postgres://u:p@db.internal:6543/gm",
        REDIS_URL="redis://cache.internal:6380/2",
        DEBUG="false",
        ALLOWED_HOSTS="a.example,b.example",
        PORT="9001",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "6543",
        "redis://cache.internal:6380/2",
        "redis://cache.internal:6380/2",
        "False",
        "['a.example',",
        "'b.example']",
        "9001",
        "True",
        "False",
    ]


def test_malformed_boolean_fails_loudly():
    result = manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_the_local_broker_is_a_redis_server_apart_from_the_cache():
    code = "from django.conf import settings as s; print(s.REDIS_URL, s.CELERY_BROKER_URL)"
    result = manage("shell", "--verbosity", "0", "-c", code, REDIS_PORT="7001")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:7001/0", "redis://127.0.0.1:7002/0"]
    apart = manage("shell", "--verbosity", "0", "-c", code, REDIS_BROKER_PORT="7101")
    assert apart.stdout.split()[1] == "redis://127.0.0.1:7101/0"


def test_djangos_sessions_run_without_jit(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
