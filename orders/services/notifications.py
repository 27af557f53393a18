"""What the customer is told about an order."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.mail import send_mail
from django.db import connection

from orders.models import Order, OrderNotification, OrderStatus

CONFIRMATION_TASK = "orders.send_order_confirmation"
CONFIRMATION = "confirmation"


@contextmanager
def _notification_lock(*, order_id: int, kind: str) -> Iterator[None]:
    """Hold the right to send this notification of this order.

    A session lock, not a transaction: it is held while the mail server is talked to,
    which may take seconds, and no transaction should stay open meanwhile. PostgreSQL
    releases it when the holder's connection ends, so a worker that dies while sending
    does not keep the next delivery of the task waiting.
    """
    key = f"orders.notification:{kind}:{order_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def order_confirmation_send(*, order_id: int) -> bool:
    """Email the customer that the order is confirmed, once per order.

    The email is sent with no transaction open, and recorded only once it has left: a
    worker that dies before that leaves nothing recorded, and the task, delivered again,
    sends it. Two deliveries running at once are serialised by the lock, so the second
    finds the record and sends nothing. Only a crash between the mail server taking the
    email and the record being written sends it twice.
    """
    with _notification_lock(order_id=order_id, kind=CONFIRMATION):
        order = Order.objects.select_related("buyer", "merchant").filter(pk=order_id).first()
        if order is None or order.status == OrderStatus.REJECTED:
            return False
        if OrderNotification.objects.filter(order=order, kind=CONFIRMATION).exists():
            return False
        if order.buyer.email:
            send_mail(
                subject=f"Your order {order.pk} at {order.merchant.name} is confirmed",
                message=(
                    f"Thank you for your order.\n\nOrder {order.pk}: total "
                    f"{order.total:.2f}.\nWe will let you know when it is on its way."
                ),
                from_email=None,
                recipient_list=[order.buyer.email],
            )
        OrderNotification.objects.create(order=order, kind=CONFIRMATION)
    return True
