"""The shapes of catalog's answers: where a field of a product, or of the products/nearby
answer, is added, renamed or retyped. The serializers of the schema, the SQL that renders
the nearby answer and the trigger that keeps each product's JSON in its row are all built
from these (`geomarket.shapes`); the README's "Adding a field to the nearby answer" walks
through a change.
"""

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
