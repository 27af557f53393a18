"""Webhook URLs may only reach the public internet (SSRF): checked when an endpoint is
written and again before every delivery, since what a name resolves to can change. A
delivery then connects to an address the check vetted (`webhook_post`), never to what the
name resolves to a moment later."""

import functools
import ipaddress
import os
import socket
import ssl
from urllib.parse import urlsplit

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


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # is_global is false for loopback, private, link-local, shared and reserved ranges.
    return address.is_global and not address.is_multicast


def webhook_url_check(url: str) -> list[str]:
    """The addresses `url`'s host resolves to, in the resolver's order of preference;
    raise UrlRefused unless `url` is https and every one is public.
    `WEBHOOK_ALLOW_PRIVATE_URLS` lets http and private addresses through."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise UrlRefused("The URL must be https.")
    if not parts.hostname:
        raise UrlRefused("The URL has no host.")
    if parts.username or parts.password:
        raise UrlRefused("The URL must not carry credentials.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise UrlRefused(f"The host does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(sockaddr[0].split("%", 1)[0] for *_, sockaddr in infos))
    if not allow_private:
        for address in map(ipaddress.ip_address, addresses):
            if not _public(address):
                raise UrlRefused(f"The host resolves to a non-public address ({address}).")
    return addresses


def webhook_post(
    url: str, *, content: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """Check `url` (UrlRefused) and POST to it over a connection to one of the addresses
    the check vetted, tried in order while a connection fails: the request goes to the
    address itself, and the URL's host goes in the Host header and in TLS, as the name
    the server is asked for (SNI) and the name its certificate must prove. A redirect is
    not followed: it could lead anywhere."""
    addresses = webhook_url_check(url)
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    headers = {**headers, "Host": target.netloc.decode("ascii")}
    # A transport of its own, so no proxy from the environment: a proxy's tunnel would
    # ask the server for the address's certificate, not the host's.
    with httpx.Client(
        transport=httpx.HTTPTransport(
            verify=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        ),
        timeout=timeout,
        follow_redirects=False,
    ) as client:
        for address in addresses[:-1]:
            try:
                return _post_to(client, target, address, host, content, headers)
            except httpx.ConnectError:
                continue
        return _post_to(client, target, addresses[-1], host, content, headers)


def _post_to(client, target, address, host, content, headers) -> httpx.Response:
    return client.post(
        target.copy_with(host=address),
        content=content,
        headers=headers,
        extensions={"sni_hostname": host},
    )
