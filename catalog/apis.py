from functools import partial

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import serializers
from catalog.models import Product, ProductCategory
from catalog.selectors import (
    SEARCH_COUNT_BOUND,
    SUGGEST_LIMIT,
    category_page,
    category_row,
    product_listing,
    product_listing_page,
    product_title_suggestions,
    product_visible,
    products_nearby_answer,
    products_search_page,
)
from catalog.services import (
    category_create,
    category_delete,
    category_update,
    product_create,
    product_delete,
    product_update,
)
from catalog.shapes import CATEGORY
from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.answer_cache import Namespace, cached_answer, uncached_answer
from geomarket.api.geojson import Features, GeoJSONAnswers
from geomarket.api.json_pages import counted_json_page
from geomarket.api.pagination import (
    CountedPage,
    counted_page_body,
    page_link_base,
    page_of,
)
from geomarket.api.permissions import IsOperatorOrReadOnly, can_manage_merchant
from geomarket.api.responses import cached_json_response, json_bytes
from geomarket.api.validation import prebuilt
from geomarket.demand import unserved_record
from geomarket.errors import DomainError, Forbidden
from geomarket.ratelimit import RateLimitedMixin
from merchants.models import Merchant


class CategoryListApi(APIView):
    permission_classes = [IsOperatorOrReadOnly]

    @extend_schema(
        responses=page_of(serializers.CategorySerializer),
        operation_id="categories_list",
        tags=["catalog"],
    )
    def get(self, request):
        body = counted_page_body(
            request=request, view=self, fetch=category_page, render=CATEGORY.render_rows
        )
        return Response(body)

    @extend_schema(
        request=serializers.CategorySerializer,
        responses={201: serializers.CategorySerializer},
        tags=["catalog"],
    )
    def post(self, request):
        payload = serializers.CategorySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        category = category_create(**payload.validated_data)
        return Response(
            serializers.CategorySerializer(category).data, status=status.HTTP_201_CREATED
        )


