"""Forms of the operators' money actions (admin)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from config.admin import ReasonForm


class RefundForm(ReasonForm):
    BY_POLICY, IN_FULL = "policy", "full"
    mode = forms.ChoiceField(
        label=_("Refund"),
        choices=[
            (BY_POLICY, _("By the concert's cancellation policy (the fee it sets is kept)")),
            (IN_FULL, _("In full, booking fees too (the show is cancelled or moved)")),
        ],
        widget=forms.RadioSelect,
    )
    field_order = ["mode", "reason"]
