import pytest
from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from tests import factories

pytestmark = pytest.mark.django_db

DOMAIN_MODELS = [
    "merchants.Address",
    "merchants.Merchant",
    "merchants.DeliveryZone",
    "catalog.ProductCategory",
    "catalog.Product",
    "inventory.Inventory",
    "inventory.InventoryAdjustment",
    "accounts.User",
]


def test_every_domain_model_is_registered():
    registered = {model._meta.label for model in admin.site._registry}
    assert set(DOMAIN_MODELS) <= registered


def test_geometry_models_use_map_widgets():
    from delivery.models import Courier
    from merchants.models import Address, DeliveryZone, Merchant

    for model in (Address, Merchant, DeliveryZone, Courier):
        assert isinstance(admin.site._registry[model], GISModelAdmin)


def test_operator_can_open_every_changelist_and_change_page(client):
    operator = factories.user(is_staff=True)
    operator.is_superuser = True
    operator.save()
    shop = factories.merchant()
    zone = factories.zone(merchant=shop)
    product = factories.product(merchant=shop)
    factories.stock(product=product)
    client.force_login(operator)
    for label in DOMAIN_MODELS:
        app, model = label.lower().split(".")
        response = client.get(f"/admin/{app}/{model}/", {"q": "x"})
        assert response.status_code == 200, label
    for url in (
        f"/admin/merchants/merchant/{shop.pk}/change/",
        f"/admin/merchants/deliveryzone/{zone.pk}/change/",
        f"/admin/catalog/product/{product.pk}/change/",
    ):
        assert client.get(url).status_code == 200, url
