"""The staff groups "Sales staff" and "Finance" (accounts/operator_groups.py).

Permissions are normally created after all migrations ran (post_migrate); the groups need
them now, so they are created first, from the historical models."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.operator_groups import GROUP_ACTIONS, operator_groups_sync


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    operator_groups_sync(apps=apps)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUP_ACTIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_api_token_readable_errors"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("concerts", "0006_readable_constraint_errors"),
        ("queueing", "0003_readable_constraint_errors"),
        ("reservations", "0004_release_hold_permission_readable_errors"),
        ("payments", "0004_refund_permission_readable_errors"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
