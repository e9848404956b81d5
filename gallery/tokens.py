"""API tokens: the one place that issues them."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token


def issue_token(user: User) -> str:
    """A token that authenticates `user` on the API (`Authorization: Token <key>`)."""
    token, _created = Token.objects.get_or_create(user=user)
    return str(token.key)
