"""Forms of the operators' money actions (admin)."""

from django import forms


class RefundForm(forms.Form):
    BY_POLICY, IN_FULL = "policy", "full"
    mode = forms.ChoiceField(
        label="Refund",
        choices=[
            (BY_POLICY, "By the concert's cancellation policy (the fee it sets is kept)"),
            (IN_FULL, "In full, booking fees too (the show is cancelled or moved)"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept with every refund; the customer may be told.",
    )
