"""The test process's Celery app, publishing to another broker."""

from geomarket.celery import app as celery_app


def use_broker(url: str) -> None:
    # The app caches its connection and producer pools; kombu keeps one pool per URL, so
    # dropping the references makes the next publish use the pool of the new URL.
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
