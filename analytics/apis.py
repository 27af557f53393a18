from functools import partial

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import serializers
from analytics.selectors import (
    combined_json_answer,
    combined_report,
    json_answer,
    merchants_json_statement,
    merchants_report,
    revenue_json_statement,
    revenue_report,
    top_products,
    top_products_json_statement,
)
from geomarket.api.permissions import IsOperator
from geomarket.api.renderers import CSVRenderer

FORMAT = OpenApiParameter(
    name="format",
    type=OpenApiTypes.STR,
    enum=["json", "csv"],
    required=False,
    description="`csv` answers the same rows as CSV. A text that begins with `=`, `+`, `-`, "
    "`@`, a tab or a carriage return (a merchant's name, a product's title), which a "
    "spreadsheet would run as a formula, is written behind a `'`. The file comes as an "
    "attachment named `<report>_<date_from>_<date_to>.csv`; a report with no rows is its "
    "header line alone.",
)


def csv_or_json(json_shape):
    return {(200, "application/json"): json_shape, (200, "text/csv"): OpenApiTypes.STR}


class ReportApi(APIView):
    permission_classes = [IsAuthenticated, IsOperator]
    renderer_classes = [JSONRenderer, CSVRenderer]
    params_class = serializers.ReportParamsSerializer
    # The CSV answer's file name: `<csv_name>_<date_from>_<date_to>.csv`.
    csv_name = "report"
    range_ = None

    def finalize_response(self, request, response, *args, **kwargs):
        # Only report rows come as CSV: OPTIONS metadata stays JSON whatever format was
        # asked for, as errors do (`geomarket.api.exceptions`). A HEAD runs `get` and
        # answers the headers its GET would.
        if request.method not in ("GET", "HEAD"):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        elif request.accepted_renderer.format == "csv" and self.range_ is not None:
            # Saved by a browser or `curl -OJ` under a name that says what it holds.
            response["Content-Disposition"] = (
                f'attachment; filename="{self.csv_name}_{self.range_.date_from.isoformat()}'
                f'_{self.range_.date_to.isoformat()}.csv"'
            )
        return super().finalize_response(request, response, *args, **kwargs)

    def answer(self, request, *, rows, json_statement):
        """The report's rows as CSV when asked for; else its JSON, rendered by PostgreSQL
        from the same shape (`json_array_sql`), as the event-loop route sends it: tens of
        thousands of rows (every merchant's top products) cost seconds to render in
        Python."""
        if request.accepted_renderer.format == "csv":
            return Response(rows())
        return HttpResponse(json_answer(json_statement()), content_type="application/json")

    def params(self, request) -> dict:
        query = request.query_params.copy()
        query.pop("format", None)
        params = self.params_class(data=query)
        params.is_valid(raise_exception=True)
        self.range_ = params.validated_data["range_"]
        return params.validated_data


class TopProductsApi(ReportApi):
    csv_name = "top-products"
    params_class = serializers.TopProductsParamsSerializer
    csv_columns = list(serializers.TopProductRowSerializer().fields)

    @extend_schema(
        parameters=[serializers.TopProductsParamsSerializer, FORMAT],
        responses=csv_or_json(serializers.TopProductRowSerializer(many=True)),
        tags=["analytics"],
    )
    def get(self, request):
        p = self.params(request)
        report = {"range_": p["range_"], "merchant_id": p.get("merchant_id"), "top": p["top"]}
        return self.answer(
            request,
            rows=partial(top_products, **report),
            json_statement=partial(top_products_json_statement, **report),
        )


class RevenueApi(ReportApi):
    csv_name = "revenue"
    params_class = serializers.RevenueParamsSerializer
    csv_columns = list(serializers.RevenueRowSerializer().fields)

    @extend_schema(
        parameters=[serializers.RevenueParamsSerializer, FORMAT],
        responses=csv_or_json(serializers.RevenueRowSerializer(many=True)),
        tags=["analytics"],
    )
    def get(self, request):
        p = self.params(request)
        report = {
            "range_": p["range_"],
            "interval": p["interval"],
            "merchant_id": p.get("merchant_id"),
        }
        return self.answer(
            request,
            rows=partial(revenue_report, **report),
            json_statement=partial(revenue_json_statement, **report),
        )


class MerchantsReportApi(ReportApi):
    csv_name = "merchants"
    csv_columns = list(serializers.MerchantRowSerializer().fields)

    @extend_schema(
        parameters=[serializers.ReportParamsSerializer, FORMAT],
        responses=csv_or_json(serializers.MerchantRowSerializer(many=True)),
        tags=["analytics"],
    )
    def get(self, request):
        range_ = self.params(request)["range_"]
        return self.answer(
            request,
            rows=partial(merchants_report, range_=range_),
            json_statement=partial(merchants_json_statement, range_=range_),
        )


class CombinedReportApi(ReportApi):
    csv_name = "analytics"
    csv_columns = {
        name: list(field.child.fields)
        for name, field in serializers.CombinedReportSerializer().fields.items()
    }

    @extend_schema(
        parameters=[serializers.ReportParamsSerializer, FORMAT],
        responses=csv_or_json(serializers.CombinedReportSerializer),
        tags=["analytics"],
    )
    def get(self, request):
        range_ = self.params(request)["range_"]
        if request.accepted_renderer.format == "csv":
            return Response(combined_report(range_=range_))
        return HttpResponse(combined_json_answer(range_=range_), content_type="application/json")
