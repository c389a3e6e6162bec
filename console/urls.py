"""The console's pages, under admin/console/ (config/urls.py includes them before the admin's
own catch-all). The names are what other pages link to."""

from django.urls import path

from . import exports, views

urlpatterns = [
    path("", views.index, name="console-index"),
    path("concerts/<int:concert_id>/dashboard/", views.dashboard, name="console-dashboard"),
    path(
        "concerts/<int:concert_id>/dashboard/data.json",
        views.dashboard_data,
        name="console-dashboard-data",
    ),
    path("customers/", views.customers, name="console-customers"),
    path("customers/<int:user_id>/", views.customer, name="console-customer"),
    path(
        "schedules/<int:schedule_id>/buyers.csv", exports.buyers_csv, name="console-export-buyers"
    ),
    path(
        "schedules/<int:schedule_id>/payments.csv",
        exports.payments_csv,
        name="console-export-payments",
    ),
    path("ledger.csv", exports.ledger_csv, name="console-export-ledger"),
]
