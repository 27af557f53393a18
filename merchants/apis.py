from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from geomarket.answer_cache import Namespace, cached_answer
from geomarket.api.pagination import page_of, paginated_response
from geomarket.api.permissions import can_manage_merchant
from geomarket.api.responses import cached_json_response, json_bytes
from merchants import serializers
from merchants.models import DeliveryZone, Merchant
from merchants.selectors import (
    delivery_zone_list,
    merchant_list,
    merchant_managed,
    merchant_visible,
    merchants_delivering_to,
    merchants_nearby,
)
from merchants.services import (
    delivery_zone_create,
    delivery_zone_delete,
    delivery_zone_update,
    merchant_create,
    merchant_delete,
    merchant_update,
)


def _managed_merchant(request, merchant_id: int) -> Merchant:
    return merchant_managed(user=request.user, merchant_id=merchant_id)


class MerchantListApi(APIView):
    @extend_schema(
        parameters=[serializers.MerchantFilterSerializer],
        responses=page_of(serializers.MerchantOutputSerializer),
        operation_id="merchants_list",
        tags=["merchants"],
    )
    def get(self, request):
        filters = serializers.MerchantFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated_response(
            request=request,
            view=self,
            queryset=merchant_list(**filters.validated_data),
            serializer_class=serializers.MerchantOutputSerializer,
        )

    @extend_schema(
        request=serializers.MerchantInputSerializer,
        responses={201: serializers.MerchantOutputSerializer},
        tags=["merchants"],
    )
    def post(self, request):
        payload = serializers.MerchantInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        merchant = merchant_create(owner=request.user, **payload.validated_data)
        merchant = merchant_visible(user=request.user, merchant_id=merchant.pk)
        return Response(
            serializers.MerchantOutputSerializer(merchant).data, status=status.HTTP_201_CREATED
        )


class MerchantDetailApi(APIView):
    @extend_schema(responses=serializers.MerchantOutputSerializer, tags=["merchants"])
    def get(self, request, merchant_id: int):
        merchant = merchant_visible(user=request.user, merchant_id=merchant_id)
        if merchant is None:
            raise Merchant.DoesNotExist
        return Response(serializers.MerchantOutputSerializer(merchant).data)

    def _update(self, request, merchant_id: int, *, partial: bool):
        merchant = _managed_merchant(request, merchant_id)
        payload = serializers.MerchantInputSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        merchant_update(merchant=merchant, data=payload.validated_data)
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
        merchant_delete(merchant=_managed_merchant(request, merchant_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryZoneListApi(APIView):
    @extend_schema(
        responses=page_of(serializers.DeliveryZoneOutputSerializer),
        operation_id="merchants_delivery_zones_list",
        tags=["zones"],
    )
    def get(self, request, merchant_id: int):
        merchant = merchant_visible(user=request.user, merchant_id=merchant_id)
        if merchant is None:
            raise Merchant.DoesNotExist
        zones = delivery_zone_list(
            merchant=merchant, include_inactive=can_manage_merchant(request.user, merchant.pk)
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=zones,
            serializer_class=serializers.DeliveryZoneOutputSerializer,
        )

    @extend_schema(
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
        zone = self._zone(request, merchant_id, zone_id)
        return Response(serializers.DeliveryZoneOutputSerializer(zone).data)

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


class MerchantsNearbyApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[serializers.MerchantsNearbyParamsSerializer],
        responses=_results_schema(serializers.MerchantNearbyOutputSerializer),
        tags=["search"],
    )
    def get(self, request):
        params = serializers.MerchantsNearbyParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        rows = merchants_nearby(
            lat=query["lat"], lng=query["lng"], radius_m=query["radius"], limit=query["limit"]
        )
        return Response({"results": [serializers.merchant_row(row) for row in rows]})


class MerchantsDeliveringToApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[serializers.DeliveringToParamsSerializer],
        responses=_results_schema(serializers.MerchantDeliveringOutputSerializer),
        tags=["search"],
    )
    def get(self, request):
        params = serializers.DeliveringToParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data

        def compute() -> bytes:
            rows = merchants_delivering_to(lat=query["lat"], lng=query["lng"], limit=query["limit"])
            return json_bytes({"results": [serializers.merchant_row(row) for row in rows]})

        answer = cached_answer(
            name="merchants-delivering-to",
            namespaces=(Namespace.MERCHANTS,),
            params=query,
            compute=compute,
        )
        return cached_json_response(answer)
