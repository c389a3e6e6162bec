"""Who among the staff may do what in admin: two groups, made by a data migration
(accounts/migrations/0005_operator_groups.py) and kept in step by `operator_groups_sync`.
docs/operators.md says how to put someone in one.

- Sales staff: read every screen, and release customers' holds (and take customers off a
  waitlist, or offer seats on sale to it): seats move, money never does.
- Finance: read every screen, and refund payments (one by one, or every paid booking of a
  performance).
Superusers may do everything. Changing the catalog (concerts, dates, seats, the queue's
settings) is for superusers, or staff given those model permissions one by one.
"""

from django.apps import apps as installed_apps

SALES_STAFF = "Sales staff"
FINANCE = "Finance"

# Every operator reads every screen of these apps (Django's view_* permissions).
VIEWED_APPS = ("accounts", "concerts", "queueing", "reservations", "payments")
# What each group may do besides reading: (app label, permission codename).
GROUP_ACTIONS = {
    SALES_STAFF: [("reservations", "release_hold")],
    FINANCE: [("payments", "refund_payment")],
}


def operator_groups_sync(*, apps=installed_apps) -> None:
    """Make the groups and give them their permissions. Adds, never removes: a permission an
    administrator gave a group by hand stays. `apps`: a migration's historical models."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = list(
        Permission.objects.filter(
            content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"
        )
    )
    for name, actions in GROUP_ACTIONS.items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *views,
            *(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
                for app_label, codename in actions
            ),
        )
