import functools

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie

from console.selectors import console_data, console_scope, console_scope_now
from events.streams import couriers_stream_key, stream_last_id
from geomarket.accounts.selectors import request_credential
from geomarket.api.views import method_not_allowed
from geomarket.ratelimit import login_rate_limited
from tracking.stream import courier_moves, last_event_id_valid

LOGIN = "console-login"


def _reads_only(view):
    """A console view that only reads: another method is a 405 in the contract's shape,
    not Django's empty one. No CSRF check comes first, with its 403, as for `/healthz`:
    such a view writes nothing that a forged request could misuse."""

    @functools.wraps(view)
    def reading(request, *args, **kwargs):
        # HEAD is GET's headers (RFC 9110, 9.3.2), as Django answers it for every view.
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request, ["GET", "HEAD"])
        return view(request, *args, **kwargs)

    return csrf_exempt(reading)


@method_decorator(login_rate_limited, name="dispatch")
class ConsoleLoginView(LoginView):
    """Signs in to the console: to the page asked for (`next`), else the console itself,
    not Django's default profile address, which this server does not serve."""

    template_name = "console/login.html"
    next_page = "console"

    def dispatch(self, request, *args, **kwargs):
        # Only a caller the console lets in skips the form; anyone else signs in anew.
        self.redirect_authenticated_user = console_scope(request.user) is not None
        return super().dispatch(request, *args, **kwargs)

    def http_method_not_allowed(self, request, *args, **kwargs):
        return method_not_allowed(request, self._allowed_methods())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context["form"]
        # An empty form's inputs are the same for every visitor, and rendering them
        # through the form renderer's templates was a third of the page's time.
        bound = form.is_bound
        context["inputs"] = (
            {name: form[name] for name in form.fields}
            if bound
            else _empty_inputs(self.get_form_class())
        )
        return context


@functools.cache
def _empty_inputs(form_class: type[AuthenticationForm]) -> dict[str, str]:
    """The inputs of an empty sign-in form, as Django renders them."""
    form = form_class()
    return {name: str(form[name]) for name in form.fields}


def _scope(request):
    scope = console_scope(request.user)
    if scope is None:
        raise PermissionDenied("The console is for operators and merchant owners.")
    return scope


@_reads_only
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


@_reads_only
@login_required(login_url=LOGIN)
@never_cache
def console_data_view(request):
    return JsonResponse(console_data(scope=_scope(request)))


@_reads_only
@login_required(login_url=LOGIN)
@never_cache
def courier_stream_view(request):
    """The couriers' moves the caller's console shows, as Server-Sent Events (`courier`
    events, each a courier's answer at its new point): one stream for the whole map, where
    a stream per order would soon pass the six connections a browser opens to a host."""
    scope = _scope(request)
    # Followed as long as the session it is opened by signs the caller in.
    credential = request_credential(request)
    if credential is None:
        raise PermissionDenied("The console's stream is followed by a session.")
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is not None and not last_event_id_valid(last_event_id):
        # Not one of ours: from now on, as a first opening (the console reads its
        # snapshot again on every opening).
        last_event_id = None
    after = last_event_id or stream_last_id(couriers_stream_key())
    response = StreamingHttpResponse(
        courier_moves(
            merchant_id=scope.merchant_id,
            after=after,
            scope_now=functools.partial(
                console_scope_now, user_id=request.user.pk, credential=credential
            ),
        ),
        content_type="text/event-stream",
    )
    # nginx would otherwise hold events back in its buffer.
    response["X-Accel-Buffering"] = "no"
    return response
