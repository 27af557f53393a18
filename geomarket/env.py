"""The one place that reads settings from the environment.

Every reader fails loudly on a malformed value instead of silently falling back,
so a typo in a deployment never turns into a surprising default.
"""

import ipaddress
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING = object()


def env_str(name: str, default: str | object = _MISSING) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default  # type: ignore[return-value]
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or a network in CIDR notation, as a network (an address is one of one)."""
    return ipaddress.ip_network(entry, strict=False)


def env_networks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of addresses and CIDR networks, each checked by `network`."""
    entries = env_list(name, default)
    for entry in entries:
        try:
            network(entry)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name} takes addresses and CIDR networks, got {entry!r}."
            ) from exc
    return entries


_PORTS_FILE = Path(__file__).resolve().parent.parent / "scripts" / "ports.env"


def _default_ports() -> dict[str, int]:
    ports = {}
    for line in _PORTS_FILE.read_text().splitlines():
        name, equals, value = line.partition("=")
        if equals and not name.startswith("#"):
            ports[name.strip()] = int(value)
    return ports


# Each derived port: the base it is derived from, and the offset.
_DERIVED_PORTS = {
    "REPLICA_PORT": ("PG_PORT", 1),
    "PGBOUNCER_PORT": ("PG_PORT", 2),
    "REDIS_BROKER_PORT": ("REDIS_PORT", 1),
}


def local_port(name: str) -> int:
    """The port of a project-local service (`scripts/ports.env`, as `scripts/services.sh`
    reads it): the environment's, else its default, a derived port following its base."""
    if name in _DERIVED_PORTS:
        base, offset = _DERIVED_PORTS[name]
        return env_int(name, local_port(base) + offset)
    return env_int(name, _default_ports()[name])
