from django.urls import path

from merchants.tile_apis import TileApi

# Paths outside /api/v1/, for map clients that address tiles by their own scheme.
urlpatterns = [
    path("tiles/<str:layer>/<int:z>/<int:x>/<int:y>.mvt", TileApi.as_view(), name="tile"),
]
