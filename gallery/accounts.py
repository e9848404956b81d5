"""What the sign-up page and the API's register share: one form, so one set of rules for usernames.

Django's `UserCreationForm` normalises the username (NFKC), applies the user
model's validators (letters, digits and @/./+/-/_ only: no NUL, no
right-to-left override), refuses a username that differs from an existing one
only in case, and checks the password against AUTH_PASSWORD_VALIDATORS.
"""

from __future__ import annotations

from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    """The sign-up page's form: a username and the password twice."""

    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class RegisterForm(UserCreationForm):
    """The API's register: the same rules, with an optional email address."""

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")
