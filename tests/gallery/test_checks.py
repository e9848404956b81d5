"""gallery.checks: matching settings that contradict each other are system checks with an id."""

from typing import Any

from gallery.checks import check_storage


def ids(settings: Any) -> set[str | None]:
    """The ids of the messages the matching and storage check gives with these `settings`."""
    return {message.id for message in check_storage(None)}


def test_the_default_matching_settings_pass(settings: Any) -> None:
    assert not {"gallery.W001", "gallery.W002", "gallery.E003", "gallery.E004"} & ids(settings)


def test_a_live_bar_looser_than_the_event_wide_one_is_a_warning(settings: Any) -> None:
    settings.FACE_MATCH_LIVE_THRESHOLD = settings.FACE_MATCH_THRESHOLD + 0.05
    assert "gallery.W002" in ids(settings)


def test_a_group_bar_above_the_lone_face_bar_is_an_error(settings: Any) -> None:
    settings.FACE_MATCH_GROUP_THRESHOLD = settings.FACE_MATCH_THRESHOLD + 0.05
    assert "gallery.E003" in ids(settings)
