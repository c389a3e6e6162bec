from rest_framework import serializers


def format_won(amount: int | None) -> str:
    """12345 -> '₩12,345', -500 -> '-₩500'. Amounts are whole won; there are no fractions."""
    if amount is None:
        return "—"
    return f"-₩{-amount:,}" if amount < 0 else f"₩{amount:,}"


class WonField(serializers.IntegerField):
    """An amount of won: a JSON integer and nothing else. DRF's IntegerField would accept
    "1000" or 1000.0; money is stricter, so a client's type confusion is caught early."""

    default_error_messages = {"invalid": "A whole number of won is required, e.g. 50000."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
