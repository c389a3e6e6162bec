# The Idempotency-Key records move from payments to accounts (beneath every domain app, since
# any write view may use them). The rows stay: the model's state moves, its table is renamed.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("key", models.CharField(max_length=64)),
                        (
                            "fingerprint",
                            models.CharField(
                                help_text="SHA-256 of method, path and body.", max_length=64
                            ),
                        ),
                        ("completed", models.BooleanField(default=False)),
                        (
                            "response_status",
                            models.PositiveSmallIntegerField(blank=True, null=True),
                        ),
                        ("response_body", models.JSONField(blank=True, null=True)),
                        (
                            "locked_at",
                            models.DateTimeField(
                                help_text="When the request holding the key started."
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "payments_idempotencyrecord",
                        "indexes": [
                            models.Index(
                                fields=["created_at"], name="payments_id_created_5f2f3d_idx"
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user", "key"), name="idempotency_key_once_per_user"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="idempotencyrecord", table=None),
        migrations.RenameIndex(
            model_name="idempotencyrecord",
            new_name="idempotency_created_at_idx",
            old_name="payments_id_created_5f2f3d_idx",
        ),
    ]
