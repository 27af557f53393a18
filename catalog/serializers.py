import json

from rest_framework import serializers

from catalog.models import PRODUCT_DESCRIPTION_MAX_LENGTH, ProductCategory
from catalog.selectors import SEARCH_SORTS
from catalog.services import CategorySlugTaken
from catalog.shapes import NEARBY_MERCHANT, PRODUCT, PRODUCT_NEARBY
from geomarket.api.fields import (
    CategoryRefField,
    IdField,
    JSONBooleanField,
    MoneyField,
    NearPointSerializer,
)


class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(
        max_length=100,
        help_text="Unique; not digits alone, which the `category` filters read as an id.",
    )

    def validate_slug(self, value: str) -> str:
        taken = ProductCategory.objects.filter(slug=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(CategorySlugTaken.default_message)
        return value


class ProductCreateSerializer(serializers.Serializer):
    merchant_id = IdField(required=False)
    category_id = serializers.PrimaryKeyRelatedField(
        source="category", queryset=ProductCategory.objects.all(), pk_field=IdField()
    )
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=PRODUCT_DESCRIPTION_MAX_LENGTH
    )
    price = MoneyField()
    is_published = JSONBooleanField(required=False, default=True)


class ProductUpdateSerializer(serializers.Serializer):
    category_id = serializers.PrimaryKeyRelatedField(
        source="category", queryset=ProductCategory.objects.all(), pk_field=IdField()
    )
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=PRODUCT_DESCRIPTION_MAX_LENGTH
    )
    price = MoneyField()
    is_published = JSONBooleanField(required=False, default=True)


# Declared in `catalog.shapes`, as the SQL renderings of the same answers are.
ProductOutputSerializer = PRODUCT.serializer()


class ProductFilterSerializer(serializers.Serializer):
    merchant_id = IdField(required=False)
    category = CategoryRefField(required=False)
    is_published = serializers.BooleanField(required=False, allow_null=True, default=None)


class PriceRangeMixin(serializers.Serializer):
    min_price = MoneyField(required=False)
    max_price = MoneyField(required=False)

    def validate(self, attrs):
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_price": ["Must not exceed max_price."]})
        return attrs


class ProductsNearbyParamsSerializer(NearPointSerializer, PriceRangeMixin):
    q = serializers.CharField(
        required=False, max_length=200, help_text="Full-text query, as search's `q`."
    )
    category = CategoryRefField(required=False, help_text="A category's id or slug.")
    in_stock = serializers.BooleanField(
        required=False,
        default=True,
        help_text="true: only products with stock (quantity > 0); false: all.",
    )
    deliverable = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: only merchants with an active delivery zone covering the point "
        "(its boundary included).",
    )


class ProductSearchParamsSerializer(PriceRangeMixin):
    q = serializers.CharField(
        required=False,
        max_length=200,
        help_text='Web-search syntax: words, "quoted phrases", `or`, `-word`. A query of '
        "only stop words or punctuation matches nothing.",
    )
    category = CategoryRefField(required=False, help_text="A category's id or slug.")
    merchant_id = IdField(required=False)
    in_stock = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: only products with stock (quantity > 0); false or absent: all.",
    )
    sort = serializers.ChoiceField(
        choices=list(SEARCH_SORTS),
        required=False,
        help_text="Default: `relevance` with `q`, `newest` without (as is `relevance` "
        "without `q`). Ties go by product id (`newest`: the newer id first).",
    )


# The parameters a search's answer depends on, besides the page's.
SEARCH_PARAM_NAMES = tuple(ProductSearchParamsSerializer().fields)


class SuggestParamsSerializer(serializers.Serializer):
    q = serializers.CharField(min_length=3, max_length=100)


NearbyMerchantSerializer = NEARBY_MERCHANT.serializer()
ProductNearbySerializer = PRODUCT_NEARBY.serializer()


class CategoryRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ProductSearchResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    price = MoneyField()
    category = CategoryRefSerializer()
    merchant_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    quantity = serializers.IntegerField(source="stock")


def product_search_results(rows) -> list[dict]:
    """`ProductSearchResultSerializer` of search rows (`catalog.selectors.products_search_page`),
    built directly: DRF spends about 80 µs a row on nested serializers. The products'
    fields come from their stored JSON (`PRODUCT`, rendered as DRF renders them), read as
    text: reading a time and a price into Python and formatting them again cost more.
    Every row's JSON is parsed in one call, as one array: a call per row took 70 µs for a
    page of twenty, one 40. The serializer remains the schema, and a test holds the two
    equal byte for byte."""
    products = json.loads("[" + ",".join([row[0] for row in rows]) + "]")
    return [
        {
            "id": product["id"],
            "title": product["title"],
            "description": product["description"],
            "price": product["price"],
            "category": {"id": product["category_id"], "name": category_name},
            "merchant_id": product["merchant_id"],
            "created_at": product["created_at"],
            "quantity": stock,
        }
        for product, (_, category_name, stock) in zip(products, rows, strict=True)
    ]


class SuggestOutputSerializer(serializers.Serializer):
    query = serializers.CharField()
    suggestions = serializers.ListField(child=serializers.CharField())
