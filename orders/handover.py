"""Handover codes: the 4 digits a customer tells the courier at the door.

Only a keyed hash is stored, yet the customer must be able to read the code again (in
the order and its tracking) for as long as the order is on its way. So the code is not
stored at all: it is derived from a random salt, drawn from `secrets` at pickup, under a
key only the server holds (Django's `salted_hmac`, keyed by SECRET_KEY, over the order's
id and the salt). The column holds the salt and HMAC-SHA256 of the code under another
key; checking a code compares that HMAC in constant time (`hmac.compare_digest`).

Someone who reads the database sees a salt and a MAC: without SECRET_KEY neither tells
the code, nor lets the 10,000 codes be tried offline. Rotating SECRET_KEY changes every
code in flight (and none matches its stored MAC): such orders are delivered by an
operator, who needs no code.
"""

import hmac
import secrets

from django.utils.crypto import salted_hmac

CODE_DIGITS = 4
# Wrong codes an order takes before it refuses any more (`handover_locked`).
MAX_FAILURES = 5

_CODE_KEY = "orders.handover.code"
_CHECK_KEY = "orders.handover.check"


def _code_of(*, order_id: int, salt: str) -> str:
    digest = salted_hmac(_CODE_KEY, f"{order_id}:{salt}", algorithm="sha256").digest()
    # 2**256 is no multiple of 10**4, but the bias is below 2**-240.
    return f"{int.from_bytes(digest, 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def _check_of(*, order_id: int, salt: str, code: str) -> str:
    return salted_hmac(_CHECK_KEY, f"{order_id}:{salt}:{code}", algorithm="sha256").hexdigest()


def handover_code_hash_new(*, order_id: int) -> str:
    """What `Order.handover_code_hash` stores for a new code of the order: `salt$mac`."""
    salt = secrets.token_hex(16)
    code = _code_of(order_id=order_id, salt=salt)
    return f"{salt}${_check_of(order_id=order_id, salt=salt, code=code)}"


def handover_code_of(*, order_id: int, code_hash: str) -> str | None:
    """The plain code of an order whose `handover_code_hash` is `code_hash`; None when it
    has none."""
    if not code_hash:
        return None
    salt, _ = code_hash.split("$", 1)
    return _code_of(order_id=order_id, salt=salt)


def handover_code_matches(*, order_id: int, code_hash: str, code: str) -> bool:
    """Whether `code` is the order's code, compared in constant time."""
    salt, check = code_hash.split("$", 1)
    return hmac.compare_digest(_check_of(order_id=order_id, salt=salt, code=code), check)


def handover_code_shown(
    *, viewer_id: int, buyer_id: int, status: str, order_id: int, code_hash: str
) -> str | None:
    """The code as the user `viewer_id` may read it: only the order's customer, only
    while the order is picked up (before, there is none; after, it opens nothing); None
    for everyone else, operators included."""
    if viewer_id != buyer_id or status != "picked_up":
        return None
    return handover_code_of(order_id=order_id, code_hash=code_hash)
