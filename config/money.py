def format_won(amount: int | None) -> str:
    """12345 -> '₩12,345'. Amounts are integers of won; there are no fractional won."""
    if amount is None:
        return "—"
    return f"₩{amount:,}"
