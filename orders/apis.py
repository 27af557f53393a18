from functools import partial

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.api.authentication import read_with_token, token_key
from geomarket.api.json_pages import counted_json_page
from geomarket.api.pagination import page_of
from geomarket.api.validation import prebuilt
from geomarket.errors import DomainError, Forbidden
from geomarket.ratelimit import RateLimitedMixin
from merchants.selectors import merchant_managed_id
from orders import serializers
from orders.models import Order
from orders.selectors import (
    merchant_order_page,
    order_detail,
    order_detail_json,
    order_incident_page,
    order_list_page,
    order_stats,
    orders_visible_to,
)
from orders.services import (
    OrderLine,
    ReadContext,
    order_context_statement,
    order_incident_add,
    order_place,
    order_transition,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retries with the same key within 24 h return the first order.",
)
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# Placing an order is the hottest write: its body's serializer fields are built once, as
# are the reads' parameters'.
_order_create_validated = prebuilt(serializers.OrderCreateSerializer)
_order_filters = prebuilt(serializers.OrderFilterSerializer)
_stats_params = prebuilt(serializers.OrderStatsParamsSerializer)


class _OrderBody:
    """An order's body, checked, and the statement that reads the order's context.

    For a request DRF authenticates by its token, the body is checked before DRF
    authenticates it (`early`), so that the context is read by the token's own statement
    (`read_with_token`): an order refused in validation then costs one round trip, not
    two. Whatever the check raises is raised where the handler asks for the body
    (`validated`), so a 401, a 429 and the Idempotency-Key's 400 still come first."""

    def __init__(self, request, *, early: bool):
        self._error: Exception | None = None
        self._context = None
        try:
            self.data = _order_create_validated(request.data)
        except Exception as exc:  # raised in its turn, by `validated`
            self._error = exc
            return
        self.lines = [
            OrderLine(item["product_id"], item["quantity"]) for item in self.data["items"]
        ]
        if early:
            self._statement = order_context_statement(
                merchant_id=self.data["merchant_id"],
                lines=self.lines,
                delivery_address=self.data["delivery_address"],
                slot_starts_at=self.data["slot_starts_at"],
            )
            self._context = read_with_token(
                request, sql=self._statement.sql, params=self._statement.params
            )

    def validated(self) -> dict:
        if self._error is not None:
            raise self._error
        return self.data

    def read_context(self) -> ReadContext | None:
        """The context's row, when the token's statement read it."""
        if self._context is None or not self._context.read:
            return None
        return ReadContext(self._statement, self._context.row)


def _detail(request, order_id: int) -> Order:
    order = order_detail(user=request.user, order_id=order_id)
    if order is None:
        raise Order.DoesNotExist
    return order


class OrderListApi(RateLimitedMixin, APIView):
    permission_classes = [IsAuthenticated]
    rate_limited_methods = ("POST",)
    rate_limits = (
        ("orders", "ORDER_RATE_LIMIT_PER_MINUTE", "user"),
        ("orders", "ORDER_IP_RATE_LIMIT_PER_MINUTE", "ip"),
    )
    rate_limit_deferred = True

    def initial(self, request, *args, **kwargs):
        self._order_body = None
        if request.method == "POST" and token_key(get_authorization_header(request)):
            self._order_body = _OrderBody(request, early=True)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        description=(
            "The orders the caller may see, newest first: a customer's own, an owner's "
            "merchant's, those assigned to a courier, every order for an operator."
        ),
        parameters=[serializers.OrderFilterSerializer],
        responses=page_of(
            serializers.OrderOutputSerializer, estimated_count=True, name="OrderList"
        ),
        operation_id="orders_list",
        tags=["orders"],
    )
    def get(self, request):
        filters = _order_filters(request.query_params)
        return counted_json_page(
            request=request,
            view=self,
            fetch=partial(order_list_page, user=request.user, **filters),
            flag_estimate=True,
        )

    @extend_schema(
        description=(
            "Places an order: 201 with it, `confirmed` with all its stock taken, or "
            "`rejected` with its `shortages` and no stock touched. The same "
            "`Idempotency-Key` from the same user within 24 h answers the first order; "
            "with another body, 409."
        ),
        request=serializers.OrderCreateSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: serializers.OrderDetailSerializer},
        tags=["orders"],
    )
    def post(self, request):
        # Redis answers the rate limit while the body is read and checked; whatever is
        # wrong with the body, a request over its limit is told so first.
        try:
            key = request.headers.get("Idempotency-Key", "").strip() or None
            if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
                raise DomainError(
                    f"Idempotency-Key may be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
                    field="Idempotency-Key",
                )
            body = self._order_body or _OrderBody(request, early=False)
            data = body.validated()
        finally:
            self.rate_limit_admit()
        order = order_place(
            buyer=request.user,
            merchant_id=data["merchant_id"],
            lines=body.lines,
            delivery_address=data["delivery_address"],
            idempotency_key=key,
            slot_starts_at=data["slot_starts_at"],
            read_context=body.read_context(),
        )
        if not hasattr(order, "_prefetched_objects_cache"):  # an idempotent replay
            order = _detail(request, order.pk)
        # As its detail answers it: a replay of an order since picked up shows its customer
        # (the caller) the handover code.
        payload = serializers.order_detail_payload(order, viewer_id=request.user.pk)
        return Response(payload, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=serializers.OrderDetailSerializer, tags=["orders"])
    def get(self, request, order_id: int):
        body = order_detail_json(user=request.user, order_id=order_id)
        if body is None:
            raise Order.DoesNotExist
        return HttpResponse(body, content_type="application/json")


