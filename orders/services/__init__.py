"""The writes of orders, one module per concern:

- `placement`: placing an order, with its Idempotency-Key;
- `transitions`: moving an order through its states;
- `incidents`: the log of what went wrong with an order;
- `outbox`: publishing what placement wrote to the outbox;
- `notifications`: what the customer is told, sent outside any transaction.
"""

from orders.services.incidents import (
    AUTHOR_ROLE_PRECEDENCE,
    incident_author_role,
    order_incident_add,
)
from orders.services.notifications import CONFIRMATION_TASK, order_confirmation_send
from orders.services.outbox import (
    outbox_publish,
    outbox_resend,
    outbox_retry_later,
    outbox_settle,
)
from orders.services.placement import (
    IdempotencyKeyReused,
    OrderLine,
    ReadContext,
    idempotency_keys_prune,
    order_context_statement,
    order_place,
)
from orders.services.transitions import (
    TRANSITIONS,
    HandoverCodeMismatch,
    HandoverLocked,
    TransitionNotAllowed,
    order_courier_user_id,
    order_roles_of,
    order_transition,
    orders_courier_set,
)

__all__ = [
    "AUTHOR_ROLE_PRECEDENCE",
    "CONFIRMATION_TASK",
    "TRANSITIONS",
    "HandoverCodeMismatch",
    "HandoverLocked",
    "IdempotencyKeyReused",
    "OrderLine",
    "ReadContext",
    "TransitionNotAllowed",
    "idempotency_keys_prune",
    "incident_author_role",
    "order_confirmation_send",
    "order_context_statement",
    "order_courier_user_id",
    "order_incident_add",
    "order_place",
    "order_roles_of",
    "order_transition",
    "orders_courier_set",
    "outbox_publish",
    "outbox_resend",
    "outbox_retry_later",
    "outbox_settle",
]
