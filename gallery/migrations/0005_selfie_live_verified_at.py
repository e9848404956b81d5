from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0004_remove_attendeeprofile_face_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="selfie",
            name="live_verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
