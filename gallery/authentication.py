"""API token authentication with the token's user kept in the cache.

A page request would otherwise spend a database query on the token alone. The
cached entry is dropped when the token or its user is saved or deleted (see
gallery.signals); changes that bypass the ORM's signals, such as a queryset
`update()` of users, reach the API within CACHE_TTL_USER_DATA seconds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


def token_cache_key(key: str) -> str:
    # Hashed, so that the cache never holds a usable token.
    return "auth-token:" + hashlib.sha256(key.encode()).hexdigest()


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>` scheme, reading the token and its user through the cache."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        cache_key = token_cache_key(key)
        token = cache.get(cache_key)
        if token is None:
            user, token = super().authenticate_credentials(key)
            cache.set(cache_key, token, settings.CACHE_TTL_USER_DATA)
            return user, token
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return token.user, token
