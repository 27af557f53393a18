from functools import partial

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from delivery import serializers
from delivery.eta import geodesic_eta_seconds
from delivery.models import Courier
from delivery.routes import courier_route
from delivery.selectors import (
    courier_answer,
    courier_answers,
    courier_candidates,
    courier_get,
    courier_of_user,
    courier_order_page,
    courier_page,
    courier_track_json,
    order_pickup,
)
from delivery.services import (
    OrderNotWaiting,
    courier_create,
    courier_ping,
    courier_update,
    orders_assign_priority,
)
from delivery.shapes import ROUTE
from geomarket.accounts.roles import is_operator, user_courier_id
from geomarket.api.json_pages import counted_json_page
from geomarket.api.pagination import counted_page_body, page_of
from geomarket.api.permissions import IsOperator, can_manage_merchant
from geomarket.errors import Forbidden, NotFound
from orders.models import Order
from orders.serializers import OrderOutputSerializer


class CourierListApi(APIView):
    permission_classes = [IsAuthenticated, IsOperator]

    @extend_schema(
        parameters=[serializers.CourierFilterSerializer],
        responses=page_of(serializers.CourierOutputSerializer),
        operation_id="couriers_list",
        tags=["couriers"],
    )
    def get(self, request):
        filters = serializers.courier_filters(request.query_params)
        body = counted_page_body(
            request=request,
            view=self,
            fetch=partial(courier_page, **filters),
            render=courier_answers,
        )
        return Response(body)

    @extend_schema(
        request=serializers.CourierCreateSerializer,
        responses={201: serializers.CourierOutputSerializer},
        tags=["couriers"],
    )
    def post(self, request):
        payload = serializers.CourierCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        courier = courier_create(**payload.validated_data)
        return Response(
            serializers.CourierOutputSerializer(courier_get(courier_id=courier.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class CourierDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsOperator]

    def _courier(self, courier_id: int) -> Courier:
        courier = courier_get(courier_id=courier_id)
        if courier is None:
            raise Courier.DoesNotExist
        return courier

    @extend_schema(responses=serializers.CourierOutputSerializer, tags=["couriers"])
    def get(self, request, courier_id: int):
        answer = courier_answer(courier_id=courier_id)
        if answer is None:
            raise Courier.DoesNotExist
        return Response(answer)

    @extend_schema(
        request=serializers.CourierUpdateSerializer(partial=True),
        responses=serializers.CourierOutputSerializer,
        tags=["couriers"],
    )
    def patch(self, request, courier_id: int):
        courier = self._courier(courier_id)
        payload = serializers.CourierUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        courier_update(courier=courier, data=payload.validated_data)
        return Response(serializers.CourierOutputSerializer(self._courier(courier_id)).data)


NOT_A_COURIER = "Only couriers may do this."


def _own_courier(request) -> Courier:
    courier = courier_of_user(user=request.user)
    if courier is None:
        raise Forbidden(NOT_A_COURIER)
    return courier


class CourierMeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=serializers.CourierOutputSerializer, tags=["couriers"])
    def get(self, request):
        answer = courier_answer(user_id=request.user.pk)
        if answer is None:
            raise Forbidden(NOT_A_COURIER)
        return Response(answer)

    @extend_schema(
        request=serializers.CourierSelfUpdateSerializer,
        responses=serializers.CourierOutputSerializer,
        tags=["couriers"],
    )
    def patch(self, request):
        courier = _own_courier(request)
        # A PATCH changes what it names, as the schema says: nothing, when it names nothing.
        payload = serializers.CourierSelfUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        courier_update(courier=courier, data=payload.validated_data)
        return Response(serializers.CourierOutputSerializer(_own_courier(request)).data)


class CourierLocationApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=serializers.LocationPingSerializer,
        responses=serializers.LocationPingOutputSerializer,
        tags=["couriers"],
    )
    def post(self, request):
        try:
            ping = courier_ping(user=request.user, **serializers.ping_validated(request.data))
        except NotFound as exc:
            raise Forbidden("Only couriers may send locations.") from exc
        return Response(serializers.ping_answer(ping))


