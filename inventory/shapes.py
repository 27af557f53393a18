"""The shapes of inventory's answers (`geomarket.shapes`): the serializers of the schema
and the rows rendered without one are built from these."""

from geomarket.shapes import DATETIME, INTEGER, MONEY, TEXT, Field, Shape

# A product's stock as the API answers it; each source is a column of inventory_inventory.
INVENTORY = Shape(
    "InventoryOutput",
    (
        Field("id", INTEGER),
        Field("merchant_id", INTEGER),
        Field("product_id", INTEGER),
        Field("quantity", INTEGER),
        Field("low_stock_threshold", INTEGER),
        Field("updated_at", DATETIME),
    ),
)

# One row of a merchant's stock list, with its product's title, price and category. The
# schema's serializer is `MerchantStockSerializer`, whose price is the contract's
# `MoneyField`; a test holds the two renderings equal.
MERCHANT_STOCK = Shape(
    "MerchantStock",
    (
        Field("id", INTEGER),
        Field("product_id", INTEGER),
        Field("product_title", TEXT),
        Field("price", MONEY),
        Field("category_name", TEXT),
        Field("quantity", INTEGER),
        Field("low_stock_threshold", INTEGER),
        Field("updated_at", DATETIME),
    ),
)
