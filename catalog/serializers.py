from rest_framework import serializers

from catalog.models import ProductCategory
from geomarket.api.fields import MoneyField


class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=100)

    def validate_slug(self, value: str) -> str:
        taken = ProductCategory.objects.filter(slug=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("A category with this slug already exists.")
        return value


class ProductCreateSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField(required=False, min_value=1)
    category_id = serializers.PrimaryKeyRelatedField(
        source="category", queryset=ProductCategory.objects.all()
    )
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    price = MoneyField()
    is_published = serializers.BooleanField(required=False, default=True)


class ProductUpdateSerializer(serializers.Serializer):
    category_id = serializers.PrimaryKeyRelatedField(
        source="category", queryset=ProductCategory.objects.all()
    )
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    price = MoneyField()
    is_published = serializers.BooleanField(required=False, default=True)


class ProductOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    merchant_id = serializers.IntegerField()
    category_id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    price = MoneyField()
    is_published = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ProductFilterSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField(required=False, min_value=1)
    category = serializers.CharField(required=False, max_length=100)
    is_published = serializers.BooleanField(required=False, allow_null=True, default=None)
