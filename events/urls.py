from django.urls import path

from events import apis

urlpatterns = [
    path("events/", apis.EventFeedApi.as_view(), name="event-feed"),
    path("webhooks/", apis.WebhookListApi.as_view(), name="webhook-list"),
    path("webhooks/<id:webhook_id>/", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<id:webhook_id>/replay/",
        apis.WebhookReplayApi.as_view(),
        name="webhook-replay",
    ),
    path(
        "webhooks/<id:webhook_id>/deliveries/",
        apis.WebhookDeliveriesApi.as_view(),
        name="webhook-deliveries",
    ),
]
