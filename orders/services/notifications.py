"""What the customer is told about an order."""

from django.core.mail import send_mail

from geomarket.locks import session_lock
from orders.models import Order, OrderNotification, OrderStatus

CONFIRMATION_TASK = "orders.send_order_confirmation"
CONFIRMATION = "confirmation"
NOT_CONFIRMED = (OrderStatus.REJECTED, OrderStatus.CANCELLED)


def order_confirmation_send(*, order_id: int) -> bool:
    """Email the customer that the order is confirmed, once per order.

    The email is sent with no transaction open, and recorded only once it has left: a
    worker that dies before that leaves nothing recorded, and the task, delivered again,
    sends it. Two deliveries running at once are serialised by the lock, so the second
    finds the record and sends nothing. Only a crash between the mail server taking the
    email and the record being written sends it twice.
    """
    with session_lock(f"orders.notification:{CONFIRMATION}:{order_id}"):
        order = Order.objects.select_related("buyer", "merchant").filter(pk=order_id).first()
        # An order cancelled before its confirmation went out (a broker outage, retries)
        # is not told it is confirmed after the customer learned it was not.
        if order is None or order.status in NOT_CONFIRMED:
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
