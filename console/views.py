from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from console.selectors import console_data, console_scope

LOGIN = "console-login"


class ConsoleLoginView(LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


def _scope(request):
    scope = console_scope(request.user)
    if scope is None:
        raise PermissionDenied("The console is for operators and merchant owners.")
    return scope


@require_GET
@login_required(login_url=LOGIN)
@never_cache
# The owner's zone edits are session-authenticated API writes: they send the CSRF token.
@ensure_csrf_cookie
def console_page(request):
    scope = _scope(request)
    lat, lng = settings.MAP_CENTER
    return render(
        request,
        "console/index.html",
        {
            "config": {
                "operator": scope.operator,
                "merchantId": scope.merchant_id,
                "center": [lng, lat],
                "tileUrl": settings.MAP_TILE_URL,
            }
        },
    )


@require_GET
@login_required(login_url=LOGIN)
@never_cache
def console_data_view(request):
    return JsonResponse(console_data(scope=_scope(request)))
