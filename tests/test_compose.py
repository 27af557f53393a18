"""The compose file's `scaled` profile runs the topology of docs/scaling.md as a whole:
a primary, a streaming replica, PgBouncer in transaction mode, two web processes behind
nginx, a worker, the outbox relay and beat, each on the connection it needs."""

import configparser
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.postgis.yml").read_text())
SERVICES = COMPOSE["services"]


def profile(name: str) -> dict[str, dict]:
    return {
        service: spec
        for service, spec in SERVICES.items()
        if name in spec.get("profiles", [name]) or "profiles" not in spec
    }


def host_of(url: str) -> str:
    return re.match(r"\w+://[^@]+@([^:/]+)", url).group(1)


def command_of(spec: dict) -> str:
    return " ".join(spec.get("command") or [])


@pytest.fixture(scope="module")
def scaled() -> dict[str, dict]:
    return profile("scaled")


def test_the_two_profiles_never_run_the_same_app_processes():
    single, scaled_only = profile("single"), profile("scaled")
    shared = set(single) & set(scaled_only)
    assert shared == {"db", "redis", "cache"}
    assert all("celery" not in command_of(SERVICES[name]) for name in shared)
    beats = [name for name, spec in scaled_only.items() if "beat" in command_of(spec)]
    assert beats == ["scaled-beat"]


def test_the_replica_streams_from_the_primary_through_a_slot():
    entrypoint = (ROOT / "deploy/compose/replica-entrypoint.sh").read_text()
    assert "pg_basebackup -h db" in entrypoint
    assert " -R " in entrypoint
    assert "-S replica_1" in entrypoint
    init = (ROOT / "deploy/compose/primary-replication.sh").read_text()
    assert "host replication" in init
    assert "pg_create_physical_replication_slot('replica_1')" in init
    assert "/docker-entrypoint-initdb.d/" in " ".join(SERVICES["db"]["volumes"])


def test_pgbouncer_pools_by_transaction_and_keeps_prepared_statements():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "deploy/compose/pgbouncer.ini")
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert int(ini["pgbouncer"]["max_prepared_statements"]) > 0
    assert ini["databases"]["*"].split() == ["host=db", "port=5432"]


def test_app_processes_use_the_pooler_the_replica_and_the_primary_where_each_belongs(scaled):
    apps = {name: spec for name, spec in scaled.items() if spec.get("build") == "."}
    assert {"web-1", "web-2", "scaled-worker", "scaled-relay", "scaled-beat"} <= set(apps)
    for name, spec in apps.items():
        env = spec["environment"]
        assert host_of(env["DATABASE_REPLICA_URLS"]) == "replica"
        assert host_of(env["DATABASE_DIRECT_URL"]) == "db"
        expected = "db" if name == "scaled-migrate" else "pgbouncer"
        assert host_of(env["DATABASE_URL"]) == expected, name


def test_nginx_balances_both_web_processes_and_does_not_buffer_streams(scaled):
    conf = (ROOT / "deploy/compose/nginx.conf").read_text()
    upstream = re.search(r"upstream geomarket_web \{(.*?)\}", conf, re.S).group(1)
    assert re.findall(r"server ([\w-]+):8000", upstream) == ["web-1", "web-2"]
    stream_block = conf[conf.index("stream/") :]
    assert "proxy_buffering off" in stream_block
    assert set(scaled["nginx"]["depends_on"]) == {"web-1", "web-2"}


def test_the_web_processes_believe_the_address_nginx_forwards_and_only_nginx(scaled):
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    # No other member of the network is reached from outside it.
    assert [name for name, spec in scaled.items() if "ports" in spec] == ["nginx"]
    for name in ("web-1", "web-2"):
        assert scaled[name]["environment"]["TRUSTED_PROXIES"] == subnet
    conf = (ROOT / "deploy/compose/nginx.conf").read_text()
    assert conf.count("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") == 2
