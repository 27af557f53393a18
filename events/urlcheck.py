"""Webhook URLs may only reach the public internet (SSRF): checked when an endpoint is
written and again before every delivery, since what a name resolves to can change."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UrlRefused(ValueError):
    pass


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # is_global is false for loopback, private, link-local, shared and reserved ranges.
    return address.is_global and not address.is_multicast


def webhook_url_check(url: str) -> None:
    """Raise UrlRefused unless `url` is https and every address its host resolves to is
    public; `WEBHOOK_ALLOW_PRIVATE_URLS` lets http and private addresses through."""
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
    if allow_private:
        return
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not _public(address):
            raise UrlRefused(f"The host resolves to a non-public address ({address}).")