def _visible(request, order_id: int) -> None:
    """404 unless the caller sees the order (`orders_visible_to`), as its detail answers."""
    if not orders_visible_to(user=request.user).filter(pk=order_id).exists():
        raise Order.DoesNotExist


class OrderStatusApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=serializers.OrderStatusInputSerializer,
        responses=serializers.OrderDetailSerializer,
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        _visible(request, order_id)
        payload = serializers.OrderStatusInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        order_transition(
            order_id=order_id,
            actor=request.user,
            to_status=payload.validated_data["status"],
            reason=payload.validated_data["reason"],
            handover_code=payload.validated_data["handover_code"],
        )
        order = _detail(request, order_id)
        return Response(serializers.order_detail_payload(order, viewer_id=request.user.pk))


class OrderIncidentsApi(APIView):
    """An order's incidents: read and added by those who see the order (its customer,
    its merchant's owner, its courier, operators); append-only, so no other method."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=page_of(serializers.IncidentSerializer),
        operation_id="orders_incidents_list",
        tags=["orders"],
    )
    def get(self, request, order_id: int):
        def page(**window):
            found = order_incident_page(user=request.user, order_id=order_id, **window)
            if found is None:
                raise Order.DoesNotExist
            return found

        try:
            return counted_json_page(request=request, view=self, fetch=page)
        except ValidationError:
            # A malformed page is a 400 only to those who see the order.
            _visible(request, order_id)
            raise

    @extend_schema(
        request=serializers.IncidentInputSerializer,
        responses={201: serializers.IncidentSerializer},
        operation_id="orders_incidents_create",
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        _visible(request, order_id)
        payload = serializers.IncidentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        incident = order_incident_add(
            order_id=order_id, author=request.user, **payload.validated_data
        )
        return Response(serializers.incident_payload(incident), status=status.HTTP_201_CREATED)


class OrderStatsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[serializers.OrderStatsParamsSerializer],
        responses=serializers.OrderStatsSerializer,
        tags=["orders"],
    )
    def get(self, request):
        merchant_id = _stats_params(request.query_params).get("merchant_id")
        if not is_operator(request.user):
            own = user_merchant_id(request.user)
            if own is None:
                raise Forbidden("Only merchant owners and operators may see order stats.")
            if merchant_id is not None and merchant_id != own:
                raise Forbidden("You may only see your own merchant's stats.")
            merchant_id = own
        return Response(serializers.order_stats_payload(order_stats(merchant_id=merchant_id)))


class MerchantOrdersApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=page_of(serializers.MerchantOrderSerializer),
        operation_id="merchants_orders_list",
        tags=["orders"],
    )
    def get(self, request, merchant_id: int):
        merchant_managed_id(user=request.user, merchant_id=merchant_id)
        return counted_json_page(
            request=request,
            view=self,
            fetch=partial(merchant_order_page, merchant_id=merchant_id),
        )
