"""The operators' audit trail: Django admin's history (LogEntry), written by the services that
act for an operator, in their own transaction. An operator's refund or release is recorded
if and only if it happened, whichever screen or job asked for it, with the reason given."""

from collections.abc import Sequence

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import models

from accounts.models import User


def operator_history_record(
    *, operator: User, objects: Sequence[models.Model], message: str
) -> None:
    """A line in the history of each of these objects: who, when (now), what and why. Call
    inside the transaction that made the change, so both commit or neither."""
    LogEntry.objects.log_actions(
        user_id=operator.pk,
        queryset=list(objects),
        action_flag=CHANGE,
        change_message=str(message),
    )
