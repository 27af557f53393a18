import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_every_hook_of_the_settings_imports():
    assert [error for error in checks.run_checks() if error.id.startswith("hooks.")] == []


@pytest.mark.parametrize(
    ("path", "error_id"),
    [
        ("delivery.services.courier_order_transitionned", "hooks.E001"),
        ("orders.models.ACTIVE_DELIVERY_STATUSES", "hooks.E002"),
    ],
)
def test_a_hook_that_does_not_import_or_call_stops_start_up(settings, path, error_id):
    settings.HOOKS = {**settings.HOOKS, "order_transitioned": [path]}
    assert [error.id for error in checks.run_checks() if error.id.startswith("hooks.")] == [
        error_id
    ]
    with pytest.raises(SystemCheckError, match=error_id):
        call_command("check")
