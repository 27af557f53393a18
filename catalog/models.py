from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

# The longest description a product may have, in characters. A product's search vector
# (its title, category name and description: `search_vector`) must stay within
# PostgreSQL's 1 MB for a tsvector, or the trigger that writes it refuses the row. The
# worst texts tried, distinct words of 4-byte letters, make 5 bytes of vector a
# character: this keeps every description's far below the limit.
PRODUCT_DESCRIPTION_MAX_LENGTH = 20_000


class ProductCategory(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "product categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="products"
    )
    category = models.ForeignKey(ProductCategory, on_delete=models.PROTECT, related_name="products")
    title = models.CharField(max_length=200)
    description = models.TextField(
        blank=True, default="", max_length=PRODUCT_DESCRIPTION_MAX_LENGTH
    )
    price = models.DecimalField(max_digits=10, decimal_places=2)
    is_published = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Title (weight A), category name (B) and description (C), maintained by database
    # triggers (migration 0003) because the category name lives in another table.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
            # The target of inventory's composite foreign key (product, merchant), which makes
            # the database refuse a stock row whose merchant is not the product's merchant.
            models.UniqueConstraint(fields=["id", "merchant"], name="product_id_merchant_unique"),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "is_published", "id"], name="product_merchant_pub_idx"
            ),
            models.Index(fields=["category", "is_published"], name="product_category_pub_idx"),
            models.Index(fields=["-created_at"], name="product_created_idx"),
            GinIndex(fields=["search_vector"], name="product_search_gin"),
            # Suggest matches with Django's istartswith/icontains, which compare UPPER(title):
            # the trigram index serves substrings, the pattern index serves prefixes.
            GinIndex(
                OpClass(Upper("title"), name="gin_trgm_ops"),
                name="product_title_trgm",
                condition=Q(is_published=True),
            ),
            models.Index(
                OpClass(Upper("title"), name="text_pattern_ops"),
                name="product_title_prefix",
                condition=Q(is_published=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ProductTerm(models.Model):
    """A rank-ordered index of full-text search: one row per lexeme of a published
    product's title or category name (weights A and B of `search_vector`), kept by
    database triggers (migration 0005_search_terms).

    The primary key (lexeme, rank_key, product_id), which also carries the columns the
    search filters read, walks a word's products best first (`rank_key` is minus the
    product's `ts_rank_cd` for that word alone, ties by id) without reading any other
    table, so a one-word search stops after the rows it answers instead of ranking every
    match (`catalog.selectors.products_search_page`).
    """

    pk = models.CompositePrimaryKey("lexeme", "rank_key", "product_id")
    lexeme = models.TextField()
    rank_key = models.FloatField()
    # No foreign key constraint: the triggers keep these rows, and a constraint would
    # check each of the millions the migration writes. Its index serves their deletes.
    product = models.ForeignKey(
        Product, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    price = models.DecimalField(max_digits=10, decimal_places=2)
    merchant_id = models.BigIntegerField()
    category_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.lexeme} {self.product_id}"


class ProductTitle(models.Model):
    """The distinct titles of published products, each with how many published products
    carry it, kept by database triggers (migration 0006_suggest_titles).

    Suggest scans these (19,000 on the bench city) instead of the products sharing them
    (1,000,000), and checks that a candidate has a published product of an active merchant
    only for the titles it answers (`catalog.selectors.product_title_suggestions`), so a
    merchant's deactivation needs no write here.
    """

    title = models.CharField(max_length=200, primary_key=True)
    # What istartswith/icontains compare, stored so that matching a few thousand
    # candidates does not compute it for each.
    title_upper = models.GeneratedField(
        expression=Upper("title"), output_field=models.TextField(), db_persist=True
    )
    products = models.PositiveIntegerField()

    class Meta:
        indexes = [
            GinIndex(OpClass("title_upper", name="gin_trgm_ops"), name="product_title_name_trgm"),
            models.Index(
                OpClass("title_upper", name="text_pattern_ops"), name="product_title_name_prefix"
            ),
        ]

    def __str__(self) -> str:
        return self.title
