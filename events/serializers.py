import re

from rest_framework import serializers

from events.models import EventType
from events.selectors import CURSOR_PATTERN, cursor_decode
from events.shapes import EVENT, WEBHOOK, WEBHOOK_DELIVERY
from geomarket.api.fields import IdField, StrictIntegerField
from geomarket.api.validation import prebuilt
from geomarket.errors import DomainError

MAX_LIMIT = 500
_TYPE = "|".join(re.escape(name) for name in EventType.values)
TYPES_PATTERN = rf"^({_TYPE})(,({_TYPE}))*$"
CURSOR_HELP = "An opaque cursor: the `next_cursor` of an earlier answer."
# Where a cursor is taken: the feed and replays alike.
AFTER_HELP = (
    f"{CURSOR_HELP} One past the feed's last event (another deployment's, or from before"
    " the database was reset) is a 400."
)


class CursorField(serializers.RegexField):
    """A cursor in, the event id it stands for out."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", CURSOR_HELP)
        super().__init__(CURSOR_PATTERN, **kwargs)

    def run_validation(self, data=serializers.empty):
        text = super().run_validation(data)
        try:
            return cursor_decode(text)
        except DomainError as exc:
            raise serializers.ValidationError("Not a cursor of this feed.") from exc


class EventFeedParamsSerializer(serializers.Serializer):
    after = CursorField(required=False, help_text=AFTER_HELP)
    types = serializers.RegexField(
        TYPES_PATTERN,
        required=False,
        max_length=500,
        help_text=f"Comma-separated event types, of: {', '.join(EventType.values)}.",
    )
    limit = StrictIntegerField(required=False, default=100, min_value=1, max_value=MAX_LIMIT)

    def validate_types(self, value: str) -> list[str]:
        return value.split(",")


event_feed_params = prebuilt(EventFeedParamsSerializer)


EventSerializer = EVENT.serializer()


class StreamStatusSerializer(serializers.Serializer):
    """The data of an order stream's `status` event (`events.streams`)."""

    status = serializers.CharField(help_text="The order's new status.")
    at = serializers.DateTimeField()


class EventFeedSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True,
        help_text="Pass as `after` for the events that follow; null before the first event.",
    )


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, help_text="https; a public address.")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        required=False,
        default=list,
        max_length=len(EventType.values),
        help_text="The types delivered; empty or absent: every type.",
    )
    is_active = serializers.BooleanField(required=False, default=True)
    merchant_id = IdField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "Operators: the merchant whose events it takes (absent or null: every"
            " merchant's). Owners: their own merchant, whatever this says."
        ),
    )


class WebhookUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        required=False,
        max_length=len(EventType.values),
    )
    is_active = serializers.BooleanField(
        required=False, help_text="true again after a disabling starts the failures afresh."
    )


WebhookSerializer = WEBHOOK.serializer()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="Shown in this answer only.")


class WebhookReplaySerializer(serializers.Serializer):
    after = CursorField(help_text=AFTER_HELP)


class WebhookReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="How many events were queued again.")


WebhookDeliverySerializer = WEBHOOK_DELIVERY.serializer()
