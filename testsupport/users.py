"""Users as the application knows them: photographers, staff, attendees who consented to face search.

Imports the models, so it loads only once Django is set up.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.utils import timezone

from gallery.models import PHOTOGRAPHERS_GROUP, profile_for


def create_user(
    username: str, password: str, *, photographer: bool = False, staff: bool = False, consent: bool = True
) -> User:
    """A user in the photographers' group if `photographer`, who consented to face search if `consent`."""
    user = User.objects.create_user(username=username, password=password, is_staff=staff)
    if photographer:
        user.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    profile = profile_for(user)
    if consent:
        profile.face_consent_at = timezone.now()
        profile.save(update_fields=["face_consent_at"])
    return user
