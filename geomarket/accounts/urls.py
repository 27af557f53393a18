from django.urls import path

from geomarket.accounts import apis

urlpatterns = [
    path("register/", apis.RegisterApi.as_view(), name="auth-register"),
    path("token/", apis.TokenApi.as_view(), name="auth-token"),
    path("me/", apis.MeApi.as_view(), name="auth-me"),
]
