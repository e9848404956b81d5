"""processing.detection: where the detector looks, and how good a face is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings
from PIL import Image, ImageDraw, ImageFilter

from processing.detection import (
    CROWD_MIN_SCORE,
    Box,
    face_quality,
    find_boxes,
    needs_fine_pass,
    selfie_problem,
    sharpness,
)
from processing.matching import quality_band
from processing.tasks import analysis_pixels, batch_sizes, largest_first


class Rect:
    def __init__(self, left: int, top: int, size: int) -> None:
        self._box = (left, top, left + size, top + size)

    def left(self) -> int:
        return self._box[0]

    def top(self) -> int:
        return self._box[1]

    def right(self) -> int:
        return self._box[2]

    def bottom(self) -> int:
        return self._box[3]


class RecordingDetector:
    """Answers with the faces it is told to see at each upsampling, and records the passes."""

    def __init__(self, by_upsample: dict[int, list[int]]) -> None:
        self.by_upsample = by_upsample
        self.passes: list[int] = []

    def run(self, array: np.ndarray, upsample: int, threshold: float) -> tuple[list[Rect], list[float], list[int]]:
        self.passes.append(upsample)
        rects = [Rect(10 + 200 * i, 10, size) for i, size in enumerate(self.by_upsample.get(upsample, []))]
        return rects, [1.0] * len(rects), [0] * len(rects)


IMAGE = np.zeros((600, 3000, 3), np.uint8)


def boxes(*sizes: int) -> list[Box]:
    return [Box(0, 0, size, size, 1.0, None) for size in sizes]


def test_the_fine_pass_is_for_photos_with_no_face_small_faces_or_a_crowd() -> None:
    assert needs_fine_pass([])
    assert needs_fine_pass(boxes(200, 73))
    assert needs_fine_pass(boxes(*[120] * 8))
    assert not needs_fine_pass(boxes(150, 104, 88))


def test_a_borderline_small_find_in_a_close_up_does_not_pay_for_the_fine_pass() -> None:
    borderline = Box(0, 0, 73, 73, 0.03, None)
    clear = Box(0, 0, 73, 73, 0.9, None)

    assert not needs_fine_pass([borderline, *boxes(450, 530)])
    assert needs_fine_pass([clear, *boxes(450, 530)])
    # Without a close-up face, a borderline small find is the first of a distant group.
    assert needs_fine_pass([borderline, *boxes(150)])
    assert needs_fine_pass([borderline])


def test_a_face_cut_by_the_frame_is_not_taken_for_a_small_face() -> None:
    cut = Box(0, 0, 40, 120, 1.0, None, detected_width=120)

    assert not needs_fine_pass([cut, *boxes(150)])
    assert needs_fine_pass([Box(0, 0, 40, 120, 1.0, None, detected_width=75), *boxes(150)])


def test_a_photo_of_large_faces_pays_one_pass_at_upsample_0() -> None:
    detector = RecordingDetector({0: [150, 104], 1: [150, 104, 50]})

    found, upsample = find_boxes(detector, IMAGE, 1)

    assert detector.passes == [0]
    assert (upsample, [b.width for b in found]) == (0, [150, 104])


def test_small_faces_get_the_upsampled_pass_whose_boxes_replace_the_first() -> None:
    detector = RecordingDetector({0: [73], 1: [76, 52, 44]})

    found, upsample = find_boxes(detector, IMAGE, 1)

    assert detector.passes == [0, 1]
    assert (upsample, [b.width for b in found]) == (1, [76, 52, 44])


def test_upsample_0_or_a_fixed_setting_runs_one_pass() -> None:
    detector = RecordingDetector({0: []})
    assert find_boxes(detector, IMAGE, 0) == ([], 0)
    fixed = RecordingDetector({1: [50]})
    assert [b.width for b in find_boxes(fixed, IMAGE, 1, adaptive=False)[0]] == [50]
    assert detector.passes + fixed.passes == [0, 1]


def face_like(size: int, blur: float = 0.0) -> tuple[np.ndarray, Box]:
    """A synthetic high-contrast pattern in a `size` px box (eyes, mouth, edges)."""
    image = Image.new("RGB", (size + 20, size + 20), (120, 100, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 10 + size, 10 + size), fill=(220, 180, 160))
    for left in (0.28, 0.62):
        x = 10 + int(size * left)
        draw.ellipse((x, 10 + int(size * 0.35), x + max(2, size // 8), 10 + int(size * 0.45)), fill=(30, 20, 20))
    draw.rectangle((10 + size // 3, 10 + int(size * 0.7), 10 + 2 * size // 3, 10 + int(size * 0.75)), fill=(90, 20, 30))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(image), Box(10, 10, 10 + size, 10 + size, 1.0, None)


def test_blur_lowers_sharpness_and_quality() -> None:
    sharp_array, box = face_like(120)
    blurred_array, _ = face_like(120, blur=4)

    sharp, blurred = sharpness(sharp_array, box), sharpness(blurred_array, box)

    assert blurred < sharp
    assert face_quality(120, 120, blurred, 1.0) < face_quality(120, 120, sharp, 1.0)


def test_quality_grows_with_size_and_detector_score() -> None:
    assert face_quality(20, 20, 1.0, 1.0) == 0.0
    assert face_quality(30, 30, 1.0, 1.0) < face_quality(60, 60, 1.0, 1.0) == 1.0
    assert face_quality(60, 60, 1.0, 0.0) < face_quality(60, 60, 1.0, 1.0)


def test_a_window_under_the_detector_threshold_is_weak_evidence_at_best() -> None:
    assert quality_band(face_quality(60, 60, 1.0, 0.0)) == "strong"
    assert quality_band(face_quality(60, 60, 1.0, -0.01)) == "weak"
    assert quality_band(face_quality(60, 60, 1.0, CROWD_MIN_SCORE)) == "weak"
    assert face_quality(60, 60, 1.0, CROWD_MIN_SCORE) < face_quality(60, 60, 1.0, -0.1)


@pytest.mark.parametrize(
    ("size", "blur", "problem"),
    [(200, 0.0, None), (40, 0.0, "small"), (200, 12.0, "blurry")],
)
def test_a_selfie_face_must_be_large_and_sharp(size: int, blur: float, problem: str | None) -> None:
    array, box = face_like(size, blur)

    assert selfie_problem(array, box) == problem


@pytest.mark.parametrize(
    ("count", "batch", "workers", "sizes"),
    [
        (5, 5, 3, [1, 1, 1, 1, 1]),
        (5, 5, 1, [5]),
        (12, 5, 1, [5, 5, 2]),
        (1, 5, 3, [1]),
        (30, 5, 2, [5, 5, 5, 4, 3, 2, 2, 1, 1, 1, 1]),
        (12, 5, 2, [3, 3, 2, 1, 1, 1, 1]),
        (0, 5, 2, []),
    ],
)
def test_uploads_go_in_batches_of_at_most_the_batch_size_that_shrink_towards_the_end(
    count: int, batch: int, workers: int, sizes: list[int]
) -> None:
    assert batch_sizes(count, batch, workers) == sizes


def test_a_photo_costs_its_pixels_at_analysis_size() -> None:
    assert analysis_pixels(6000, 4000, 1600) == 1600 * 1067
    assert analysis_pixels(800, 600, 1600) == 800 * 600
    # Dimensions not read yet: assume the most, so the photo is not left for last.
    assert analysis_pixels(0, 0, 1600) == 1600 * 1600


@override_settings(PHOTO_ANALYSIS_MAX_SIDE=1600)
def test_the_largest_photos_are_queued_first_and_equals_keep_upload_order() -> None:
    sizes = {1: (640, 480), 2: (6000, 4000), 3: (3000, 2000), 4: (640, 480), 5: (1200, 900)}

    # 2 and 3 both reduce to 1600 x 1067.
    assert largest_first([1, 2, 3, 4, 5, 6], sizes) == [6, 2, 3, 5, 1, 4]


class Rect4(Rect):
    """A dlib-like rectangle built from its corners, as the near-miss look builds them."""

    def __init__(self, left: int, top: int, right: int, bottom: int) -> None:
        self._box = (left, top, right, bottom)


def scene_image() -> np.ndarray:
    """A grey image of random pixels, in which any row of a crop is found in one place only."""
    return np.random.default_rng(0).integers(0, 256, (1000, 3000), dtype=np.uint8)


class SceneDetector:
    """Sees fixed faces of the whole image (`scene_image`), in whatever crop of it it is given.

    Each face: (left, top, size, score at upsample 0 or None, found at upsample 1:
    True for a clear find, a number for its score, False for none). Like dlib,
    it reads the array as one C-ordered buffer, so it is sent no other.
    """

    def __init__(self, image: np.ndarray, faces: list[tuple[int, int, int, float | None, bool | float]]) -> None:
        self.image, self.faces = image, faces
        self.pixels = image.tobytes()
        self.looks: list[tuple[int, tuple[int, ...]]] = []

    def run(self, array: np.ndarray, upsample: int, threshold: float) -> tuple[list[Rect4], list[float], list[int]]:
        assert array.flags["C_CONTIGUOUS"], "dlib would read other pixels than this view's"
        self.looks.append((upsample, array.shape[:2]))
        # Where the crop lies in the image: its first row occurs once in the random pixels.
        offset = self.pixels.find(array[0].tobytes())
        top, left = divmod(offset, self.image.shape[1])
        height, width = array.shape[:2]
        rects, scores = [], []
        for x, y, size, first_score, fine in self.faces:
            score = first_score if upsample == 0 else _fine_score(fine)
            inside = left <= x and x + size <= left + width and top <= y and y + size <= top + height
            if score is not None and score >= threshold and inside:
                rects.append(Rect4(x - left, y - top, x - left + size, y - top + size))
                scores.append(score)
        return rects, scores, [0] * len(rects)


def _fine_score(fine: bool | float) -> float | None:
    if isinstance(fine, bool):
        return 1.0 if fine else None
    return fine


def test_a_near_miss_gets_an_upsampled_look_at_its_surroundings_only() -> None:
    image = scene_image()
    # A clear large face, and a small one the first pass only nearly sees.
    detector = SceneDetector(image, [(100, 100, 150, 1.0, True), (1500, 500, 74, -0.3, True)])

    found, _ = find_boxes(detector, image, 1)

    assert sorted((b.left, b.top) for b in found) == [(100, 100), (1500, 500)]
    assert found[1].rect.left() == 1500  # in the whole image's pixels, for the landmark model
    (first, _), (upsample, crop) = detector.looks
    assert (first, upsample) == (0, 1)
    assert crop[0] * crop[1] < image.size / 10


def test_a_window_well_under_the_threshold_gets_a_look_twice_its_width() -> None:
    image = scene_image()
    # A face of about 60 px scores well under the threshold in the first pass's smallest window.
    detector = SceneDetector(image, [(100, 100, 150, 1.0, True), (1500, 500, 74, -0.8, True)])

    found, _ = find_boxes(detector, image, 1)

    assert sorted((b.left, b.top) for b in found) == [(100, 100), (1500, 500)]
    (_, _), (upsample, crop) = detector.looks
    assert (upsample, crop) == (1, (148, 148))


def test_a_near_miss_with_nothing_closer_adds_no_face_and_a_crowd_of_them_gets_the_whole_photo() -> None:
    image = scene_image()
    nothing = SceneDetector(image, [(100, 100, 150, 1.0, True), (1500, 500, 74, -0.3, False)])

    assert [(b.left, b.top) for b in find_boxes(nothing, image, 1)[0]] == [(100, 100)]

    misses = [(300 * i + 400, 600, 74, -0.2, True) for i in range(5)]
    crowd = SceneDetector(image, [(100, 100, 150, 1.0, True), *misses])

    assert len(find_boxes(crowd, image, 1)[0]) == 6
    assert crowd.looks[1] == (1, image.shape)


def test_a_crowd_keeps_the_borderline_windows_of_its_upsampled_pass() -> None:
    image = scene_image()
    # Nothing at upsample 0 (faces of 50 px); at upsample 1, eight clear faces and three windows under the threshold.
    clear = [(150 * i + 100, 100, 50, None, True) for i in range(8)]
    borderline = [(100, 600, 50, None, -0.2), (400, 600, 50, None, CROWD_MIN_SCORE), (700, 600, 50, None, -0.8)]
    crowd = SceneDetector(image, [*clear, *borderline])

    found, upsample = find_boxes(crowd, image, 1)

    assert upsample == 1
    assert sorted(b.score for b in found if b.score < 0) == [CROWD_MIN_SCORE, -0.2]
    assert len(found) == 10


def test_a_photo_of_a_few_faces_keeps_only_the_clear_finds_of_its_upsampled_pass() -> None:
    image = scene_image()
    # A pet's head scores under the threshold beside three small faces.
    few = SceneDetector(image, [(150 * i + 100, 100, 50, None, True) for i in range(3)] + [(900, 600, 50, None, -0.2)])

    found, _ = find_boxes(few, image, 1)

    assert [b.score for b in found] == [1.0, 1.0, 1.0]


def test_each_face_of_a_photo_gets_its_own_descriptor_from_the_one_batch(faces_dir: Path) -> None:
    import dlib

    from processing.backends.local import _detect_faces, models

    array = np.asarray(Image.open(faces_dir / "groups" / "bbt1.jpg").convert("RGB"))
    faces = _detect_faces(array, 0)
    assert len(faces) >= 3
    m = models()
    for face in faces:
        rect = dlib.rectangle(face.left, face.top, face.left + face.width, face.top + face.height)
        alone = m.encoder.compute_face_descriptor(array, m.shape_predictor(array, rect), 1)
        assert face.embedding is not None
        assert np.allclose(face.embedding, np.asarray(alone), atol=1e-5)


def test_a_borderline_find_the_upsampled_pass_scores_under_the_threshold_is_kept() -> None:
    image = scene_image()
    # A small clear face calls for the upsampled pass, which scores the larger, borderline one at -0.02.
    detector = SceneDetector(image, [(100, 100, 74, 0.6, True), (1500, 500, 180, 0.08, -0.02)])

    found, upsample = find_boxes(detector, image, 1)

    assert upsample == 1
    assert sorted((b.left, b.top, b.width) for b in found) == [(100, 100, 74), (1500, 500, 180)]
