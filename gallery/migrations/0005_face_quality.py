from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0004_remove_attendeeprofile_face_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="face",
            name="quality",
            field=models.FloatField(default=1.0),
        ),
    ]
