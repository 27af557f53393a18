from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


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
    description = models.TextField(blank=True, default="")
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
