"""Moves the plain-text tokens of Django REST framework's authtoken app to hashed ApiToken rows.

Each old token keeps working (knox's digest of the same string), with the
default expiry from now and tied to its user's current password; then the
old table, which held the tokens in clear, is dropped, and the authtoken app's
migration records go with it (the app is no longer installed).
"""

import datetime

from django.conf import settings
from django.db import migrations
from django.utils import timezone
from django.utils.crypto import salted_hmac
from knox.crypto import hash_token
from knox.settings import CONSTANTS

OLD_TABLE = "authtoken_token"
# gallery.tokens.FINGERPRINT_SALT when this migration was written.
FINGERPRINT_SALT = "gallery.tokens.password_fingerprint"


def move_plain_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("gallery", "ApiToken")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    expiry = timezone.now() + datetime.timedelta(days=settings.API_TOKEN_TTL_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id FROM {OLD_TABLE}")
        rows = cursor.fetchall()
    passwords = dict(User.objects.filter(pk__in=[user_id for _key, user_id in rows]).values_list("pk", "password"))
    ApiToken.objects.bulk_create(
        [
            ApiToken(
                digest=hash_token(key),
                token_key=hash_token(key)[: CONSTANTS.TOKEN_KEY_LENGTH],
                user_id=user_id,
                expiry=expiry,
                password_fingerprint=salted_hmac(FINGERPRINT_SALT, passwords[user_id], algorithm="sha256").hexdigest(),
            )
            for key, user_id in rows
            if user_id in passwords
        ]
    )
    schema_editor.execute(schema_editor.sql_delete_table % {"table": schema_editor.quote_name(OLD_TABLE)})
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0013_api_token"),
    ]

    operations = [
        migrations.RunPython(move_plain_tokens, migrations.RunPython.noop),
    ]
