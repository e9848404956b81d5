"""The marker face backend and scenes under the names the tests import (they live in testsupport)."""

from testsupport.fakes import FLAKY, POISON, FakeBackend, marker_faces
from testsupport.markers import FAKE_BACKEND, MARKERS, scene_png

__all__ = ["FAKE_BACKEND", "FLAKY", "MARKERS", "POISON", "FakeBackend", "marker_faces", "scene_png"]
