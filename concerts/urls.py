from django.urls import path

from . import api

urlpatterns = [
    path("concerts", api.ConcertListView.as_view(), name="concert-list"),
    path("concerts/<int:concert_id>", api.ConcertDetailView.as_view(), name="concert-detail"),
    path(
        "concerts/<int:concert_id>/schedules",
        api.ScheduleListView.as_view(),
        name="concert-schedules",
    ),
    path("schedules/<int:schedule_id>/seats", api.SeatMapView.as_view(), name="schedule-seats"),
]
