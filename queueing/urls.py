from django.urls import path

from . import api

urlpatterns = [
    path("concerts/<int:concert_id>/queue", api.EnterQueueView.as_view(), name="queue-enter"),
    path("queue", api.QueueView.as_view(), name="queue"),
]
