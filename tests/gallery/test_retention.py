"""Face data of inactive attendees is deleted by a daily schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_q.models import Schedule

from gallery.models import AttendeeProfile, Match, Selfie, activity_cache_key, record_activity
from processing.backends.base import TransientBackendError
from processing.pipeline import enrol_selfie
from processing.queue_startup import ensure_schedules
from processing.retention import purge_inactive_face_data
from tests.gallery.conftest import selfie_file

pytestmark = pytest.mark.django_db


def idle_for(user, days):
    AttendeeProfile.objects.filter(user=user).update(last_active_at=timezone.now() - timedelta(days=days))


@pytest.fixture
def two_guests(make_user, event, event_photos):
    from gallery.models import Membership

    guests = []
    for name, person in (("idle", 0), ("busy", 1)):
        user = make_user(name)
        Membership.objects.create(user=user, event=event)
        enrol_selfie(user, selfie_file([person]))
        guests.append(user)
    return guests


def test_inactive_attendees_lose_selfies_and_matches_active_ones_keep_them(two_guests, settings):
    settings.FACE_DATA_RETENTION_DAYS = 30
    idle, busy = two_guests
    idle_for(idle, 31)
    idle_for(busy, 29)
    assert purge_inactive_face_data() == 1
    assert not Selfie.objects.filter(user=idle).exists() and not Match.objects.filter(user=idle).exists()
    assert Selfie.objects.filter(user=busy).exists() and Match.objects.filter(user=busy).exists()
    # They did not withdraw consent; a new selfie brings their photos back.
    assert AttendeeProfile.objects.get(user=idle).has_consented
    assert purge_inactive_face_data() == 0


def test_default_retention_is_the_setting(two_guests, settings):
    idle, _ = two_guests
    idle_for(idle, settings.FACE_DATA_RETENTION_DAYS - 1)
    assert purge_inactive_face_data() == 0
    assert purge_inactive_face_data(now=timezone.now() + timedelta(days=2)) == 1


def test_one_backend_failure_does_not_stop_the_others(two_guests, monkeypatch, fake_backend):
    idle, busy = two_guests
    idle_for(idle, 400)
    idle_for(busy, 400)
    original = fake_backend.forget_selfie

    def flaky(selfie):
        if selfie.user_id == idle.pk:
            raise TransientBackendError("timeout")
        original(selfie)

    monkeypatch.setattr(fake_backend, "forget_selfie", flaky)
    assert purge_inactive_face_data() == 1
    assert Selfie.objects.filter(user=idle).exists()
    assert not Selfie.objects.filter(user=busy).exists()


def test_the_purge_is_a_daily_schedule():
    ensure_schedules()
    schedule = Schedule.objects.get(func="processing.retention.purge_inactive_face_data")
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == 24 * 60
    assert schedule.repeats == -1


def test_activity_is_written_at_most_hourly(attendee):
    profile = AttendeeProfile.objects.get(user=attendee)
    recent = timezone.now() - timedelta(minutes=59)
    AttendeeProfile.objects.filter(pk=profile.pk).update(last_active_at=recent)
    record_activity(attendee)
    assert AttendeeProfile.objects.get(pk=profile.pk).last_active_at == recent
    # Two minutes later: the hour is over, and so is the cached note of it.
    old = timezone.now() - timedelta(minutes=61)
    AttendeeProfile.objects.filter(pk=profile.pk).update(last_active_at=old)
    cache.delete(activity_cache_key(attendee.pk))
    record_activity(attendee)
    assert AttendeeProfile.objects.get(pk=profile.pk).last_active_at > old


def test_known_activity_costs_no_query(attendee, django_assert_num_queries):
    AttendeeProfile.objects.filter(user=attendee).update(last_active_at=timezone.now() - timedelta(days=2))
    record_activity(attendee)
    with django_assert_num_queries(0):
        record_activity(attendee)
