"""Response shapes of events and webhooks, declared once (`geomarket.shapes`)."""

import json

from rest_framework import serializers

from events.models import EventType
from geomarket.shapes import BOOLEAN, DATETIME, INTEGER, TEXT, Field, Kind, Shape, choice

# A JSON value as its column's text gives it (a `jsonb` read without Django's field);
# PostgreSQL's text of a jsonb spaces its items, so it is rendered in Python only.
JSON = Kind("json", serializers.JSONField, json.loads)
# Event types, each one of `EventType`.
EVENT_TYPES = Kind(
    "event types",
    lambda **options: serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), **options
    ),
    list,
)

EVENT = Shape(
    "Event",
    (
        Field("id", INTEGER),
        Field("type", choice(EventType)),
        Field("created_at", DATETIME),
        Field("merchant_id", INTEGER),
        Field("order_id", INTEGER, null=True),
        Field("data", JSON),
    ),
)

WEBHOOK = Shape(
    "Webhook",
    (
        Field("id", INTEGER),
        Field("merchant_id", INTEGER, null=True),
        Field("url", TEXT),
        Field("event_types", EVENT_TYPES),
        Field(
            "is_active",
            BOOLEAN,
            source="receives",
            help_text=(
                "Whether it takes events now: false once turned off or disabled, or once the"
                " user who created it may no longer read its events (an operator no longer"
                " staff, an owner deactivated or no longer owning its merchant). Turning it on"
                " (`PATCH` `is_active: true`) makes the caller the one it takes them for."
            ),
        ),
        Field("failure_count", INTEGER),
        Field("disabled_at", DATETIME, null=True),
        Field("created_at", DATETIME),
    ),
)

WEBHOOK_DELIVERY = Shape(
    "WebhookDelivery",
    (
        Field("event_id", INTEGER),
        Field("attempt", INTEGER),
        Field("status_code", INTEGER, null=True),
        Field("error", TEXT),
        Field("duration_ms", INTEGER),
        Field("created_at", DATETIME),
    ),
)
