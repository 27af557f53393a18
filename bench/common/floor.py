"""The HTTP floor: the cheapest answer uvicorn and the load generator allow.

It answers every request at once with a fixed JSON body of `FLOOR_BODY_BYTES`, no
database, no cache. Measured beside the API in the same run, it shows how much of an
endpoint's latency is the server and the load generator themselves, before any work.
"""

import json
import os

_SIZE = int(os.environ.get("FLOOR_BODY_BYTES", "2"))
_BODY = json.dumps({"results": "x" * max(0, _SIZE - 16)}).encode()
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
