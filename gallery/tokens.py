"""API tokens: the one place that issues, checks and revokes them (django-rest-knox underneath).

A token is a knox token (random, 64 hex characters) stored only as knox's
SHA-512 digest, which is also how it is looked up: unlike knox's default, the
lookup column holds the start of the digest, not of the token, so the database
holds nothing of the token itself. It expires after
API_TOKEN_TTL_DAYS, and it is valid only while the user's password is the one
it was issued under (`password_fingerprint`, built like Django's session auth
hash), so a password change through any path (the account pages, the admin,
`set_password()` then `save()`, even a queryset update) ends every older token.
Deleting the account deletes its tokens with it.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from knox.crypto import create_token_string, hash_token
from knox.settings import CONSTANTS, knox_settings

from gallery.models import ApiToken

# The HMAC salt of password fingerprints; changing it ends every token.
FINGERPRINT_SALT = "gallery.tokens.password_fingerprint"


def password_fingerprint(user: AbstractBaseUser) -> str:
    """A keyed hash of the user's password hash: changes whenever the password does."""
    return salted_hmac(FINGERPRINT_SALT, user.password, algorithm="sha256").hexdigest()


def issue_token(user: AbstractBaseUser) -> str:
    """A new API token for `user`, valid for API_TOKEN_TTL_DAYS; only its digest is stored.

    Every call gives a new token (logging in again does not return an old one).
    The user's expired tokens are deleted on the way.
    """
    now = timezone.now()
    ApiToken.objects.filter(user_id=user.pk, expiry__lt=now).delete()
    token = knox_settings.TOKEN_PREFIX + create_token_string()
    digest = token_digest(token)
    ApiToken(
        digest=digest,
        token_key=digest[: CONSTANTS.TOKEN_KEY_LENGTH],
        user=user,
        expiry=now + knox_settings.TOKEN_TTL,
        password_fingerprint=password_fingerprint(user),
    ).save(force_insert=True)
    return token


def token_digest(token: str) -> str:
    """The digest under which a token is stored (knox's hash)."""
    return str(hash_token(token))


def token_cache_key(digest: str) -> str:
    """The cache key of a token's authentication, from its stored digest: the cache never holds the token."""
    return "auth-token:" + hashlib.sha256(digest.encode()).hexdigest()


def token_is_current(token: ApiToken, user: AbstractBaseUser) -> bool:
    """Whether `token` has not expired and was issued under `user`'s current password."""
    if token.expiry is not None and token.expiry <= timezone.now():
        return False
    return constant_time_compare(token.password_fingerprint, password_fingerprint(user))


def revoke_token(token: ApiToken) -> None:
    """End one token (the one a request used)."""
    ApiToken.objects.filter(digest=token.digest).delete()


def revoke_all_tokens(user: AbstractBaseUser) -> int:
    """End every token of `user`; returns how many there were."""
    deleted, _by_model = ApiToken.objects.filter(user_id=user.pk).delete()
    return deleted
