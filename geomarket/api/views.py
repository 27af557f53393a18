"""JSON answers for errors raised outside DRF views, so no path ever returns an HTML page."""

from django.http import JsonResponse


def not_found(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)


def bad_request(request, exception=None):
    return JsonResponse({"detail": "Bad request."}, status=400)


def permission_denied(request, exception=None):
    return JsonResponse(
        {"detail": "You do not have permission to perform this action."}, status=403
    )


def server_error(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)
