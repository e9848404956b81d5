"""API token authentication (django-rest-knox's `Authorization: Token <key>`), with the check kept in the cache.

The token is looked up by its digest (gallery.tokens), the table's primary
key. A page request would otherwise spend a database query on the token alone:
the cache is keyed by a hash of that digest and holds the user and
the token's digest, expiry and password fingerprint: nothing there
authenticates. Every hit is checked again for expiry, an inactive user and a
changed password. The entry is dropped when the token or its user is saved or
deleted (see gallery.signals); changes that bypass the ORM's signals, such as a
queryset `update()` of users, reach the API within CACHE_TTL_USER_DATA seconds.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from gallery.models import ApiToken
from gallery.tokens import revoke_token, token_cache_key, token_digest, token_is_current


class CachedTokenAuthentication(TokenAuthentication):
    """knox's `Authorization: Token <key>` header, checked through the cache; refuses expired and stale tokens."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, ApiToken]:
        try:
            digest = token_digest(token.decode())
        except (UnicodeDecodeError, ValueError):
            raise AuthenticationFailed(_("Invalid token.")) from None
        cache_key = token_cache_key(digest)
        entry = cache.get(cache_key)
        if entry is None:
            stored = ApiToken.objects.select_related("user").filter(digest=digest).first()
            if stored is None:
                raise AuthenticationFailed(_("Invalid token."))
            entry = (stored.user, stored.digest, stored.expiry, stored.password_fingerprint)
            cache.set(cache_key, entry, settings.CACHE_TTL_USER_DATA)
        user, digest, expiry, fingerprint = entry
        # Rebuilt without the lookup prefix, which is part of the token.
        auth_token = ApiToken(digest=digest, user=user, expiry=expiry, password_fingerprint=fingerprint)
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        if not token_is_current(auth_token, user):
            cache.delete(cache_key)
            revoke_token(auth_token)
            raise AuthenticationFailed(_("Invalid token."))
        return user, auth_token
