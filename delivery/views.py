"""`POST /api/v1/delivery/eta/`: a plain async Django view.

DRF's APIView is sync, so this view reads the request, authenticates its caller and does
all its database work in one `sync_to_async` call, through DRF's own machinery
(`geomarket.api.plain_views`), then fans the estimates out concurrently.
"""

import time

from asgiref.sync import sync_to_async
from django.http import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from delivery import serializers
from delivery.eta import Leg, estimate_all
from geomarket.api.plain_views import api_call
from geomarket.api.responses import json_response
from merchants.selectors import merchants_distance_to
from orders.selectors import orders_visible_to


def _legs_load(request, data: dict) -> list[Leg]:
    """Everything this view needs from the database, for an authenticated `request`."""
    if "order_id" in data:
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        order = (
            orders_visible_to(user=request.user)
            .select_related("delivery_address")
            .filter(pk=data["order_id"])
            .first()
        )
        if order is None:
            raise exceptions.NotFound()
        point = order.delivery_address.location
        destination = {"lat": point.y, "lng": point.x}
        merchant_ids = [order.merchant_id]
    else:
        destination = data["destination"]
        merchant_ids = data["merchant_ids"]
    # An order's merchant is estimated even when it has been deactivated since: the
    # orders it has are still delivered.
    found = merchants_distance_to(
        merchant_ids=merchant_ids,
        lat=destination["lat"],
        lng=destination["lng"],
        active_only="order_id" not in data,
    )
    missing = [merchant_id for merchant_id in merchant_ids if merchant_id not in found]
    if missing:
        raise exceptions.ValidationError(
            {"merchant_ids": [f"Unknown or inactive merchants: {missing}."]}
        )
    return [
        Leg(
            merchant_id=merchant_id,
            origin_lat=found[merchant_id][0],
            origin_lng=found[merchant_id][1],
            destination_lat=destination["lat"],
            destination_lng=destination["lng"],
            distance_m=found[merchant_id][2],
            learned_prep_time_s=found[merchant_id][3],
        )
        for merchant_id in dict.fromkeys(merchant_ids)
    ]


def _legs_requested(request) -> list[Leg]:
    """The request read as DRF's views read one, in their order: the caller first, then
    the method, the media type and the body (with the project's one JSON parser)."""
    if request.method != "POST":
        raise exceptions.MethodNotAllowed(request.method)
    body = request.data
    if not isinstance(body, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    payload = serializers.EtaInputSerializer(data=body)
    payload.is_valid(raise_exception=True)
    return _legs_load(request, payload.validated_data)


# Documented in the OpenAPI schema by `geomarket.api.schema`: spectacular sees DRF views only.
@csrf_exempt
async def eta_view(request):
    started = time.perf_counter()
    # One thread hop for the caller, the body and the legs; every refusal in it is
    # answered by the one exception handler, as on every other endpoint.
    legs = await sync_to_async(api_call, thread_sensitive=True)(
        request, _legs_requested, allowed_methods=("POST",)
    )
    if isinstance(legs, HttpResponseBase):
        return legs
    results = await estimate_all(legs)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return json_response({"results": results, "elapsed_ms": elapsed_ms})
