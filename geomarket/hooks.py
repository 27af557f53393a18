"""Calls from an app into the apps above it, named in settings.

Apps import only the apps below them, and `geomarket` imports none (README, "Layers"). A
few writes of a lower app must be followed, in their transaction, by a write of a higher
app (an order that is delivered or cancelled frees its courier), or preceded by one (the
stock rows that deleting products cascades into are locked first, in their one order).
`settings.HOOKS` names, under each hook, the functions of the higher apps; the lower app
calls them all, in that order, with the hook's keyword arguments. Unlike a signal, every
receiver is listed in one place and none runs on a write the app did not announce.
"""

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string


def hook_call(name: str, **kwargs) -> None:
    for path in settings.HOOKS[name]:
        import_string(path)(**kwargs)


@register()
def hooks_resolve(app_configs=None, **kwargs) -> list[Error]:
    """A hook function that does not import would fail the first write that calls it:
    every one is imported at start-up instead."""
    errors = []
    for name, paths in settings.HOOKS.items():
        for path in paths:
            try:
                function = import_string(path)
            except ImportError as exc:
                errors.append(
                    Error(f"Hook {name!r}: {path} does not import: {exc}", id="hooks.E001")
                )
                continue
            if not callable(function):
                errors.append(Error(f"Hook {name!r}: {path} is not callable.", id="hooks.E002"))
    return errors
