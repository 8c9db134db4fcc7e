from django.db import migrations


def create_settings(apps, schema_editor):
    DigestSetting = apps.get_model("channels_app", "DigestSetting")
    for channel in ("in_app", "email", "webhook"):
        DigestSetting.objects.get_or_create(channel=channel, defaults={"digest_enabled": True})


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0001_initial")]

    operations = [migrations.RunPython(create_settings, migrations.RunPython.noop)]