class CourierTrackApi(APIView):
    permission_classes = [IsAuthenticated, IsOperator]

    @extend_schema(
        parameters=[serializers.TrackParamsSerializer],
        responses=serializers.TrackOutputSerializer,
        tags=["couriers"],
    )
    def get(self, request, courier_id: int):
        params = serializers.TrackParamsSerializer(data=request.query_params)
        if not params.is_valid():
            # An unknown courier is a 404 before its parameters are a 400.
            if courier_get(courier_id=courier_id) is None:
                raise Courier.DoesNotExist
            raise ValidationError(params.errors)
        # The courier is looked up by the track's own statement.
        body = courier_track_json(courier_id=courier_id, **params.validated_data)
        if body is None:
            raise Courier.DoesNotExist
        return HttpResponse(body, content_type="application/json")


class CourierRouteApi(APIView):
    """`couriers/{id}/route/` (operators; the courier itself) and `couriers/me/route/`."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses=ROUTE.serializer(),
        tags=["couriers"],
        description="Plans the courier's active orders (confirmed, preparing, ready, "
        "picked_up) from its current location: each order's pickup at the merchant before "
        "its drop-off at the delivery address (a picked-up order has only its drop-off), "
        "never more orders on board than the courier's capacity, each slotted drop-off "
        "inside its slot where the plan can keep it with the others, else flagged `late`. Travel "
        "times come from the ETA provider's table (geodesic by default, OSRM's table "
        "service when configured). Solved by VROOM within ROUTE_SOLVE_SECONDS, else the "
        "greedy plan (`solver`). At most ROUTE_MAX_ORDERS orders are planned "
        "(`unplanned`: the others). Computes a plan and writes nothing.",
    )
    def post(self, request, courier_id: int | None = None):
        if courier_id is None:
            courier_id = user_courier_id(request.user)
            if courier_id is None:
                raise Forbidden(NOT_A_COURIER)
        elif not is_operator(request.user):
            if user_courier_id(request.user) != courier_id:
                raise Forbidden("Only operators and the courier itself may plan its route.")
        elif courier_get(courier_id=courier_id) is None:
            raise Courier.DoesNotExist
        return Response(courier_route(courier_id=courier_id))


class CourierMyOrdersApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=page_of(OrderOutputSerializer),
        operation_id="couriers_me_orders_list",
        tags=["couriers"],
    )
    def get(self, request):
        # Only the courier's id is needed: the user's profile ids, read by one compiled
        # statement, instead of the courier built with its count of active orders.
        courier_id = user_courier_id(request.user)
        if courier_id is None:
            raise Forbidden(NOT_A_COURIER)
        return counted_json_page(
            request=request, view=self, fetch=partial(courier_order_page, courier_id=courier_id)
        )


class CourierCandidatesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[serializers.CandidatesParamsSerializer],
        responses={
            200: serializers.CandidateSerializer(many=True),
            409: OpenApiResponse(
                serializers.RefusalSerializer,
                description="`order_not_waiting`: the order is not waiting for a courier "
                "(confirmed, preparing or ready, with none assigned), so none is a candidate.",
            ),
        },
        tags=["dispatch"],
    )
    def get(self, request, order_id: int):
        found = order_pickup(user=request.user, order_id=order_id)
        if found is None:
            raise Order.DoesNotExist
        merchant_id, lng, lat, waiting = found
        if not can_manage_merchant(request.user, merchant_id):
            raise Forbidden("Only operators and the merchant's owner may see candidates.")
        params = serializers.candidates_params(request.query_params)
        if not waiting:
            raise OrderNotWaiting()
        rows = courier_candidates(
            lat=lat, lng=lng, limit=params["limit"], radius_m=settings.DISPATCH_MAX_DISTANCE_M
        )
        return Response(
            [
                {
                    "courier_id": row["id"],
                    "name": row["name"],
                    "vehicle": row["vehicle"],
                    "distance_m": round(row["distance_m"], 2),
                    "eta_s": geodesic_eta_seconds(
                        distance_m=row["distance_m"], vehicle=row["vehicle"], preparation=False
                    ),
                }
                for row in rows
            ]
        )


class PriorityAssignmentApi(APIView):
    permission_classes = [IsAuthenticated, IsOperator]

    @extend_schema(
        request=serializers.PriorityAssignmentInputSerializer,
        responses=serializers.PriorityAssignmentOutputSerializer,
        tags=["dispatch"],
    )
    def post(self, request):
        payload = serializers.PriorityAssignmentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = orders_assign_priority(**payload.validated_data)
        return Response(
            {
                "assignments": result.assignments,
                "unassigned": result.unassigned,
                "total_distance_m": result.total_distance_m,
            }
        )
