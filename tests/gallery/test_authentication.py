"""API tokens and memberships are read through the cache, and changes reach it at once."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from gallery.authentication import token_cache_key
from gallery.models import Membership

pytestmark = pytest.mark.django_db


def my_photos(client, event):
    return client.get(f"/api/my-photos?event={event.pk}")


def test_the_token_is_cached_under_a_hash(client_for, member, event):
    client = client_for(member)
    assert my_photos(client, event).status_code == 200
    key = Token.objects.get(user=member).key
    assert cache.get(token_cache_key(key)) is not None
    assert key not in token_cache_key(key)


def test_a_deleted_token_stops_working_at_once(client_for, member, event):
    client = client_for(member)
    assert my_photos(client, event).status_code == 200
    Token.objects.filter(user=member).delete()
    assert my_photos(client, event).status_code == 401


def test_a_deactivated_user_is_refused_at_once(client_for, member, event):
    client = client_for(member)
    assert my_photos(client, event).status_code == 200
    member.is_active = False
    member.save()
    assert my_photos(client, event).status_code == 401


def test_a_deleted_account_is_refused_at_once(client_for, member, event):
    client = client_for(member)
    assert my_photos(client, event).status_code == 200
    member.delete()
    assert my_photos(client, event).status_code == 401


def test_a_left_event_is_closed_at_once(client_for, member, event):
    client = client_for(member)
    assert my_photos(client, event).status_code == 200
    Membership.objects.filter(user=member, event=event).delete()
    assert my_photos(client, event).status_code == 404


def test_a_joined_event_opens_at_once(client_for, attendee, event):
    client = client_for(attendee)
    assert my_photos(client, event).status_code == 404
    assert client.post("/api/events/join", {"code": event.code}, format="json").status_code == 200
    assert my_photos(client, event).status_code == 200
