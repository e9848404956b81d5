from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.models import PHOTOGRAPHERS_GROUP
from gallery.tokens import issue_token


class Command(BaseCommand):
    help = "Create a photographer account (or add an existing user to photographers) and print a new API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="Password for a new user (or to reset an existing one's).")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = options["username"]
        user = user_model.objects.filter(username=username).first()
        if user is None:
            if not options["password"]:
                raise CommandError("A new photographer needs --password")
            user = user_model.objects.create_user(
                username=username, email=options["email"], password=options["password"]
            )
        elif options["password"]:
            # A new password ends the tokens issued under the old one (gallery.tokens).
            user.set_password(options["password"])
            user.save(update_fields=["password"])
        group, _ = Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)
        user.groups.add(group)
        # Tokens are stored as digests only, so each run issues a new one.
        self.stdout.write(issue_token(user))
