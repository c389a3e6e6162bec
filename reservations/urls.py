from django.urls import path

from . import api

urlpatterns = [
    path("reservations", api.ReservationListView.as_view(), name="reservations"),
    path(
        "reservations/<int:reservation_id>",
        api.ReservationDetailView.as_view(),
        name="reservation-detail",
    ),
    path(
        "schedules/<int:schedule_id>/waitlist", api.WaitlistJoinView.as_view(), name="waitlist-join"
    ),
    path("waitlist", api.WaitlistListView.as_view(), name="waitlist"),
    path("waitlist/<int:entry_id>", api.WaitlistEntryView.as_view(), name="waitlist-entry"),
]
