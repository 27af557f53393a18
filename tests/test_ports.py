"""The project-local services' ports: one list of defaults (`scripts/ports.env`), read
alike by `scripts/services.sh` and the settings, and clear of the ports outgoing
connections are given, where a server could fail to bind on a restart."""

import os
import random
import subprocess
from pathlib import Path

import pytest

from bench.common.processes import SERVER_PORTS, free_port
from geomarket.env import local_port

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("PG_PORT", "REPLICA_PORT", "PGBOUNCER_PORT", "REDIS_PORT", "REDIS_BROKER_PORT")
# The dynamic range of IANA (RFC 6335), which BSDs and Windows take outgoing ports from.
IANA_DYNAMIC_FIRST = 49152


def _script_ports(env: dict) -> dict[str, int]:
    out = subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), "ports"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {name: int(port) for name, port in (line.split("=") for line in out.split())}


def _clean_env() -> dict:
    return {key: value for key, value in os.environ.items() if key not in NAMES}


@pytest.fixture
def no_port_variables(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_below_the_ranges_outgoing_connections_take(no_port_variables):
    first, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    defaults = {name: local_port(name) for name in NAMES}
    assert len(set(defaults.values())) == len(NAMES), defaults
    for name, port in defaults.items():
        assert 1024 <= port < min(first, IANA_DYNAMIC_FIRST), (name, port)


def test_the_script_and_the_settings_read_the_same_defaults(no_port_variables):
    assert _script_ports(_clean_env()) == {name: local_port(name) for name in NAMES}


@pytest.mark.parametrize(
    "given",
    [
        {"PG_PORT": "24001"},
        {"PG_PORT": "24001", "PGBOUNCER_PORT": "24500"},
        {"REDIS_PORT": "24101"},
        {"REDIS_PORT": "24101", "REDIS_BROKER_PORT": "24200"},
        # make exports a variable it was not given as empty: the default stands.
        {"PG_PORT": "", "REDIS_BROKER_PORT": ""},
    ],
)
def test_a_port_given_moves_the_ports_derived_from_it_alike(monkeypatch, given):
    env = {**_clean_env(), **given}
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    ports = {name: local_port(name) for name in NAMES}
    assert _script_ports(env) == ports
    for name, value in given.items():
        if value:
            assert ports[name] == int(value)
    if given.get("PG_PORT") and "PGBOUNCER_PORT" not in given:
        assert ports["PGBOUNCER_PORT"] == int(given["PG_PORT"]) + 2


def test_servers_started_by_the_bench_and_tests_get_ports_below_outgoing_ones(
    no_port_variables, monkeypatch
):
    """A port drawn for a server of a test's own is clear of the range outgoing
    connections take theirs from, and of the services' ports; a test that seeds `random`
    does not make every test worker draw the same ones."""
    first, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    services = {local_port(name) for name in NAMES}
    assert SERVER_PORTS.stop <= min(first, IANA_DYNAMIC_FIRST)
    assert not services & set(SERVER_PORTS)

    def seeded(*args):
        raise AssertionError("free_port drew from the shared generator")

    monkeypatch.setattr(random, "randrange", seeded)
    monkeypatch.setattr(random, "shuffle", seeded)
    monkeypatch.setattr(random, "sample", seeded)
    drawn = {free_port() for _ in range(20)}
    assert drawn <= set(SERVER_PORTS)
    assert len(drawn) > 1


def test_a_port_is_not_drawn_again_before_the_others():
    # Two drawn before either server binds (a test's cache and broker) were the same once:
    # at random, 500 draws from the range's 4,768 repeat one all but surely.
    drawn = [free_port() for _ in range(500)]
    assert len(set(drawn)) == len(drawn)
