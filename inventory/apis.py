from functools import partial

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from geomarket.api.json_pages import counted_json_page
from geomarket.api.pagination import counted_page_body, page_of
from geomarket.api.permissions import IsOwnerOrOperator, can_manage_merchant
from geomarket.api.validation import prebuilt
from geomarket.errors import Forbidden
from inventory import serializers
from inventory.models import Inventory
from inventory.selectors import (
    inventory_page,
    inventory_row,
    inventory_visible_to,
    merchant_stock_page,
)
from inventory.services import (
    inventory_adjust,
    inventory_create,
    inventory_delete,
    inventory_update,
)
from inventory.shapes import INVENTORY
from merchants.selectors import merchant_managed_id


def _visible_inventory(request, inventory_id: int) -> Inventory:
    return inventory_visible_to(user=request.user).get(pk=inventory_id)


# The list's filters are read on every call: their serializer fields are built once.
_inventory_filters = prebuilt(serializers.InventoryFilterSerializer)


class InventoryListApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        parameters=[serializers.InventoryFilterSerializer],
        responses=page_of(serializers.InventoryOutputSerializer),
        operation_id="inventory_list",
        tags=["inventory"],
    )
    def get(self, request):
        filters = _inventory_filters(request.query_params)
        body = counted_page_body(
            request=request,
            view=self,
            fetch=partial(inventory_page, user=request.user, **filters),
            render=INVENTORY.render_rows,
        )
        return Response(body)

    @extend_schema(
        request=serializers.InventoryCreateSerializer,
        responses={201: serializers.InventoryOutputSerializer},
        tags=["inventory"],
    )
    def post(self, request):
        payload = serializers.InventoryCreateSerializer(
            data=request.data, context={"user": request.user}
        )
        payload.is_valid(raise_exception=True)
        if not can_manage_merchant(request.user, payload.validated_data["product"].merchant_id):
            raise Forbidden("You may only stock your own merchant's products.")
        inventory = inventory_create(**payload.validated_data)
        return Response(
            serializers.InventoryOutputSerializer(inventory).data, status=status.HTTP_201_CREATED
        )


class InventoryDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(responses=serializers.InventoryOutputSerializer, tags=["inventory"])
    def get(self, request, inventory_id: int):
        row = inventory_row(user=request.user, inventory_id=inventory_id)
        if row is None:
            raise Inventory.DoesNotExist
        return Response(INVENTORY.render(row))

    def _update(self, request, inventory_id: int, *, partial: bool):
        inventory = _visible_inventory(request, inventory_id)
        payload = serializers.InventoryUpdateSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        inventory = inventory_update(inventory=inventory, data=payload.validated_data)
        return Response(serializers.InventoryOutputSerializer(inventory).data)

    @extend_schema(
        request=serializers.InventoryUpdateSerializer,
        responses=serializers.InventoryOutputSerializer,
        tags=["inventory"],
    )
    def put(self, request, inventory_id: int):
        return self._update(request, inventory_id, partial=False)

    @extend_schema(
        request=serializers.InventoryUpdateSerializer(partial=True),
        responses=serializers.InventoryOutputSerializer,
        tags=["inventory"],
    )
    def patch(self, request, inventory_id: int):
        return self._update(request, inventory_id, partial=True)

    @extend_schema(responses={204: None}, tags=["inventory"])
    def delete(self, request, inventory_id: int):
        inventory_delete(inventory=_visible_inventory(request, inventory_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InventoryAdjustApi(APIView):
    permission_classes = [IsAuthenticated, IsOwnerOrOperator]

    @extend_schema(
        request=serializers.InventoryAdjustSerializer,
        responses=serializers.InventoryOutputSerializer,
        tags=["inventory"],
    )
    def post(self, request, inventory_id: int):
        inventory = _visible_inventory(request, inventory_id)
        payload = serializers.InventoryAdjustSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        inventory = inventory_adjust(
            inventory_id=inventory.pk, actor=request.user, **payload.validated_data
        )
        return Response(serializers.InventoryOutputSerializer(inventory).data)


class MerchantStockApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=page_of(serializers.MerchantStockSerializer),
        operation_id="merchants_inventory_list",
        tags=["inventory"],
    )
    def get(self, request, merchant_id: int):
        merchant_managed_id(user=request.user, merchant_id=merchant_id)
        return counted_json_page(
            request=request, view=self, fetch=partial(merchant_stock_page, merchant_id=merchant_id)
        )
