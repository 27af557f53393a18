from django.urls import path

from console import views

urlpatterns = [
    path("console/", views.console_page, name="console"),
    path("console/login/", views.ConsoleLoginView.as_view(), name="console-login"),
    path("console/data/", views.console_data_view, name="console-data"),
    path("console/couriers/stream/", views.courier_stream_view, name="console-courier-stream"),
]
