from functools import partial

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from delivery.serializers import StreamEtaSerializer, StreamLocationSerializer
from events.serializers import StreamStatusSerializer
from events.streams import order_stream_key, stream_last_id
from geomarket.accounts.selectors import Credential, request_credential
from geomarket.api.renderers import ErrorsInJson
from geomarket.errors import DomainError, NotFound
from tracking.authentication import StreamTicketAuthentication
from tracking.selectors import order_stream_roles, order_stream_roles_now, order_tracking
from tracking.serializers import (
    OrderTrackingSerializer,
    StreamTicketSerializer,
    tracking_payload,
)
from tracking.services import TicketHolder, stream_ticket_issue
from tracking.stream import last_event_id_valid, order_events


class OrderTrackingApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OrderTrackingSerializer, tags=["tracking"])
    def get(self, request, order_id: int):
        tracking = order_tracking(user=request.user, order_id=order_id)
        if tracking is None:
            raise NotFound("No such order.")
        return Response(tracking_payload(tracking))


def _credential(request) -> Credential:
    """What the caller of a stream, or of a ticket to one, is signed in by: the stream is
    followed as long as it authenticates them (a ticket's is the request's that asked
    for it)."""
    if isinstance(request.auth, TicketHolder):
        return request.auth.credential
    credential = request_credential(request)
    if credential is None:
        raise NotAuthenticated("Streams are followed by token, session or ticket.")
    return credential


class OrderStreamTicketApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={201: StreamTicketSerializer}, tags=["tracking"])
    def post(self, request, order_id: int):
        ticket = stream_ticket_issue(
            user=request.user, order_id=order_id, credential=_credential(request)
        )
        return Response(StreamTicketSerializer(ticket).data, status=201)


def _fields(serializer) -> str:
    return ", ".join(f"`{name}`" for name in serializer().fields)


STREAM_DESCRIPTION = f"""Server-Sent Events of the order, for its customer, owner, courier
and operators (as its tracking), authenticated by token, session or `?ticket=`.

- `status`: the order's new status and when ({_fields(StreamStatusSerializer)});
- `location`: the courier's point ({_fields(StreamLocationSerializer)}), only while
  the caller may see it (as in the tracking answer);
- `eta`: with each point, the estimate of the tracking answer ({_fields(StreamEtaSerializer)});
- a comment line (`: keep-alive`) at least every 15 s.

Each event has an `id:`; a reconnect with `Last-Event-ID` first gets the events after it,
of the last hour. The stream ends once its caller may no longer follow it, read again
every 30 s: deactivated, no longer seeing the order, or signed out of what opened it (its
token deleted, its session ended; for a ticket, those of the request that asked for it)."""


class OrderStreamApi(APIView):
    authentication_classes = [
        *api_settings.DEFAULT_AUTHENTICATION_CLASSES,
        StreamTicketAuthentication,
    ]
    permission_classes = [IsAuthenticated]
    content_negotiation_class = ErrorsInJson

    @extend_schema(
        description=STREAM_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
                description="The `id:` of the last event the client saw.",
            ),
        ],
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        tags=["tracking"],
    )
    def get(self, request, order_id: int):
        credential = _credential(request)
        roles = order_stream_roles(user=request.user, order_id=order_id)
        if roles is None:
            raise NotFound("No such order.")
        last_event_id = request.headers.get("Last-Event-ID") or None
        if last_event_id is not None and not last_event_id_valid(last_event_id):
            raise DomainError("Not an event id of this stream.", field="Last-Event-ID")
        # From where the client left off, or else from now: what is published between
        # this answer and the stream's subscribing is sent too.
        after = last_event_id or stream_last_id(order_stream_key(order_id))
        response = StreamingHttpResponse(
            order_events(
                order_id=order_id,
                roles=roles,
                after=after,
                roles_now=partial(
                    order_stream_roles_now,
                    user_id=request.user.pk,
                    order_id=order_id,
                    credential=credential,
                ),
            ),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        # nginx would otherwise hold events back in its buffer.
        response["X-Accel-Buffering"] = "no"
        return response
