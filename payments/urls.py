from django.urls import path

from . import api

urlpatterns = [
    path("wallet", api.WalletView.as_view(), name="wallet"),
    path("wallet/transactions", api.WalletTransactionsView.as_view(), name="wallet-transactions"),
    path("wallet/charges", api.WalletChargeView.as_view(), name="wallet-charges"),
    path("payments", api.PaymentListView.as_view(), name="payments"),
    path(
        "reservations/<int:reservation_id>/cancellation",
        api.ReservationCancellationView.as_view(),
        name="reservation-cancellation",
    ),
    path(
        "reservations/<int:reservation_id>/payment",
        api.ReservationPaymentView.as_view(),
        name="reservation-payment",
    ),
]
