"""bench/processing_throughput.py: how the baseline shares its photos, and the comparison on equal work."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from bench import processing_throughput as bench
from bench.processing_throughput import Round, equal_work


@pytest.fixture
def photos() -> Iterator[list[tuple[str, bytes]]]:
    listed = [(f"p{i}.jpg", bytes([i])) for i in range(7)]
    bench._PHOTOS[:] = listed
    yield listed
    bench._PHOTOS[:] = []


def test_with_a_shared_counter_each_photo_goes_to_whoever_asks_next(photos: list[tuple[str, bytes]]) -> None:
    counter = multiprocessing.get_context("fork").Value("i", 0)
    first, second = bench._shares(0, 2, counter), bench._shares(1, 2, counter)
    # The first process is slow: it asks once while the second takes the rest.
    taken = [next(first), *second, *first]

    assert taken == photos
    assert len(taken) == len(set(taken))


def test_a_static_split_gives_every_nth_photo_whatever_it_costs(photos: list[tuple[str, bytes]]) -> None:
    assert list(bench._shares(0, 2, None)) == photos[0::2]
    assert list(bench._shares(1, 2, None)) == photos[1::2]


def test_equal_work_compares_only_the_photos_where_both_describe_the_same_faces() -> None:
    queue = Round(wall=0, faces=0, per_photo={"a": (1.0, 1), "b": (2.0, 2), "crowd": (5.0, 6)}, tail=0)
    before = Round(wall=0, faces=0, per_photo={"a": (0.9, 1), "b": (1.8, 2), "crowd": (0.5, 0)}, tail=0)
    after = Round(wall=0, faces=0, per_photo={"a": (1.1, 1), "b": (1.8, 2), "crowd": (0.5, 0)}, tail=0)

    ratio, photos = equal_work(queue, [before, after])

    assert photos == 2
    # (1.0 + 1.8) bare seconds against (1.0 + 2.0) queue seconds; the crowd photo is left out.
    assert ratio == pytest.approx(2.8 / 3.0)
