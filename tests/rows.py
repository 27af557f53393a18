"""The stored state of models, for tests of requests that must change nothing."""

from django.db.models import Model


def rows(*models: type[Model]) -> dict[str, list[dict]]:
    """Every row of each model, field by field, in primary-key order. Equal before and
    after a refused request: it wrote nothing, not even in part."""
    return {model._meta.label: list(model.objects.order_by("pk").values()) for model in models}
