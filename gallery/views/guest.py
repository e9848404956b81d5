"""The guest's account pages: email and alerts, a password later, sign-in links, unsubscribing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from gallery.alerts import user_id_from_unsubscribe_token
from gallery.guests import clean_email, guest_session_seconds, is_guest, notifications, set_notifications, stop_alerts
from gallery.ratelimits import auth_rate_limit, sign_in_link_rate_limit
from gallery.views.common import next_url, page_user
from processing.services import send_sign_in_link_later


class NotificationsForm(forms.Form):
    email = forms.CharField(label=gettext_lazy("Email address"), required=False, max_length=254)
    alerts = forms.BooleanField(label=gettext_lazy("Email me when new photos of me arrive"), required=False)

    def clean_email(self) -> str:
        try:
            return clean_email(self.cleaned_data.get("email"))
        except forms.ValidationError:
            raise forms.ValidationError(_("Enter a valid email address.")) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("alerts") and not cleaned.get("email"):
            self.add_error("email", _("Alerts need an email address."))
        return cleaned


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The account page: email and alerts, and a password (set one, or change it)."""
    user = page_user(request)
    current = notifications(user)
    password_form_class = SetPasswordForm if is_guest(user) else PasswordChangeForm
    action = request.POST.get("action") if request.method == "POST" else None
    email_form = NotificationsForm(
        request.POST if action == "notifications" else None,
        initial={"email": current.email, "alerts": current.alerts},
    )
    password_form = password_form_class(user, request.POST if action == "password" else None)
    if action == "notifications" and email_form.is_valid():
        saved = set_notifications(user, email_form.cleaned_data["email"], email_form.cleaned_data["alerts"])
        if saved.alerts:
            messages.success(request, _("Saved. We will email you when new photos of you arrive."))
        else:
            messages.success(request, _("Saved."))
        return redirect("gallery-account")
    if action == "password" and password_form.is_valid():
        password_form.save()
        # Changing the password ends the other sessions, not this one.
        update_session_auth_hash(request, user)
        messages.success(request, _("Your password is set. You can now also log in with it."))
        return redirect("gallery-account")
    return render(
        request,
        "gallery/account.html",
        {
            "email_form": email_form,
            "password_form": password_form,
            "is_guest": is_guest(user),
            "session_days": settings.GUEST_SESSION_DAYS,
        },
    )


class SignInLinkForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Your email address"), max_length=254)


@require_http_methods(["GET", "POST"])
@auth_rate_limit()
@sign_in_link_rate_limit()
def email_sign_in_link(request: HttpRequest) -> HttpResponse:
    """ "Email me a link": the same answer whether the address is known or not; the email goes out on the queue."""
    target = next_url(request, reverse("gallery-home"))
    form = SignInLinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        send_sign_in_link_later(form.cleaned_data["email"], target)
        return render(
            request,
            "gallery/sign_in_link_sent.html",
            {"email": form.cleaned_data["email"], "minutes": settings.SESAME_MAX_AGE // 60},
        )
    return render(request, "gallery/sign_in_link.html", {"form": form, "next": target})


@require_http_methods(["GET", "POST"])
@auth_rate_limit()
def sign_in_with_link(request: HttpRequest) -> HttpResponse:
    """Where an emailed link leads: a button that signs in (POST), so that a mail scanner's GET uses nothing up."""
    token = request.POST.get("sesame") or request.GET.get("sesame") or ""
    target = next_url(request, reverse("gallery-home"))
    if request.method == "POST":
        # Single use: logging in updates last_login, which the token signs. Through
        # authenticate() with the request (what sesame's get_user() does without
        # one), so that django-axes counts failed links like failed logins.
        user = authenticate(request, sesame=token) if token else None
        if user is not None:
            login(request, user)
            if is_guest(user):
                request.session.set_expiry(guest_session_seconds())
            return redirect(target)
        return render(request, "gallery/sign_in_with_link.html", {"invalid": True}, status=400)
    return render(request, "gallery/sign_in_with_link.html", {"token": token, "next": target, "invalid": not token})


@csrf_exempt  # the signed token is the credential; RFC 8058 one-click POSTs come without a session
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The unsubscribe link of the alert emails: no log-in needed. GET asks, POST (one click) turns alerts off."""
    user_id = user_id_from_unsubscribe_token(token)
    if user_id is None:
        return render(request, "gallery/unsubscribe.html", {"invalid": True}, status=400)
    if request.method == "POST":
        stop_alerts(user_id)
        return render(request, "gallery/unsubscribe.html", {"done": True})
    return render(request, "gallery/unsubscribe.html", {"token": token})