class CategoryDetailApi(APIView):
    permission_classes = [IsOperatorOrReadOnly]

    @extend_schema(responses=serializers.CategorySerializer, tags=["catalog"])
    def get(self, request, category_id: int):
        row = category_row(category_id=category_id)
        if row is None:
            raise ProductCategory.DoesNotExist
        return Response(CATEGORY.render(row))

    def _update(self, request, category_id: int, *, partial: bool):
        category = get_object_or_404(ProductCategory, pk=category_id)
        payload = serializers.CategorySerializer(category, data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        category = category_update(category=category, data=payload.validated_data)
        return Response(serializers.CategorySerializer(category).data)

    @extend_schema(
        request=serializers.CategorySerializer,
        responses=serializers.CategorySerializer,
        tags=["catalog"],
    )
    def put(self, request, category_id: int):
        return self._update(request, category_id, partial=False)

    @extend_schema(
        request=serializers.CategorySerializer(partial=True),
        responses=serializers.CategorySerializer,
        tags=["catalog"],
    )
    def patch(self, request, category_id: int):
        return self._update(request, category_id, partial=True)

    @extend_schema(responses={204: None}, tags=["catalog"])
    def delete(self, request, category_id: int):
        category_delete(category=get_object_or_404(ProductCategory, pk=category_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _merchant_for_new_product(request, merchant_id: int | None) -> Merchant:
    """Owners create for their own merchant; operators name the merchant."""
    if merchant_id is None:
        merchant_id = user_merchant_id(request.user)
        if merchant_id is None:
            if is_operator(request.user):
                raise DomainError("Operators must name the merchant.", field="merchant_id")
            raise Forbidden("Only merchant owners and operators may create products.")
    if not can_manage_merchant(request.user, merchant_id):
        raise Forbidden("You may only create products for your own merchant.")
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        raise DomainError("Unknown merchant.", field="merchant_id")
    return merchant


def _managed_product(request, product_id: int) -> Product:
    product = product_visible(user=request.user, product_id=product_id)
    if product is None:
        raise Product.DoesNotExist
    if not can_manage_merchant(request.user, product.merchant_id):
        raise Forbidden("Only the merchant's owner or an operator may change this product.")
    return product


def _stored_listings_page(**filters) -> CountedPage:
    """`product_listing_page`'s page as one JSON array, written into the answer as it is
    (`counted_json_page`): each product's stored JSON is the bytes its serializer would
    render, so nothing is parsed to be rendered again."""
    page = product_listing_page(**filters)
    texts = [text for (text,) in page.rows]
    return CountedPage(rows=[f"[{','.join(texts)}]"] if texts else [], count=page.count)


# The list's filters are read on every call: their serializer fields are built once.
_product_filters = prebuilt(serializers.ProductFilterSerializer)


class ProductListApi(APIView):
    @extend_schema(
        parameters=[serializers.ProductFilterSerializer],
        responses=page_of(serializers.ProductOutputSerializer),
        operation_id="products_list",
        tags=["catalog"],
    )
    def get(self, request):
        filters = _product_filters(request.query_params)
        return counted_json_page(
            request=request,
            view=self,
            fetch=partial(_stored_listings_page, user=request.user, **filters),
        )

    @extend_schema(
        request=serializers.ProductCreateSerializer,
        responses={201: serializers.ProductOutputSerializer},
        tags=["catalog"],
    )
    def post(self, request):
        payload = serializers.ProductCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        merchant = _merchant_for_new_product(request, data.pop("merchant_id", None))
        product = product_create(merchant=merchant, **data)
        return Response(
            serializers.ProductOutputSerializer(product).data, status=status.HTTP_201_CREATED
        )


class ProductDetailApi(APIView):
    @extend_schema(responses=serializers.ProductOutputSerializer, tags=["catalog"])
    def get(self, request, product_id: int):
        listing = product_listing(user=request.user, product_id=product_id)
        if listing is None:
            raise Product.DoesNotExist
        # The stored JSON is the bytes its serializer renders (`catalog.stored_json`), as
        # the product list writes it.
        return HttpResponse(listing.encode(), content_type="application/json")

    def _update(self, request, product_id: int, *, partial: bool):
        product = _managed_product(request, product_id)
        payload = serializers.ProductUpdateSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        product = product_update(product=product, data=payload.validated_data)
        return Response(serializers.ProductOutputSerializer(product).data)

    @extend_schema(
        request=serializers.ProductUpdateSerializer,
        responses=serializers.ProductOutputSerializer,
        tags=["catalog"],
    )
    def put(self, request, product_id: int):
        return self._update(request, product_id, partial=False)

    @extend_schema(
        request=serializers.ProductUpdateSerializer(partial=True),
        responses=serializers.ProductOutputSerializer,
        tags=["catalog"],
    )
    def patch(self, request, product_id: int):
        return self._update(request, product_id, partial=True)

    @extend_schema(responses={204: None}, tags=["catalog"])
    def delete(self, request, product_id: int):
        product_delete(product=_managed_product(request, product_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductsNearbyApi(GeoJSONAnswers, APIView):
    # A product has no place of its own: it is where its merchant is.
    features = Features(geometry="merchant.location", id="product.id")

    permission_classes = [AllowAny]

    @extend_schema(
        description=(
            "Published products of active merchants within `radius` metres of the point, "
            "nearest merchant first by the `distance_m` shown (geodesic, to the "
            "centimetre), ties by product id; at most `limit`. `quantity` is the product's "
            "stock."
        ),
        parameters=[serializers.ProductsNearbyParamsSerializer],
        responses=inline_serializer(
            name="ProductsNearbyResults",
            fields={"results": serializers.ProductNearbySerializer(many=True)},
        ),
        tags=["search"],
    )
    def get(self, request):
        params = serializers.ProductsNearbyParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data

        def compute() -> bytes:
            body = products_nearby_answer(**query)
            unserved_record(body=body, lat=query["lat"], lng=query["lng"])
            return body

        if query["open_now"]:
            # Which shops are open now changes with the clock, not with any write.
            return cached_json_response(uncached_answer(compute))
        answer = cached_answer(
            name="products-nearby",
            namespaces=(Namespace.CATALOG, Namespace.MERCHANTS),
            params=query,
            compute=compute,
        )
        return cached_json_response(answer)


# Searches are the busiest uncached reads: the parameters' serializer fields are built
# once, not deep-copied per request.
_search_params = prebuilt(serializers.ProductSearchParamsSerializer)


class ProductSearchApi(APIView):
    """Anonymous searches are mostly answered on the event loop (catalog/search_route.py),
    from the same statement and page builder."""

    permission_classes = [AllowAny]

    @extend_schema(
        description=(
            "Full-text search over the title, category name and description of published "
            "products of active merchants, in pages. `count` is exact up to "
            f"{SEARCH_COUNT_BOUND:,} matches; past that it is an estimate, and "
            "`count_is_estimate` says so."
        ),
        parameters=[serializers.ProductSearchParamsSerializer],
        responses=page_of(serializers.ProductSearchResultSerializer, estimated_count=True),
        operation_id="search_products_list",
        tags=["search"],
    )
    def get(self, request):
        query = _search_params(request.query_params)
        base_url = request.build_absolute_uri(request.path)
        url = page_link_base(base_url, request.query_params, serializers.SEARCH_PARAM_NAMES)

        def compute() -> bytes:
            return json_bytes(
                counted_page_body(
                    request=request,
                    view=self,
                    fetch=partial(products_search_page, **query),
                    render=serializers.product_search_results,
                    url=url,
                    flag_estimate=True,
                )
            )

        answer = cached_answer(
            name="search-products",
            namespaces=(Namespace.CATALOG, Namespace.MERCHANTS),
            # The URL holds every parameter the page and its links are built from, as
            # given, and the scheme and host the links name.
            params={"url": url},
            compute=compute,
        )
        response = cached_json_response(answer)
        # What the event loop's route builds the links of its answers from.
        response.base_url = base_url
        return response


_suggest_params = prebuilt(serializers.SuggestParamsSerializer)


class SuggestApi(RateLimitedMixin, APIView):
    permission_classes = [AllowAny]
    rate_limits = (("suggest", "SUGGEST_RATE_LIMIT_PER_MINUTE", "client"),)
    # The limit's check is sent before the handler runs, and the cached answer is looked
    # up while Redis runs it: one round trip less than checking first.
    rate_limit_deferred = True

    @extend_schema(
        description=(
            f"At most {SUGGEST_LIMIT} distinct titles of published products of active "
            "merchants that contain `q`, case-insensitively (`%`, `_` and `\\` are plain "
            "characters): those starting with it first, then the others, each group in "
            "code point order of the titles. `q` is 3 to 100 characters (code points) "
            "once trimmed. Each client (the user, else the IP address) may make "
            "`SUGGEST_RATE_LIMIT_PER_MINUTE` (20 by default) requests a minute; every answer "
            "carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`."
        ),
        parameters=[serializers.SuggestParamsSerializer],
        responses=serializers.SuggestOutputSerializer,
        tags=["search"],
    )
    def get(self, request):
        try:
            q = _suggest_params(request.query_params)["q"]
        except ValidationError:
            # A client over its limit gets its 429 whatever is wrong with its query.
            self.rate_limit_admit()
            raise

        def compute() -> bytes:
            # Nothing is read from the database for a client over its limit.
            self.rate_limit_admit()
            return json_bytes({"query": q, "suggestions": product_title_suggestions(q=q)})

        answer = cached_answer(
            name="search-suggest",
            namespaces=(Namespace.CATALOG, Namespace.MERCHANTS),
            # Keyed on `q` as given: any folding of case here would have to be PostgreSQL's
            # UPPER() exactly, or two spellings it tells apart would share an answer.
            params={"q": q},
            compute=compute,
        )
        self.rate_limit_admit()
        return cached_json_response(answer)
