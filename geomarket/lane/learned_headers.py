"""The headers of Django's answers, for the fast routes that answer on the ASGI event loop
(`geomarket.lane.routes`).

A route answers a request only when Django has already answered one like it in this
process with a 200: same path, scheme, host, forwarded scheme and `Accept`. It copies
the headers of that answer (security headers, `Vary`, `Allow`, `Content-Type`), so its
answer carries what Django's middleware would set, and only for hosts that Django's host
validation and HTTPS redirect let through.
"""

from typing import NamedTuple

from geomarket.lane import front_cache


class Learned(NamedTuple):
    text: list[tuple[str, str]]
    # The same, encoded for ASGI.
    wire: list[tuple[bytes, bytes]]
    # The absolute URL of the path, as Django built it for this scheme and host
    # (`response.base_url`, set by views whose answers hold links), or None.
    base_url: str | None = None


class LearnedHeaders:
    """Clients choose their `Accept` header freely: past `max_keys` keys the rest go to
    Django, so no stream of made-up headers can grow the process without bound."""

    def __init__(self, *, max_keys: int = 256):
        self.max_keys = max_keys
        self._by_key: dict[tuple, Learned] = {}

    def learn(self, key: tuple, response) -> None:
        if key not in self._by_key and len(self._by_key) >= self.max_keys:
            return
        headers = front_cache.answer_headers(response)
        self._by_key[key] = Learned(
            headers, front_cache.encode_headers(headers), getattr(response, "base_url", None)
        )

    def get(self, key: tuple) -> Learned | None:
        return self._by_key.get(key)

    def clear(self) -> None:
        self._by_key.clear()

    def __len__(self) -> int:
        return len(self._by_key)


async def send_ok(send, headers: Learned, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    """A 200 with Django's learned headers, then `extra` ones, around `body`."""
    wire = [*headers.wire, *extra, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": wire})
    await send({"type": "http.response.body", "body": body})
