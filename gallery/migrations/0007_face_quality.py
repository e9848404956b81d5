from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0006_guest_alerts"),
    ]

    operations = [
        migrations.AddField(
            model_name="face",
            name="quality",
            field=models.FloatField(default=1.0),
        ),
    ]
