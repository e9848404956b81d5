"""Logging in and signing up through the API: new tokens each time, the sign-up form's rules for usernames."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db

# Fullwidth letters, written as escapes so that they cannot be mistaken for ASCII.
FULLWIDTH_PHOT = "\uff30\uff28\uff2f\uff34"
FULLWIDTH_PHOTO = FULLWIDTH_PHOT + "\uff2f"
FULLWIDTH_LOWER_PHOT = "\uff50\uff48\uff4f\uff54"


def authenticated(client, token):
    """Whether `token` authenticates: a non-photographer gets 403 here, an unknown caller 401."""
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/photographer/events").status_code == 403


def register(client, username, password="Long-pass-4321", **extra):
    return client.post("/api/auth/register", {"username": username, "password": password, **extra}, format="json")


def test_register_creates_attendee_and_returns_a_working_token(anon_client):
    response = register(anon_client, "guest")
    assert response.status_code == 201
    token = response.json()["token"]
    assert len(token) == 64
    assert User.objects.get(username="guest").check_password("Long-pass-4321")
    assert authenticated(anon_client, token)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"username": "attendee", "password": "Long-pass-4321"}, "already exists"),
        ({"username": "new", "password": "123"}, "too short"),
        ({"username": "new"}, "'password' is required"),
        ({"username": "new", "password": "Long-pass-4321", "email": "not-an-address"}, "email"),
    ],
)
def test_register_rejects_bad_input(anon_client, attendee, payload, message):
    response = anon_client.post("/api/auth/register", payload, format="json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize("username", [FULLWIDTH_PHOT, "PHOT", "Phot", FULLWIDTH_LOWER_PHOT])
def test_register_refuses_a_case_or_nfkc_variant_of_an_existing_username(anon_client, username):
    assert register(anon_client, "phot").status_code == 201
    response = register(anon_client, username)
    assert response.status_code == 400
    assert "already exists" in response.json()["detail"]
    assert User.objects.count() == 1


def test_register_stores_the_nfkc_form_of_the_username(anon_client):
    assert register(anon_client, FULLWIDTH_PHOTO).status_code == 201
    assert User.objects.filter(username="PHOTO").exists()


@pytest.mark.parametrize("username", ["ph\x00ot", "ph\u202eot", "ph ot", "ph<ot>"])
def test_register_refuses_control_and_direction_characters(anon_client, username):
    response = register(anon_client, username)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not User.objects.exists()


def test_the_signup_page_applies_the_same_rules(client):
    data = {"password1": "Long-pass-4321", "password2": "Long-pass-4321"}
    assert client.post("/signup/", {"username": "phot", **data}).status_code == 302
    client.logout()
    assert client.post("/signup/", {"username": FULLWIDTH_PHOT, **data}).status_code == 200
    assert User.objects.count() == 1


def test_each_login_gives_a_new_token_and_both_work(anon_client, attendee):
    credentials = {"username": "attendee", "password": "Pass-word-1234"}
    first = anon_client.post("/api/auth/token", credentials, format="json").json()["token"]
    second = anon_client.post("/api/auth/token", credentials, format="json").json()["token"]
    assert first != second
    assert authenticated(anon_client, first) and authenticated(anon_client, second)


def test_token_refuses_bad_password(anon_client, attendee):
    response = anon_client.post("/api/auth/token", {"username": "attendee", "password": "wrong"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid username or password"}


def test_token_answers_json_400_to_garbage(anon_client):
    response = anon_client.post("/api/auth/token", "not json", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()
