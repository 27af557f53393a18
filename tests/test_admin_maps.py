"""The admin's map widgets load their library from our static files and draw on a plain
background unless a tile server is configured: with no internet access they still work."""

import re

import pytest
from django.contrib import admin
from django.contrib.gis.db.models import GeometryField
from django.contrib.staticfiles import finders

from geomarket.maps.widgets import OfflineMapWidget
from tests import factories

pytestmark = pytest.mark.django_db

ASSET = re.compile(r'<(?:script[^>]*\bsrc|link[^>]*\bhref)="([^"]+)"')


def _operator_client(client):
    operator = factories.user(is_staff=True)
    operator.is_superuser = True
    operator.save()
    client.force_login(operator)
    return client


def test_every_geometry_field_in_the_admin_gets_the_offline_widget(rf):
    request = rf.get("/")
    geometry_admins = 0
    for model, model_admin in admin.site._registry.items():
        for field in model._meta.get_fields():
            if isinstance(field, GeometryField) and field.editable:
                geometry_admins += 1
                formfield = model_admin.formfield_for_dbfield(field, request=request)
                assert isinstance(formfield.widget, OfflineMapWidget), model._meta.label
    assert geometry_admins >= 4


def test_the_zone_page_loads_every_asset_from_our_static_files(client):
    zone = factories.zone(merchant=factories.merchant())
    page = _operator_client(client).get(f"/admin/merchants/deliveryzone/{zone.pk}/change/")
    html = page.content.decode()
    assets = ASSET.findall(html)
    assert any(asset.endswith("/ol.js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        if asset.startswith("/static/"):
            assert finders.find(asset.removeprefix("/static/")), asset
    assert "https://" not in html.split("<body", 1)[1].split("</body>")[0].replace(
        "https://www.djangoproject.com", ""
    )
    assert "ol.source.OSM" not in html
    assert "new MapWidget" in html


def test_a_configured_tile_server_draws_under_the_map(client, settings):
    settings.MAP_TILE_URL = "http://tiles.example.test/{z}/{x}/{y}.png"
    zone = factories.zone(merchant=factories.merchant())
    html = (
        _operator_client(client)
        .get(f"/admin/merchants/deliveryzone/{zone.pk}/change/")
        .content.decode()
    )
    assert "tiles.example.test" in html
    assert "ol.source.XYZ" in html
