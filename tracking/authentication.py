from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed

from geomarket.accounts.selectors import user_active
from tracking.services import stream_ticket_redeem

# token_urlsafe(32) gives 43 characters; a longer string is no ticket of ours.
_TICKET_MAX_LENGTH = 64


class StreamTicketAuthentication(authentication.BaseAuthentication):
    """`?ticket=` on an order's stream: the user it was issued to, for that order only."""

    def authenticate(self, request):
        ticket = request.query_params.get("ticket")
        if ticket is None:
            return None
        holder = None
        if 0 < len(ticket) <= _TICKET_MAX_LENGTH:
            holder = stream_ticket_redeem(ticket=ticket)
        if holder is None:
            raise AuthenticationFailed("Invalid, expired or used stream ticket.")
        if holder.order_id != request.parser_context["kwargs"].get("order_id"):
            raise AuthenticationFailed("This stream ticket is for another order.")
        user = user_active(user_id=holder.user_id, credential=holder.credential)
        if user is None:
            raise AuthenticationFailed("User inactive or deleted, or signed out.")
        return user, holder


class StreamTicketScheme(OpenApiAuthenticationExtension):
    target_class = StreamTicketAuthentication
    name = "streamTicket"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "query", "name": "ticket"}
