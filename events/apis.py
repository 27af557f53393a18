from functools import partial

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
    webhook_answer,
    webhook_delivery_page,
    webhook_merchant,
    webhook_page,
    webhooks_visible_to,
)
from events.services import (
    events_feed_positions_assign,
    webhook_create,
    webhook_delete,
    webhook_replay,
    webhook_update,
)
from events.shapes import WEBHOOK, WEBHOOK_DELIVERY
from geomarket.api.pagination import counted_page_body, page_of
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
        params = serializers.event_feed_params(request.query_params)
        after = params.get("after", 0)
        # Events committed since the last read get their places before this one reads.
        events_feed_positions_assign()
        events, last = events_feed(
            user=request.user,
            after_position=after,
            types=params.get("types"),
            limit=params["limit"],
        )
        last = last or after
        return Response({"events": events, "next_cursor": cursor_encode(last) if last else None})


class WebhookListApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        responses=page_of(serializers.WebhookSerializer),
        operation_id="webhooks_list",
        tags=TAGS,
    )
    def get(self, request):
        body = counted_page_body(
            request=request,
            view=self,
            fetch=partial(webhook_page, user=request.user),
            render=WEBHOOK.render_rows,
        )
        return Response(body)

    @extend_schema(
        request=serializers.WebhookInputSerializer,
        responses={201: serializers.WebhookCreatedSerializer},
        tags=TAGS,
    )
    def post(self, request):
        payload = serializers.WebhookInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        endpoint = webhook_create(
            created_by=request.user,
            merchant_id=webhook_merchant(user=request.user, merchant_id=data["merchant_id"]),
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
        answer = webhook_answer(user=request.user, webhook_id=webhook_id)
        if answer is None:
            raise NotFound()
        return Response(answer)

    @extend_schema(
        request=serializers.WebhookUpdateSerializer,
        responses=serializers.WebhookSerializer,
        tags=TAGS,
    )
    def patch(self, request, webhook_id: int):
        endpoint = _endpoint(request, webhook_id)
        payload = serializers.WebhookUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        webhook_update(endpoint=endpoint, data=payload.validated_data, actor=request.user)
        # As GET answers it: `is_active` is whether it takes events now.
        answer = webhook_answer(user=request.user, webhook_id=webhook_id)
        if answer is None:
            raise NotFound()
        return Response(answer)

    @extend_schema(responses={204: None}, tags=TAGS)
    def delete(self, request, webhook_id: int):
        webhook_delete(endpoint=_endpoint(request, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookReplayApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        request=serializers.WebhookReplaySerializer,
        responses={202: serializers.WebhookReplayedSerializer},
        description="Delivers again every event after `after` that the endpoint takes. An"
        " endpoint that takes no events now (`is_active` false) answers 409 with `code`"
        " `webhook_not_receiving` and sends nothing: turn it on first.",
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
        if webhook_answer(user=request.user, webhook_id=webhook_id) is None:
            raise NotFound()
        body = counted_page_body(
            request=request,
            view=self,
            fetch=partial(webhook_delivery_page, endpoint_id=webhook_id),
            render=WEBHOOK_DELIVERY.render_rows,
        )
        return Response(body)
