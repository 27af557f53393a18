from functools import partial

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from geomarket.answer_cache import Expiring, Namespace, cached_answer, uncached_answer
from geomarket.api.geojson import Features, GeoJSONAnswers
from geomarket.api.json_pages import counted_json_page
from geomarket.api.pagination import CountedPage, counted_page_body, page_of
from geomarket.api.permissions import can_manage_merchant
from geomarket.api.responses import cached_json_response
from geomarket.api.validation import prebuilt
from geomarket.demand import unserved_record
from geomarket.errors import NotFound
from merchants import serializers
from merchants.models import Closure, DeliveryZone, Merchant
from merchants.selectors import (
    MerchantRef,
    closure_page,
    delivery_zone_page,
    delivery_zone_row,
    merchant_day_slots_json,
    merchant_detail_json,
    merchant_hours_json,
    merchant_list_page,
    merchant_managed,
    merchant_managed_id,
    merchant_ref,
    merchant_visible,
    merchants_delivering_to,
    merchants_nearby,
    open_instant,
    slot_plan,
)
from merchants.services import (
    closure_create,
    closure_delete,
    delivery_zone_create,
    delivery_zone_delete,
    delivery_zone_update,
    merchant_create,
    merchant_delete,
    merchant_hours_replace,
    merchant_update,
    slot_plan_delete,
    slot_plan_set,
)


def _managed_merchant(request, merchant_id: int) -> Merchant:
    return merchant_managed(user=request.user, merchant_id=merchant_id)


def _seen_json(body: str | None) -> HttpResponse:
    """A merchant's answer as PostgreSQL rendered it; None: one the caller may not see."""
    if body is None:
        raise Merchant.DoesNotExist
    return HttpResponse(body, content_type="application/json")


# The public list's filters: their fields are built once, not per request.
_merchant_filters = prebuilt(serializers.MerchantFilterSerializer)


class MerchantListApi(APIView):
    @extend_schema(
        parameters=[serializers.MerchantFilterSerializer],
        responses=page_of(serializers.MerchantOutputSerializer),
        operation_id="merchants_list",
        tags=["merchants"],
    )
    def get(self, request):
        page = partial(merchant_list_page, **_merchant_filters(request.query_params))
        return counted_json_page(request=request, view=self, fetch=page)

    @extend_schema(
        request=serializers.MerchantInputSerializer,
        responses={201: serializers.MerchantOutputSerializer},
        tags=["merchants"],
    )
    def post(self, request):
        payload = serializers.MerchantInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        merchant = merchant_create(owner=request.user, actor=request.user, **payload.validated_data)
        merchant = merchant_visible(user=request.user, merchant_id=merchant.pk)
        return Response(
            serializers.MerchantOutputSerializer(merchant).data, status=status.HTTP_201_CREATED
        )


