from django.urls import include, path

from catalog import apis

category_urlpatterns = [
    path("", apis.CategoryListApi.as_view(), name="category-list"),
    path("<id:category_id>/", apis.CategoryDetailApi.as_view(), name="category-detail"),
]

product_urlpatterns = [
    path("", apis.ProductListApi.as_view(), name="product-list"),
    path("nearby/", apis.ProductsNearbyApi.as_view(), name="products-nearby"),
    path("<id:product_id>/", apis.ProductDetailApi.as_view(), name="product-detail"),
]

search_urlpatterns = [
    path("products/", apis.ProductSearchApi.as_view(), name="search-products"),
    path("suggest/", apis.SuggestApi.as_view(), name="search-suggest"),
]

urlpatterns = [
    path("categories/", include(category_urlpatterns)),
    path("products/", include(product_urlpatterns)),
    path("search/", include(search_urlpatterns)),
]
