"""API tokens: hashed, expiring, revocable, ended by a password change; their check is cached under a hash."""

import datetime
import importlib
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from gallery.models import ApiToken, Membership
from gallery.tokens import issue_token, token_cache_key, token_digest

pytestmark = pytest.mark.django_db


def my_photos(client, event):
    return client.get(f"/api/my-photos?event={event.pk}")


def token_client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_the_token_is_stored_and_cached_only_as_digests(member, event):
    token = issue_token(member)
    assert my_photos(token_client(token), event).status_code == 200
    stored = ApiToken.objects.get(user=member)
    assert stored.digest == token_digest(token) != token
    assert all(token[:8] not in str(value) for value in ApiToken.objects.values_list().get()), "nothing of it"
    assert cache.get(token_cache_key(stored.digest)) is not None
    assert token not in token_cache_key(stored.digest)


def test_no_cache_file_holds_the_token(member, event):
    if settings.CACHES["default"]["BACKEND"] != "photoevent.cache.PersistentDiskCache":
        pytest.skip("the cache is not kept in files here")
    token = issue_token(member)
    assert my_photos(token_client(token), event).status_code == 200
    files = [path for path in Path(settings.CACHES["default"]["LOCATION"]).rglob("*") if path.is_file()]
    assert files, "the cache wrote no file"
    assert not [path for path in files if token.encode() in path.read_bytes()]
    assert not [path for path in files if token[:15].encode() in path.read_bytes()], "not even the lookup prefix"


def test_a_repeated_request_checks_the_token_without_a_query(member, event, django_assert_num_queries):
    client = token_client(issue_token(member))
    assert my_photos(client, event).status_code == 200
    with django_assert_num_queries(0):
        assert my_photos(client, event).status_code == 200


def test_a_token_expires_after_the_default_ttl_of_30_days(member, event, monkeypatch):
    before = timezone.now()
    token = issue_token(member)
    expiry = ApiToken.objects.get(user=member).expiry
    assert before + datetime.timedelta(days=30) <= expiry <= timezone.now() + datetime.timedelta(days=30)
    client = token_client(token)
    assert my_photos(client, event).status_code == 200
    later = expiry + datetime.timedelta(seconds=1)
    monkeypatch.setattr("gallery.tokens.timezone.now", lambda: later)
    assert my_photos(client, event).status_code == 401, "refused from the cache"
    cache.clear()
    assert my_photos(client, event).status_code == 401, "refused from the database"


def test_logout_revokes_only_the_token_in_use(member, event):
    first, second = issue_token(member), issue_token(member)
    assert my_photos(token_client(first), event).status_code == 200
    assert token_client(first).post("/api/auth/logout").status_code == 204
    assert my_photos(token_client(first), event).status_code == 401
    assert my_photos(token_client(second), event).status_code == 200


def test_logout_all_revokes_every_token(member, event):
    tokens = [issue_token(member) for _ in range(3)]
    for token in tokens:
        assert my_photos(token_client(token), event).status_code == 200
    assert token_client(tokens[0]).post("/api/auth/logout-all").status_code == 204
    assert [my_photos(token_client(token), event).status_code for token in tokens] == [401] * 3
    assert not ApiToken.objects.filter(user=member).exists()


def test_set_password_then_save_ends_older_tokens(member, event):
    client = token_client(issue_token(member))
    assert my_photos(client, event).status_code == 200
    member.set_password("New-pass-5678")
    member.save()
    assert my_photos(client, event).status_code == 401
    assert my_photos(token_client(issue_token(member)), event).status_code == 200, "a new token works"


def test_a_password_changed_behind_the_orm_ends_tokens_once_the_cache_entry_goes(member, event):
    client = token_client(issue_token(member))
    assert my_photos(client, event).status_code == 200
    User.objects.filter(pk=member.pk).update(password=make_password("New-pass-5678"))
    cache.clear()  # what CACHE_TTL_USER_DATA does at the latest
    assert my_photos(client, event).status_code == 401


def test_a_password_change_on_the_account_page_ends_tokens_and_keeps_the_session(member, event, client):
    token = issue_token(member)
    assert my_photos(token_client(token), event).status_code == 200
    client.force_login(member)
    response = client.post(
        "/me/",
        {
            "action": "password",
            "old_password": "Pass-word-1234",
            "new_password1": "New-pass-5678",
            "new_password2": "New-pass-5678",
        },
    )
    assert response.status_code == 302
    assert my_photos(token_client(token), event).status_code == 401
    assert client.get("/me/").status_code == 200, "the page's own session goes on"


def test_a_password_change_in_the_admin_ends_tokens(member, event, staff, client):
    staff.is_superuser = True
    staff.save()
    token_of_member = issue_token(member)
    assert my_photos(token_client(token_of_member), event).status_code == 200
    client.force_login(staff)
    response = client.post(
        f"/admin/auth/user/{member.pk}/password/",
        {"password1": "New-pass-5678", "password2": "New-pass-5678", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:500]
    assert my_photos(token_client(token_of_member), event).status_code == 401


def test_a_deactivated_user_is_refused_at_once(member, event):
    client = token_client(issue_token(member))
    assert my_photos(client, event).status_code == 200
    member.is_active = False
    member.save()
    assert my_photos(client, event).status_code == 401


def test_a_deleted_account_is_refused_at_once(member, event):
    client = token_client(issue_token(member))
    assert my_photos(client, event).status_code == 200
    member.delete()
    assert my_photos(client, event).status_code == 401
    assert not ApiToken.objects.exists()


def test_a_left_event_is_closed_at_once(member, event):
    client = token_client(issue_token(member))
    assert my_photos(client, event).status_code == 200
    Membership.objects.filter(user=member, event=event).delete()
    assert my_photos(client, event).status_code == 404


def test_a_joined_event_opens_at_once(attendee, event):
    client = token_client(issue_token(attendee))
    assert my_photos(client, event).status_code == 404
    assert client.post("/api/events/join", {"code": event.code}, format="json").status_code == 200
    assert my_photos(client, event).status_code == 200


def test_createphotographer_prints_a_working_token(capsys):
    call_command("createphotographer", "alice", "--password", "Pass-word-1234")
    token = capsys.readouterr().out.strip()
    assert len(token) == 64
    assert token_client(token).get("/api/photographer/events").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_plain_tokens_of_the_old_table_move_to_digests_and_keep_working(attendee):
    migration = importlib.import_module("gallery.migrations.0014_api_tokens_from_plain_tokens")
    from django.apps import apps

    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            # The table as Django REST framework created it; a timestamp type both databases know.
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, user_id integer, created timestamp)'
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, attendee.pk, timezone.now()])
    with connection.schema_editor() as schema_editor:
        migration.move_plain_tokens(apps, schema_editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert token_client(old_key).get("/api/photographer/events").status_code == 403, "authenticated, not a photographer"
    assert ApiToken.objects.get(user=attendee).digest == token_digest(old_key)
