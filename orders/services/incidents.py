"""Incidents: an append-only log of what went wrong with an order, kept by its parties."""

from orders.models import Order, OrderIncident
from orders.services.transitions import order_roles_of

# The role an incident is signed with when its author holds several towards the order:
# the first of these it holds. Staff act as operators even on an order of their own; an
# owner who delivers its own orders speaks for the merchant.
AUTHOR_ROLE_PRECEDENCE = ("operator", "owner", "courier", "customer")


def incident_author_role(*, roles: set[str]) -> str | None:
    """The role an author holding `roles` towards an order signs an incident with; None
    for someone who is no party to it."""
    return next((role for role in AUTHOR_ROLE_PRECEDENCE if role in roles), None)


def order_incident_add(*, order_id: int, author, kind: str, note: str = "") -> OrderIncident:
    """Record an incident of the order, signed with the author's role towards it
    (`incident_author_role`). The caller has checked that the author sees the order; one
    INSERT, so no transaction of its own."""
    order = Order.objects.select_related("merchant", "courier").get(pk=order_id)
    role = incident_author_role(roles=order_roles_of(order=order, user=author))
    if role is None:
        raise Order.DoesNotExist
    return OrderIncident.objects.create(
        order_id=order_id, kind=kind, note=note, author=author, author_role=role
    )
