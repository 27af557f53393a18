"""The admin's zone map, in a real browser with no internet access: it loads, draws the
zone, and asks nothing of any other host."""

import pytest

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-Secret-123"


def test_the_admins_zone_map_shows_the_zone(browser_page):
    operator = factories.user(is_staff=True)
    operator.is_superuser = True
    operator.save()
    zone = factories.zone(merchant=factories.merchant())
    path = f"/admin/merchants/deliveryzone/{zone.pk}/change/"
    browser_page.login(username=operator.username, password=PASSWORD, next_path=path)
    page = browser_page.page
    page.wait_for_selector("#id_area_map canvas")
    # The widget's own object (Django names it after the field) holds the drawn zone.
    drawn = page.wait_for_function(
        "() => window.geodjango_area"
        " && geodjango_area.featureOverlay.getSource().getFeatures().length"
    )
    assert drawn.json_value() == 1
    extent = page.evaluate(
        "() => ol.proj.transformExtent("
        "geodjango_area.featureOverlay.getSource().getFeatures()[0].getGeometry().getExtent(),"
        " 'EPSG:3857', 'EPSG:4326')"
    )
    west, south, east, north = extent
    location = zone.merchant.location
    assert west < location.x < east
    assert south < location.y < north
    assert browser_page.errors == []
    assert browser_page.foreign_requests() == []
