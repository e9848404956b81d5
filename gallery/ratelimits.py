"""Rate limits shared by the API and the pages, read from settings.RATE_LIMITS at request time.

Per-address limits (`key="ip"`, and `key="user_or_ip"` for anonymous callers)
count against photoevent.client_ip.client_ip, through RATELIMIT_IP_META_KEY.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django_ratelimit.decorators import ratelimit

View = TypeVar("View", bound=Callable[..., Any])


def rate_for(name: str) -> Callable[[str, Any], str]:
    """A django-ratelimit rate callable giving RATE_LIMITS[name], so tests and operators can change it."""

    def rate(group: str, request: Any) -> str:
        return str(settings.RATE_LIMITS[name])

    return rate


def auth_rate_limit() -> Callable[[Any], Any]:
    """The limit on sign-in and sign-up attempts: per client address, POST only, for API and pages alike."""
    return ratelimit(group="auth", key="ip", rate=rate_for("auth"), method="POST", block=True)


def join_rate_limit() -> Callable[[Any], Any]:
    """The limits on join attempts (event codes tried), POST only, for API and pages alike.

    Per user (per address for visitors without an account) and, separately, per
    address, so that neither many accounts behind one address nor one account
    from many addresses can try codes faster.
    """
    per_user = ratelimit(group="join", key="user_or_ip", rate=rate_for("join"), method="POST", block=True)
    per_address = ratelimit(group="join-ip", key="ip", rate=rate_for("join-ip"), method="POST", block=True)

    def decorate(view: Any) -> Any:
        return per_address(per_user(view))

    return decorate


def _requested_address(group: str, request: Any) -> str:
    """The address a sign-in link is asked for (form or JSON body), as one key whatever its case."""
    data = getattr(request, "data", None)
    if not hasattr(data, "get"):
        data = request.POST
    email = data.get("email") if data is not None else None
    return email.strip().lower() if isinstance(email, str) else ""


def sign_in_link_rate_limit() -> Callable[[Any], Any]:
    """The limit on sign-in links asked for one address, so that nobody floods someone else's inbox."""
    return ratelimit(
        group="sign-in-link", key=_requested_address, rate=rate_for("sign-in-link"), method="POST", block=True
    )


def selfie_address_rate_limit() -> Callable[[View], View]:
    """RATE_LIMITS["selfie-ip"] per client address, POST only: every selfie upload counts, still or live."""
    limited: Callable[[View], View] = ratelimit(
        group="selfie-ip", key="ip", rate=rate_for("selfie-ip"), method="POST", block=True
    )
    return limited


def selfie_rate_limit() -> Callable[[View], View]:
    """The limits on selfie uploads, POST only, API and page alike: RATE_LIMITS["selfie"] per user
    and RATE_LIMITS["selfie-ip"] per client address. Wrap a view that requires a logged-in user."""
    per_user = ratelimit(group="selfie", key="user", rate=rate_for("selfie"), method="POST", block=True)
    per_address = selfie_address_rate_limit()

    def decorate(view: View) -> View:
        return per_address(per_user(view))

    return decorate
