"""Receivers: cache invalidation, and stored files that go with the rows that own them.

Nothing here calls the face backend: deletions that concern it go through
`processing.services`, which forgets backend data outside transactions. Files
stay here because cascades (an event's photos, an account's selfies) delete
rows no service sees, and a file must go whenever its row does, on commit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from gallery.caching import forget_on_commit
from gallery.models import (
    ApiToken,
    Event,
    MatchCorrection,
    Membership,
    Photo,
    PhotoArchive,
    Selfie,
    forget_cached_events,
    membership_cache_key,
    review_cache_keys,
)
from gallery.tokens import token_cache_key


def _delete_files_on_commit(*files: Any) -> None:
    names = [(f.storage, f.name) for f in files if f and f.name]

    def delete() -> None:
        for storage, name in names:
            storage.delete(name)

    transaction.on_commit(delete)


@receiver(post_delete, sender=Photo)
def delete_photo_files(sender: type[Photo], instance: Photo, **kwargs: Any) -> None:
    _delete_files_on_commit(instance.original, instance.thumbnail, instance.web, instance.watermarked)


@receiver(post_delete, sender=Event)
def delete_event_files(sender: type[Event], instance: Event, **kwargs: Any) -> None:
    _delete_files_on_commit(instance.watermark_logo)


@receiver(post_delete, sender=Selfie)
def delete_selfie_file(sender: type[Selfie], instance: Selfie, **kwargs: Any) -> None:
    _delete_files_on_commit(instance.image)


@receiver(post_delete, sender=PhotoArchive)
def delete_archive_file(sender: type[PhotoArchive], instance: PhotoArchive, **kwargs: Any) -> None:
    _delete_files_on_commit(instance.file)


@receiver(post_save, sender=ApiToken)
@receiver(post_delete, sender=ApiToken)
def forget_cached_token(sender: type[ApiToken], instance: ApiToken, **kwargs: Any) -> None:
    forget_on_commit(token_cache_key(instance.digest))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def forget_cached_tokens_of_user(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # The cached user carries its password hash and active flag, which the token check reads.
    if not created:
        digests = ApiToken.objects.filter(user_id=instance.pk).values_list("digest", flat=True)
        forget_on_commit(*(token_cache_key(digest) for digest in digests))


@receiver(post_delete, sender=Membership)
def forget_cached_membership(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    forget_on_commit(membership_cache_key(instance.event_id, instance.user_id))


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
def forget_cached_event(sender: type[Event], instance: Event, **kwargs: Any) -> None:
    forget_cached_events(instance.pk)


@receiver(post_save, sender=MatchCorrection)
@receiver(post_delete, sender=MatchCorrection)
def forget_cached_review(sender: type[MatchCorrection], instance: MatchCorrection, **kwargs: Any) -> None:
    # An answered photo is not asked about again, at once.
    forget_on_commit(*review_cache_keys(instance.event_id, instance.user_id))


@receiver(post_save, sender=Selfie)
@receiver(post_delete, sender=Selfie)
def forget_cached_reviews_of_selfie(sender: type[Selfie], instance: Selfie, **kwargs: Any) -> None:
    # The questions are measured from the selfies, in every event the guest joined.
    events = Membership.objects.filter(user_id=instance.user_id).values_list("event_id", flat=True)
    forget_on_commit(*(key for event_id in events for key in review_cache_keys(event_id, instance.user_id)))
