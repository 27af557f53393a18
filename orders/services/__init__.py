"""The writes of orders, one module per concern:

- `placement`: placing an order, with its Idempotency-Key;
- `transitions`: moving an order through its states;
- `outbox`: publishing what placement wrote to the outbox;
- `notifications`: what the customer is told, sent outside any transaction.
"""

from orders.services.notifications import CONFIRMATION_TASK, order_confirmation_send
from orders.services.outbox import outbox_publish
from orders.services.placement import (
    IdempotencyKeyReused,
    OrderLine,
    idempotency_keys_prune,
    order_place,
)
from orders.services.transitions import (
    TRANSITIONS,
    TransitionNotAllowed,
    order_courier_user_id,
    order_roles_of,
    order_transition,
    orders_courier_set,
)

__all__ = [
    "CONFIRMATION_TASK",
    "TRANSITIONS",
    "IdempotencyKeyReused",
    "OrderLine",
    "TransitionNotAllowed",
    "idempotency_keys_prune",
    "order_confirmation_send",
    "order_courier_user_id",
    "order_place",
    "order_roles_of",
    "order_transition",
    "orders_courier_set",
    "outbox_publish",
]
