from django.db import models
from django.db.models import Q


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
        ]

    def __str__(self) -> str:
        return self.title
