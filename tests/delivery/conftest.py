from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from delivery.models import Courier
from delivery.services import courier_create
from tests import factories


@pytest.fixture
def make_courier(db):
    def make(
        *, lat=52.52, lng=13.405, status="available", capacity=1, vehicle="bike", age_s=0, name=None
    ):
        user = factories.user()
        courier = courier_create(
            user=user,
            name=name or f"Courier {user.pk}",
            vehicle=vehicle,
            capacity=capacity,
            status=status,
        )
        Courier.objects.filter(pk=courier.pk).update(
            location=Point(lng, lat, srid=4326),
            location_updated_at=timezone.now() - timedelta(seconds=age_s),
        )
        courier.refresh_from_db()
        return courier

    return make
