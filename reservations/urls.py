from django.urls import path

from . import api

urlpatterns = [
    path("reservations", api.ReservationListView.as_view(), name="reservations"),
    path(
        "reservations/<int:reservation_id>",
        api.ReservationDetailView.as_view(),
        name="reservation-detail",
    ),
]
