"""Account pages: sign-up, the face data we hold, and deleting it or the whole account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from gallery import access
from gallery.accounts import SignupForm
from gallery.models import profile_for
from gallery.views.common import BACKEND_DOWN, event_from_url, next_url, page_user
from processing.services import BackendError, forget_attendee
from processing.services import delete_account as delete_account_and_face_data

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The session key that carries what was deleted to the confirmation page.
DELETED_KEY = "face-data-deleted"


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    target = next_url(request, reverse("gallery-home"))
    if request.user.is_authenticated:
        return redirect(target)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        profile_for(user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(target)
    return render(
        request,
        "registration/signup.html",
        {"form": form, "next": target, "event": event_from_url(target, request.user)},
    )


def _remember_deleted(request: HttpRequest, **facts: Any) -> None:
    request.session[DELETED_KEY] = facts


@login_required
@require_http_methods(["GET", "POST"])
def face_data(request: HttpRequest) -> HttpResponse:
    """What face data we hold, and the button that deletes it (and withdraws consent)."""
    user = page_user(request)
    if request.method == "POST":
        try:
            forgotten = forget_attendee(user)
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-face-data")
        _remember_deleted(request, account=None, **forgotten.__dict__)
        return redirect("gallery-deleted")
    return render(request, "gallery/face_data.html", access.face_data_summary(user))


class DeleteAccountForm(forms.Form):
    """The password, as confirmation; an account without a usable password has none to give."""

    password = forms.CharField(label=gettext_lazy("Your password, to confirm"), widget=forms.PasswordInput)

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if not user.has_usable_password():
            # A guest has no password to confirm with; the button and CSRF token are the confirmation.
            del self.fields["password"]

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your password."))
        return password


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """Delete the account: face data first (backends included), then the user and all it owns."""
    user = page_user(request)
    owns_events = access.photographer_events(user).exists()
    form = DeleteAccountForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and not owns_events and form.is_valid():
        memberships = access.memberships_count(user)
        username = user.username
        try:
            forgotten = delete_account_and_face_data(user)
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-delete-account")
        logout(request)
        _remember_deleted(request, account=username, memberships=memberships, **forgotten.__dict__)
        return redirect("gallery-deleted")
    return render(request, "gallery/delete_account.html", {"form": form, "owns_events": owns_events})


def deleted(request: HttpRequest) -> HttpResponse:
    """Says exactly what the face-data or account deletion removed."""
    facts = request.session.pop(DELETED_KEY, None)
    if facts is None:
        return redirect("gallery-home")
    return render(request, "gallery/deleted.html", {"facts": facts})
