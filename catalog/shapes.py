"""The shapes of catalog's answers: where a field of a product, or of the products/nearby
answer, is added, renamed or retyped. The serializers of the schema, the SQL that renders
the nearby answer and the trigger that keeps each product's JSON in its row are all built
from these (`geomarket.shapes`); the README's "Adding a field to the nearby answer" walks
through a change.
"""

from dataclasses import replace

from geomarket.shapes import BOOLEAN, DATETIME, INTEGER, METRES, MONEY, POINT, TEXT, Field, Shape

# A category as the API answers it. The schema's serializer is `CategorySerializer`, which
# also reads new categories; a test holds the two renderings equal.
CATEGORY = Shape(
    "Category",
    (
        Field("id", INTEGER),
        Field("name", TEXT),
        Field("slug", TEXT),
    ),
)

# A product as the API answers it. Each field's source is a column of catalog_product:
# the stored JSON (`PRODUCT_JSON_COLUMN`) is rendered from the row itself.
PRODUCT = Shape(
    "ProductOutput",
    (
        Field("id", INTEGER),
        Field("merchant_id", INTEGER),
        Field("category_id", INTEGER),
        Field("title", TEXT),
        Field("description", TEXT),
        Field("price", MONEY),
        Field("is_published", BOOLEAN),
        Field("created_at", DATETIME),
        Field("updated_at", DATETIME),
    ),
)

# The column of catalog_product holding PRODUCT's JSON text, kept by a trigger
# (`catalog.stored_json`), so that products/nearby sends it as it is.
PRODUCT_JSON_COLUMN = "listing_json"

# The merchant of a nearby product. Each source is a column of merchants_merchant, read
# into the nearby row under the name `merchant_<column>` (`catalog.selectors`).
NEARBY_MERCHANT = Shape(
    "NearbyMerchant",
    (
        Field("id", INTEGER, source="merchant_id"),
        Field("name", TEXT, source="merchant_name"),
        Field("location", POINT, source="merchant_location"),
    ),
)

# One result of products/nearby.
PRODUCT_NEARBY = Shape(
    "ProductNearby",
    (
        Field("product", shape=PRODUCT, source=PRODUCT_JSON_COLUMN, stored=True),
        Field("merchant", shape=NEARBY_MERCHANT),
        Field("distance_m", METRES),
        Field("quantity", INTEGER),
    ),
)

# Text as `geomarket.api.responses.json_bytes` writes it: Python's encoder leaves U+2028
# and U+2029 raw, where DRF's renderer (and `TEXT`) escapes them.
ENCODED_TEXT = replace(TEXT, sql="COALESCE(to_json({value})::text, 'null')")

# One result of search/products, rendered by PostgreSQL (`catalog.selectors`) and spliced
# into the page `json_bytes` writes (`catalog.serializers.search_answer`): reading twenty
# rows' values into Python and rendering them there took about 0.6 ms of the server's
# 2.4 ms of CPU per uncached search of the demo city. `ProductSearchResultSerializer`
# remains the schema; a test holds the two renderings equal byte for byte.
PRODUCT_SEARCH_RESULT = Shape(
    "ProductSearchResult",
    (
        Field("id", INTEGER),
        Field("title", ENCODED_TEXT),
        Field("description", ENCODED_TEXT),
        Field("price", MONEY),
        Field(
            "category",
            shape=Shape(
                "CategoryRef",
                (
                    Field("id", INTEGER, source="category_id"),
                    Field("name", ENCODED_TEXT, source="category_name"),
                ),
            ),
        ),
        Field("merchant_id", INTEGER),
        Field("created_at", DATETIME),
        Field("quantity", INTEGER),
    ),
)
