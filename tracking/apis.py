from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from geomarket.errors import NotFound
from tracking.selectors import order_tracking
from tracking.serializers import OrderTrackingSerializer


class OrderTrackingApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OrderTrackingSerializer, tags=["tracking"])
    def get(self, request, order_id: int):
        tracking = order_tracking(user=request.user, order_id=order_id)
        if tracking is None:
            raise NotFound("No such order.")
        return Response(OrderTrackingSerializer(tracking).data)
