from django.apps import AppConfig


class CacheConfig(AppConfig):
    name = "geomarket.cache"
    label = "answer_cache"
