from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from events import serializers
from events.models import WebhookEndpoint
from events.selectors import (
    cursor_encode,
    events_feed,
    events_scope,
    webhook_deliveries_recent,
    webhooks_visible_to,
)
from events.services import (
    events_feed_positions_assign,
    webhook_create,
    webhook_delete,
    webhook_replay,
    webhook_update,
)
from geomarket.api.pagination import page_of, paginated_response
from geomarket.api.permissions import IsOwnerOrOperator
from geomarket.errors import NotFound

TAGS = ["events"]


class EventFeedApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        parameters=[serializers.EventFeedParamsSerializer],
        responses=serializers.EventFeedSerializer,
        operation_id="events_list",
        tags=TAGS,
    )
    def get(self, request):
        params = serializers.EventFeedParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        after = params.validated_data.get("after", 0)
        # Events committed since the last read get their places before this one reads.
        events_feed_positions_assign()
        events = events_feed(
            user=request.user,
            after_position=after,
            types=params.validated_data.get("types"),
            limit=params.validated_data["limit"],
        )
        last = events[-1].feed_position if events else after
        return Response(
            {
                "events": serializers.EventSerializer(events, many=True).data,
                "next_cursor": cursor_encode(last) if last else None,
            }
        )


class WebhookListApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        responses=page_of(serializers.WebhookSerializer),
        operation_id="webhooks_list",
        tags=TAGS,
    )
    def get(self, request):
        return paginated_response(
            request=request,
            view=self,
            queryset=webhooks_visible_to(request.user),
            serializer_class=serializers.WebhookSerializer,
        )

    @extend_schema(
        request=serializers.WebhookInputSerializer,
        responses={201: serializers.WebhookCreatedSerializer},
        tags=TAGS,
    )
    def post(self, request):
        payload = serializers.WebhookInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        # An owner's endpoint takes its own merchant's events, whatever the body says.
        scope = events_scope(request.user)
        endpoint = webhook_create(
            merchant_id=data["merchant_id"] if scope is None else scope,
            url=data["url"],
            event_types=data["event_types"],
            is_active=data["is_active"],
        )
        return Response(
            serializers.WebhookCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )


def _endpoint(request, webhook_id: int) -> WebhookEndpoint:
    endpoint = webhooks_visible_to(request.user).filter(pk=webhook_id).first()
    if endpoint is None:
        raise NotFound()
    return endpoint


class WebhookDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(responses=serializers.WebhookSerializer, tags=TAGS)
    def get(self, request, webhook_id: int):
        return Response(serializers.WebhookSerializer(_endpoint(request, webhook_id)).data)

    @extend_schema(
        request=serializers.WebhookUpdateSerializer,
        responses=serializers.WebhookSerializer,
        tags=TAGS,
    )
    def patch(self, request, webhook_id: int):
        endpoint = _endpoint(request, webhook_id)
        payload = serializers.WebhookUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        endpoint = webhook_update(endpoint=endpoint, data=payload.validated_data)
        return Response(serializers.WebhookSerializer(endpoint).data)

    @extend_schema(responses={204: None}, tags=TAGS)
    def delete(self, request, webhook_id: int):
        webhook_delete(endpoint=_endpoint(request, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookReplayApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        request=serializers.WebhookReplaySerializer,
        responses={202: serializers.WebhookReplayedSerializer},
        tags=TAGS,
    )
    def post(self, request, webhook_id: int):
        endpoint = _endpoint(request, webhook_id)
        payload = serializers.WebhookReplaySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        replayed = webhook_replay(endpoint=endpoint, after_position=payload.validated_data["after"])
        return Response({"replayed": replayed}, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveriesApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        responses=page_of(serializers.WebhookDeliverySerializer),
        operation_id="webhooks_deliveries_list",
        tags=TAGS,
    )
    def get(self, request, webhook_id: int):
        return paginated_response(
            request=request,
            view=self,
            queryset=webhook_deliveries_recent(endpoint=_endpoint(request, webhook_id)),
            serializer_class=serializers.WebhookDeliverySerializer,
        )
