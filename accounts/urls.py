from django.urls import path

from . import api

urlpatterns = [
    path("accounts/signup", api.SignupView.as_view(), name="accounts-signup"),
    path("accounts/token", api.TokenView.as_view(), name="accounts-token"),
    path("accounts/me", api.MeView.as_view(), name="accounts-me"),
]
