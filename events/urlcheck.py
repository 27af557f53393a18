"""Webhook URLs may only reach the public internet (SSRF): checked when an endpoint is
written and again before every delivery, since what a name resolves to can change. A
delivery then connects to an address the check vetted (`webhook_post`), never to what the
name resolves to a moment later."""

import functools
import ipaddress
import os
import socket
import ssl
import time

import httpcore
import httpx
from django.conf import settings


class UrlRefused(ValueError):
    pass


@functools.cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The trusted certificates loaded once per process (and per `SSL_CERT_FILE` and
    `SSL_CERT_DIR`, which httpx reads): loading them into a new context cost about 50 ms
    of CPU, which every delivery paid when each built its own."""
    return httpx.create_ssl_context()


# Prefixes whose addresses carry an IPv4 address in their last 32 bits, reached through a
# translator: IPv4-compatible (deprecated), IPv4-translated (SIIT) and well-known NAT64
# (RFC 6052). `ipaddress` calls most of them global.
_IPV4_IN_LAST_32_BITS = tuple(
    map(ipaddress.IPv6Network, ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
)
# Local-use NAT64 (RFC 8215) translates as each network chooses, into addresses of that
# network's own; Teredo tunnels through relays. Neither reaches a receiver's server.
_NEVER = tuple(map(ipaddress.IPv6Network, ("64:ff9b:1::/48", "2001::/32")))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a connection to `address` ends up at, if it embeds any."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if any(address in prefix for prefix in _IPV4_IN_LAST_32_BITS):
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a webhook may connect to `address`: the one rule for every check, when an
    endpoint is written and before each delivery. An IPv6 address that embeds IPv4
    addresses is judged by those, since they are what it reaches (its own prefix is
    reserved or non-global even when they are public). Any other must be global, and
    neither reserved, site-local, multicast nor unspecified: `is_global` alone lets some
    of each through."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in prefix for prefix in _NEVER):
            return False
        if embedded := _embedded_ipv4(address):
            return all(map(_public, embedded))
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_reserved or address.is_multicast or address.is_unspecified
    )


def _vetted(url: str) -> tuple[httpx.URL, list[str]]:
    """`url` as httpx parses it, the one a delivery sends, and the addresses of its host
    (`webhook_url_check`)."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        # Vetting what httpx cannot send would pass a URL every delivery then fails on.
        raise UrlRefused(f"The URL is not valid: {exc}") from exc
    if target.scheme != "https" and not (allow_private and target.scheme == "http"):
        raise UrlRefused("The URL must be https.")
    if not target.raw_host:
        raise UrlRefused("The URL has no host.")
    if target.userinfo:
        raise UrlRefused("The URL must not carry credentials.")
    if target.port is not None and not 0 < target.port < 65536:
        raise UrlRefused("The URL's port is out of range.")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        # The name httpx asks for in the Host header and TLS (IDNA 2008), which the
        # resolver's own encoding of a non-ASCII name (IDNA 2003) can differ from.
        host = target.raw_host.decode("ascii")
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise UrlRefused(f"The host does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(sockaddr[0].split("%", 1)[0] for *_, sockaddr in infos))
    if not allow_private:
        for address in map(ipaddress.ip_address, addresses):
            if not _public(address):
                raise UrlRefused(f"The host resolves to a non-public address ({address}).")
    return target, addresses


def webhook_url_check(url: str) -> list[str]:
    """The addresses `url`'s host resolves to, in the resolver's order of preference;
    raise UrlRefused unless httpx can send to `url`, it is https and every address is
    public (`_public`). `WEBHOOK_ALLOW_PRIVATE_URLS` lets http and private
    addresses through."""
    return _vetted(url)[1]


class _Deadline:
    """The moment a delivery attempt ends, and the wait each of its steps may take until
    then: httpx's `timeout` bounds each wait on its own, so a receiver sending a byte
    every few seconds would hold the worker without end."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def wait(self, timeout: float | None, expired: type[httpcore.TimeoutException]) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise expired("The delivery attempt ran out of time.")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.wait(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.wait(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> "_DeadlineStream":
        wait = self._deadline.wait(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, wait), self._deadline
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        wait = self._deadline.wait(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)


def webhook_post(url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> int:
    """Check `url` (UrlRefused), POST to it over a connection to one of the addresses the
    check vetted, tried in order while a connection fails, and return the answer's status.
    The request goes to the address itself, and the URL's host goes in the Host header and
    in TLS, as the name the server is asked for (SNI) and the name its certificate must
    prove. A redirect is not followed: it could lead anywhere.

    Every address tried, the request and the answer's headers end `timeout` seconds after
    the call (httpx.TimeoutException), however slowly the receiver sends; the name's
    lookup counts against that, though `getaddrinfo` cannot be cut short. The answer's
    body is not read: only its status is kept, and a receiver answering gigabytes would
    otherwise fill the worker's memory."""
    deadline = _Deadline(timeout)
    target, addresses = _vetted(url)
    host = target.raw_host.decode("ascii")
    headers = {**headers, "Host": target.netloc.decode("ascii")}
    tls = _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    # A transport of its own, so no proxy from the environment: a proxy's tunnel would
    # ask the server for the address's certificate, not the host's.
    transport = httpx.HTTPTransport(verify=tls)
    # httpx's transport takes no network backend, the one place every wait can be cut to
    # the deadline; the httpcore pool it wraps does (httpx 0.28: the deadline's tests fail
    # if the attribute is renamed).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=tls, network_backend=_DeadlineBackend(deadline)
    )
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
        for address in addresses[:-1]:
            try:
                return _post_to(client, target, address, host, content, headers)
            except httpx.ConnectError:
                continue
        return _post_to(client, target, addresses[-1], host, content, headers)


def _post_to(client, target, address, host, content, headers) -> int:
    with client.stream(
        "POST",
        target.copy_with(host=address),
        content=content,
        headers=headers,
        extensions={"sni_hostname": host},
    ) as response:
        return response.status_code
