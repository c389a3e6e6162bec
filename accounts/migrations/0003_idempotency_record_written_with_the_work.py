# Idempotency-Key records are now written in the work's own transaction (config/idempotency.py):
# there are no separate claims any more, so no "completed" flag and no claim time. Claims left
# open by the earlier design (a request that died) had no answer: they go.

from django.db import migrations


def drop_open_claims(apps, schema_editor):
    record = apps.get_model("accounts", "IdempotencyRecord")
    record.objects.filter(completed=False).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_idempotencyrecord")]

    operations = [
        migrations.RunPython(drop_open_claims, migrations.RunPython.noop),
        migrations.RemoveField(model_name="idempotencyrecord", name="completed"),
        migrations.RemoveField(model_name="idempotencyrecord", name="locked_at"),
    ]