class MerchantDetailApi(APIView):
    @extend_schema(responses=serializers.MerchantOutputSerializer, tags=["merchants"])
    def get(self, request, merchant_id: int):
        return _seen_json(merchant_detail_json(user=request.user, merchant_id=merchant_id))

    def _update(self, request, merchant_id: int, *, partial: bool):
        merchant = _managed_merchant(request, merchant_id)
        payload = serializers.MerchantInputSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        merchant_update(merchant=merchant, data=payload.validated_data, actor=request.user)
        merchant = merchant_visible(user=request.user, merchant_id=merchant.pk)
        return Response(serializers.MerchantOutputSerializer(merchant).data)

    @extend_schema(
        request=serializers.MerchantInputSerializer,
        responses=serializers.MerchantOutputSerializer,
        tags=["merchants"],
    )
    def put(self, request, merchant_id: int):
        return self._update(request, merchant_id, partial=False)

    @extend_schema(
        request=serializers.MerchantInputSerializer(partial=True),
        responses=serializers.MerchantOutputSerializer,
        tags=["merchants"],
    )
    def patch(self, request, merchant_id: int):
        return self._update(request, merchant_id, partial=True)

    @extend_schema(responses={204: None}, tags=["merchants"])
    def delete(self, request, merchant_id: int):
        merchant_delete(merchant=_managed_merchant(request, merchant_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryZoneListApi(GeoJSONAnswers, APIView):
    features = Features(geometry="area")

    @extend_schema(
        description=(
            "The merchant's delivery zones: its active ones, and for its owner and "
            "operators its inactive ones too."
        ),
        responses=page_of(serializers.DeliveryZoneOutputSerializer),
        operation_id="merchants_delivery_zones_list",
        tags=["zones"],
    )
    def get(self, request, merchant_id: int):
        zones = partial(
            delivery_zone_page,
            include_inactive=can_manage_merchant(request.user, merchant_id),
        )
        return Response(_seen_page_body(request, self, merchant_id, zones, serializers.zone_rows))

    @extend_schema(
        description="Adds a delivery zone to the merchant.",
        request=serializers.DeliveryZoneInputSerializer,
        responses={201: serializers.DeliveryZoneOutputSerializer},
        tags=["zones"],
    )
    def post(self, request, merchant_id: int):
        merchant = _managed_merchant(request, merchant_id)
        payload = serializers.DeliveryZoneInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        zone = delivery_zone_create(merchant=merchant, **payload.validated_data)
        return Response(
            serializers.DeliveryZoneOutputSerializer(zone).data, status=status.HTTP_201_CREATED
        )


class DeliveryZoneDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    def _zone(self, request, merchant_id: int, zone_id: int) -> DeliveryZone:
        merchant = _managed_merchant(request, merchant_id)
        return get_object_or_404(DeliveryZone, pk=zone_id, merchant=merchant)

    @extend_schema(responses=serializers.DeliveryZoneOutputSerializer, tags=["zones"])
    def get(self, request, merchant_id: int, zone_id: int):
        merchant_id = merchant_managed_id(user=request.user, merchant_id=merchant_id)
        row = delivery_zone_row(merchant_id=merchant_id, zone_id=zone_id)
        if row is None:
            raise DeliveryZone.DoesNotExist
        return Response(serializers.zone_row(row))

    def _update(self, request, merchant_id: int, zone_id: int, *, partial: bool):
        zone = self._zone(request, merchant_id, zone_id)
        payload = serializers.DeliveryZoneInputSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        zone = delivery_zone_update(zone=zone, data=payload.validated_data)
        return Response(serializers.DeliveryZoneOutputSerializer(zone).data)

    @extend_schema(
        request=serializers.DeliveryZoneInputSerializer,
        responses=serializers.DeliveryZoneOutputSerializer,
        tags=["zones"],
    )
    def put(self, request, merchant_id: int, zone_id: int):
        return self._update(request, merchant_id, zone_id, partial=False)

    @extend_schema(
        request=serializers.DeliveryZoneInputSerializer(partial=True),
        responses=serializers.DeliveryZoneOutputSerializer,
        tags=["zones"],
    )
    def patch(self, request, merchant_id: int, zone_id: int):
        return self._update(request, merchant_id, zone_id, partial=True)

    @extend_schema(responses={204: None}, tags=["zones"])
    def delete(self, request, merchant_id: int, zone_id: int):
        delivery_zone_delete(zone=self._zone(request, merchant_id, zone_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _results_schema(item_serializer):
    return inline_serializer(
        name=f"{item_serializer.__name__.removesuffix('Serializer')}Results",
        fields={"results": item_serializer(many=True)},
    )


class MerchantsNearbyApi(GeoJSONAnswers, APIView):
    features = Features(geometry="location")

    permission_classes = [AllowAny]

    @extend_schema(
        description=(
            "Active merchants within `radius` metres of the point, nearest first by the "
            "`distance_m` shown (geodesic, on the WGS84 spheroid); at most `limit`."
        ),
        parameters=[serializers.MerchantsNearbyParamsSerializer],
        responses=_results_schema(serializers.MerchantNearbyOutputSerializer),
        tags=["search"],
    )
    def get(self, request):
        params = serializers.MerchantsNearbyParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        rows = merchants_nearby(
            lat=query["lat"],
            lng=query["lng"],
            radius_m=query["radius"],
            limit=query["limit"],
            open_at=open_instant(open_now=query["open_now"], open_at=query["open_at"]),
        )
        # Kept nowhere, but marked as an answer the event loop's route
        # (merchants.lane_routes) may learn this view's headers from.
        return cached_json_response(
            uncached_answer(lambda: serializers.merchants_nearby_body(rows))
        )


# An uncached delivering-to answer costs a few milliseconds: its parameters' serializer
# fields are built once, not deep-copied per request.
_delivering_to_params = prebuilt(serializers.DeliveringToParamsSerializer)


class MerchantsDeliveringToApi(GeoJSONAnswers, APIView):
    features = Features(geometry="location")

    permission_classes = [AllowAny]

    @extend_schema(
        description=(
            "Active merchants with an active delivery zone covering the point (a point on "
            "a zone's edge is covered), each with the cheapest covering zone's `zone_id`, "
            "`delivery_fee` and `min_order_amount`, and its geodesic `distance_m`; nearest "
            "first."
        ),
        parameters=[serializers.DeliveringToParamsSerializer],
        responses=_results_schema(serializers.MerchantDeliveringOutputSerializer),
        tags=["search"],
    )
    def get(self, request):
        query = _delivering_to_params(request.query_params)

        def compute() -> Expiring:
            # Each merchant shows whether it is open: true until the first of them changes.
            body, changes_at = merchants_delivering_to(
                lat=query["lat"],
                lng=query["lng"],
                limit=query["limit"],
                open_at=open_instant(open_now=query["open_now"], open_at=query["open_at"]),
            )
            unserved_record(body=body, lat=query["lat"], lng=query["lng"])
            return Expiring(body, changes_at)

        if query["open_now"]:
            # Which merchants are open now changes with the clock, for merchants the answer
            # does not show too: no expiry drawn from its rows bounds it.
            return cached_json_response(uncached_answer(compute))
        answer = cached_answer(
            name="merchants-delivering-to",
            namespaces=(Namespace.MERCHANTS,),
            params=query,
            compute=compute,
        )
        return cached_json_response(answer)


def _seen_merchant(request, merchant_id: int) -> MerchantRef:
    merchant = merchant_ref(user=request.user, merchant_id=merchant_id)
    if merchant is None:
        raise Merchant.DoesNotExist
    return merchant


def _seen_page_body(request, view, merchant_id: int, fetch, render) -> dict:
    """`counted_page_body` of a merchant's rows, which `fetch` reads beside the merchant
    (None: one the caller may not see, a 404)."""

    def page(**window) -> CountedPage:
        found = fetch(user=request.user, merchant_id=merchant_id, **window)
        if found is None:
            raise Merchant.DoesNotExist
        return found

    try:
        return counted_page_body(request=request, view=view, fetch=page, render=render)
    except ValidationError:
        # An unseen merchant is a 404 whatever the page asked for.
        _seen_merchant(request, merchant_id)
        raise


class MerchantHoursApi(APIView):
    @extend_schema(responses=serializers.MerchantHoursSerializer, tags=["hours"])
    def get(self, request, merchant_id: int):
        return _seen_json(merchant_hours_json(user=request.user, merchant_id=merchant_id))

    @extend_schema(
        request=serializers.MerchantHoursSerializer,
        responses=serializers.MerchantHoursSerializer,
        tags=["hours"],
    )
    def put(self, request, merchant_id: int):
        merchant = _managed_merchant(request, merchant_id)
        payload = serializers.MerchantHoursSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        hours = merchant_hours_replace(merchant=merchant, **payload.validated_data)
        return Response(serializers.hours_output(hours))


class ClosureListApi(APIView):
    @extend_schema(
        responses=page_of(serializers.ClosureSerializer),
        operation_id="merchants_closures_list",
        tags=["hours"],
    )
    def get(self, request, merchant_id: int):
        return Response(
            _seen_page_body(request, self, merchant_id, closure_page, serializers.closure_rows)
        )

    @extend_schema(
        request=serializers.ClosureSerializer,
        responses={201: serializers.ClosureSerializer},
        tags=["hours"],
    )
    def post(self, request, merchant_id: int):
        merchant = _managed_merchant(request, merchant_id)
        payload = serializers.ClosureSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        closure = closure_create(merchant=merchant, **payload.validated_data)
        return Response(serializers.ClosureSerializer(closure).data, status=status.HTTP_201_CREATED)


class ClosureDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None}, tags=["hours"])
    def delete(self, request, merchant_id: int, closure_id: int):
        merchant = _managed_merchant(request, merchant_id)
        closure_delete(closure=get_object_or_404(Closure, pk=closure_id, merchant=merchant))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SlotPlanApi(APIView):
    @extend_schema(responses=serializers.SlotPlanSerializer, tags=["slots"])
    def get(self, request, merchant_id: int):
        plan = slot_plan(user=request.user, merchant_id=merchant_id)
        if plan is None:
            raise Merchant.DoesNotExist
        if plan[0] is None:
            raise NotFound("This merchant has no slot plan.")
        return Response(serializers.slot_plan_output(plan))

    @extend_schema(
        request=serializers.SlotPlanSerializer,
        responses=serializers.SlotPlanSerializer,
        tags=["slots"],
    )
    def put(self, request, merchant_id: int):
        merchant = _managed_merchant(request, merchant_id)
        payload = serializers.SlotPlanSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        plan = slot_plan_set(merchant=merchant, **payload.validated_data)
        return Response(serializers.SlotPlanSerializer(plan).data)

    @extend_schema(responses={204: None}, tags=["slots"])
    def delete(self, request, merchant_id: int):
        slot_plan_delete(merchant=_managed_merchant(request, merchant_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# Asked for every day a customer looks at: the parameters' fields are built once.
_slot_day_params = prebuilt(serializers.SlotDayParamsSerializer)


class SlotListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[serializers.SlotDayParamsSerializer],
        responses=serializers.SlotSerializer(many=True),
        description=(
            "The merchant's slots starting on the local `date` that lie wholly inside its"
            " opening hours, overlap no closure, start at least `lead_minutes` from now and"
            " within `horizon_days`, in time order. No slot plan: no slots."
        ),
        tags=["slots"],
    )
    def get(self, request, merchant_id: int):
        try:
            day = _slot_day_params(request.query_params)["date"]
        except ValidationError:
            # An unseen merchant is a 404 whatever the date.
            _seen_merchant(request, merchant_id)
            raise
        return _seen_json(
            merchant_day_slots_json(user=request.user, merchant_id=merchant_id, day=day)
        )
