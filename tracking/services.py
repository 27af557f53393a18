"""Stream tickets: for clients that cannot set headers (a browser's `EventSource`), a
single-use key, valid `STREAM_TICKET_SECONDS` (60 s), that opens one order's stream as one
user, on the credential (token or session) that asked for it: the stream lasts as long as
that credential does."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from geomarket.accounts.selectors import Credential, CredentialKind
from geomarket.errors import NotFound, ServiceUnavailable
from tracking.selectors import order_stream_roles

TICKET_BYTES = 32


@dataclass(frozen=True)
class StreamTicket:
    ticket: str
    expires_at: datetime


@dataclass(frozen=True)
class TicketHolder:
    user_id: int
    order_id: int
    # What authenticated the ticket's request, rechecked as the stream's own would be.
    credential: Credential


# A ticket's entry names the credential that asked for it, which outlives the ticket by far
# (a token for good, a session for weeks): Redis (its memory, its snapshots on disk) holds
# neither the ticket nor the credential. The entry is keyed by the ticket's digest and its
# value sealed by the ticket itself, which only its holder knows.


def _ticket_key(ticket: str) -> str:
    digest = hashlib.sha256(ticket.encode()).hexdigest()
    return f"{settings.CACHES['default']['KEY_PREFIX']}:stream-ticket:{digest}"


def _sealed(ticket: str, value: bytes) -> bytes:
    """`value` XORed with a pad drawn from the ticket by SHAKE-256 (of its own name, apart
    from the key's digest): each ticket is a fresh 256-bit secret sealing one value, so the
    pad is a one-time pad. Sealing the sealed value opens it."""
    pad = hashlib.shake_256(b"stream-ticket-pad:" + ticket.encode()).digest(len(value))
    return bytes(a ^ b for a, b in zip(value, pad, strict=True))


def stream_ticket_issue(*, user, order_id: int, credential: Credential) -> StreamTicket:
    """A ticket to the order's stream for `user`, who must be one who may follow it, signed
    in by `credential`."""
    if order_stream_roles(user=user, order_id=order_id) is None:
        raise NotFound("No such order.")
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    seconds = settings.STREAM_TICKET_SECONDS
    try:
        get_redis_connection("default").set(
            _ticket_key(ticket),
            _sealed(ticket, f"{user.pk}:{order_id}:{credential.kind}:{credential.key}".encode()),
            ex=seconds,
        )
    except RedisError as exc:
        raise ServiceUnavailable("Stream tickets are unavailable; try again shortly.") from exc
    return StreamTicket(ticket=ticket, expires_at=timezone.now() + timedelta(seconds=seconds))


def stream_ticket_redeem(*, ticket: str) -> TicketHolder | None:
    """Who the ticket was issued to, for which order; None for a ticket unknown, expired or
    used already. Taken and deleted in one command (GETDEL), so it opens one stream only."""
    try:
        value = get_redis_connection("default").getdel(_ticket_key(ticket))
    except RedisError as exc:
        raise ServiceUnavailable("Stream tickets are unavailable; try again shortly.") from exc
    if value is None:
        return None
    # One issued before tickets were sealed is under the ticket itself: not found here.
    user_id, order_id, kind, key = _sealed(ticket, value).decode().split(":", 3)
    return TicketHolder(
        user_id=int(user_id),
        order_id=int(order_id),
        credential=Credential(kind=CredentialKind(kind), key=key),
    )
