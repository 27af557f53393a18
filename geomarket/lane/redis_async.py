"""A lean asyncio Redis connection for the commands the ASGI server sends on every search
request before Django (`geomarket.lane.front_cache`): one `MGET` to look an answer up,
one `SET` to file one.

redis-py's asyncio client spent about a third of such a request's CPU on its own
machinery (a connection pool checkout, a retry wrapper and stream readers around each
command). This is one connection per event loop that every request pipelines its
commands on: a command is written at once, and replies, which Redis sends in order, are
handed to the waiting callers in that order. hiredis parses them.

A command that fails or times out closes the connection, failing the commands queued on
it; the next command opens a new one, unless the connection carries state of its own
(`reconnect=False`). Timeouts are kept by one watchdog per connection,
which looks at the oldest command still waiting, rather than by a timer per command.
Errors are redis-py's exception classes, so callers handle them as they handle redis-py's.

A connection given `on_message` may also subscribe: Pub/Sub messages are handed to that
callback as they come, and only the replies to commands go to callers.
"""

import asyncio
import collections
import select
import ssl
from collections.abc import Callable

import hiredis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

MessageHandler = Callable[[list], None]


class _RespProtocol(asyncio.Protocol):
    def __init__(
        self,
        timeout: float,
        on_message: MessageHandler | None = None,
        on_lost: Callable[[], None] | None = None,
    ):
        self.timeout = timeout
        self.on_message = on_message
        self.on_lost = on_lost
        self.reader = hiredis.Reader()
        # (deadline, waiter) of each command sent, in the order Redis will answer them.
        self.waiting: collections.deque[tuple[float, asyncio.Future]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.timed_out = False
        self.loop = asyncio.get_running_loop()
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.poller = select.poll()
        self.poller.register(transport.get_extra_info("socket").fileno(), select.POLLIN)

    def data_received(self, data):
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if self.on_message is not None and type(reply) is list and reply[:1] == [b"message"]:
                self.on_message(reply)
                continue
            _, waiter = self.waiting.popleft()
            if waiter.done():  # its caller was cancelled
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(ResponseError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc):
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.timed_out:
            error = RedisTimeoutError("Redis did not answer in time")
        else:
            error = RedisConnectionError(f"Redis connection lost: {exc!r}")
        while self.waiting:
            _, waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if self.on_lost is not None:
            self.on_lost()

    def send(self, command: bytes) -> asyncio.Future:
        waiter = self.loop.create_future()
        # Queued and written in one step, so replies meet their callers in order.
        self.waiting.append((self.loop.time() + self.timeout, waiter))
        self.transport.write(command)
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(self.timeout, self._watch)
        return waiter

    def _watch(self):
        self.watchdog = None
        if not self.waiting or self.closed:
            return
        deadline = self.waiting[0][0]
        if self.loop.time() >= deadline:
            # The oldest command is overdue: the connection may be stuck, and no later
            # command should queue behind it.
            self.timed_out = True
            self.close()
            return
        self.watchdog = self.loop.call_at(deadline, self._watch)

    def close(self):
        if self.transport is not None and not self.closed:
            self.transport.close()


class RedisPipe:
    """Commands to the Redis server at `url`, pipelined on one connection."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        connect_timeout: float,
        on_message: MessageHandler | None = None,
        on_lost: Callable[[], None] | None = None,
        reconnect: bool = True,
    ):
        self.url = url
        self.reconnect = reconnect
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.on_message = on_message
        self.on_lost = on_lost
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Lock | None = None

    def connected(self) -> bool:
        """Whether the connection is open, as far as this process has read its socket."""
        protocol = self._protocol
        return protocol is not None and not protocol.closed and not protocol.transport.is_closing()

    def readable(self) -> bool:
        """Whether the socket holds bytes (or a hang-up) the event loop has not read yet."""
        protocol = self._protocol
        return protocol is not None and bool(protocol.poller.poll(0))

    async def _connection(self) -> _RespProtocol:
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        if self._protocol is not None and not self.reconnect:
            raise RedisConnectionError("Redis connection lost")
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or self._protocol.closed:
                self._protocol = await self._connect()
        return self._protocol

    async def _connect(self) -> _RespProtocol:
        options = parse_url(self.url)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if "path" in options:
                    _, protocol = await loop.create_unix_connection(
                        self._protocol_factory, options["path"]
                    )
                else:
                    secure = options.get("connection_class") is SSLConnection
                    _, protocol = await loop.create_connection(
                        self._protocol_factory,
                        options.get("host", "localhost"),
                        options.get("port", 6379),
                        ssl=ssl.create_default_context() if secure else None,
                    )
                setup = []
                if options.get("password"):
                    credentials = [options.get("username"), options["password"]]
                    setup.append(("AUTH", *(part for part in credentials if part)))
                if options.get("db"):
                    setup.append(("SELECT", options["db"]))
                replies = [protocol.send(hiredis.pack_command(command)) for command in setup]
                for reply in replies:
                    await reply
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"Redis at {self.url!r} unreachable: {exc!r}") from exc
        return protocol

    def _protocol_factory(self) -> _RespProtocol:
        return _RespProtocol(self.timeout, self.on_message, self.on_lost)

    async def execute(self, *command):
        protocol = await self._connection()
        return await protocol.send(hiredis.pack_command(command))

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
