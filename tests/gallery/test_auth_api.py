import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_register_creates_attendee_and_returns_token(anon_client):
    response = anon_client.post(
        "/api/auth/register", {"username": "guest", "password": "Long-pass-4321"}, format="json"
    )
    assert response.status_code == 201
    assert len(response.json()["token"]) == 40
    assert User.objects.get(username="guest").check_password("Long-pass-4321")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"username": "attendee", "password": "Long-pass-4321"}, "taken"),
        ({"username": "new", "password": "123"}, "too short"),
        ({"username": "new"}, "'password' is required"),
    ],
)
def test_register_rejects_bad_input(anon_client, attendee, payload, message):
    response = anon_client.post("/api/auth/register", payload, format="json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_token_for_valid_credentials(anon_client, attendee):
    response = anon_client.post(
        "/api/auth/token", {"username": "attendee", "password": "Pass-word-1234"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["token"]


def test_token_refuses_bad_password(anon_client, attendee):
    response = anon_client.post("/api/auth/token", {"username": "attendee", "password": "wrong"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid username or password"}


def test_token_answers_json_400_to_garbage(anon_client):
    response = anon_client.post("/api/auth/token", "not json", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()
