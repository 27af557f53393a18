"""A cached answer is looked up in one Redis round trip: the namespace versions and the
entry together, the entry carrying the versions it was computed under."""

import pytest
from django_redis import get_redis_connection
from redis.connection import AbstractConnection

from geomarket.answer_cache import Namespace, cached_answer, version_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def trips(monkeypatch):
    """How many times a command (or a pipeline of them) is sent to Redis, on a connection
    already open."""
    get_redis_connection("default").ping()
    sent = []
    send = AbstractConnection.send_packed_command

    def counted(self, command, *args, **kwargs):
        sent.append(command)
        return send(self, command, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return sent


def answer(body: bytes):
    return cached_answer(
        name="trips",
        namespaces=(Namespace.CATALOG, Namespace.MERCHANTS),
        params={"q": "tea"},
        compute=lambda: body,
    )


def test_a_hit_is_one_round_trip_and_a_bump_makes_it_a_miss(trips):
    assert answer(b"first") == (b"first", False, {"catalog": "0", "merchants": "0"}, None)
    assert len(trips) == 2  # the lookup, then the entry filed
    trips.clear()
    hit = answer(b"unused")
    assert (hit.body, hit.hit, hit.versions) == (b"first", True, {"catalog": "0", "merchants": "0"})
    assert len(trips) == 1
    get_redis_connection("default").incr(version_key("merchants"))
    again = answer(b"second")
    assert (again.body, again.hit, again.versions["merchants"]) == (b"second", False, "1")
    assert answer(b"unused").body == b"second"
