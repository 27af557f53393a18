import os

from asgiref.sync import sync_to_async
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")


class SingleHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain built in sync mode.

    In async mode every method of every `MiddlewareMixin` middleware (all of Django's
    own) and the sync DRF view each hop to a worker thread: about 17 hops a request,
    some 4 ms here before any work is done. Built in sync mode, the chain runs the whole
    request (middleware, view, database) in one hop. Async views still run as coroutines,
    on an event loop in that hop's thread, so their fan-out stays concurrent.
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application():
    import django

    django.setup(set_prefix=False)
    return SingleHopASGIHandler()


# Static files (the offline API docs page) are served by Django's own finder-based
# handler, which works with DEBUG off; every other path goes straight to Django.
application = ASGIStaticFilesHandler(get_asgi_application())
