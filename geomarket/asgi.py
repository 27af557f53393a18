import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")

# Static files (the offline API docs page) are served by Django's own finder-based
# handler, which works with DEBUG off; every other path goes straight to Django.
application = ASGIStaticFilesHandler(get_asgi_application())
