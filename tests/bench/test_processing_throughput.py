"""bench/processing_throughput.py: how the baseline shares its photos, and the comparison on equal work."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
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


def test_the_cpu_of_a_cluster_is_read_per_process_and_split_between_workers_and_the_rest() -> None:
    # A child spins until its own clock says 0.2 CPU-s, then waits to be read.
    child = subprocess.Popen([sys.executable, "-c", SPIN, "0.2"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        spent = float(child.stdout.readline())
        before = {child.pid: 0.0}

        after = bench.cluster_cpu_seconds(child.pid)

        assert set(after) == {child.pid}
        # The kernel counts user and system time in whole ticks each: allow a few under the child's clock,
        # and at most a second over it for the interpreter's start.
        assert spent - 3 / os.sysconf("SC_CLK_TCK") <= after[child.pid] <= spent + 1.0
        assert bench.cpu_split(before, after, {child.pid}) == (after[child.pid], 0.0)
        assert bench.cpu_split(before, after, set()) == (0.0, after[child.pid])
    finally:
        child.kill()
        child.wait()


SPIN = """
import sys, time
goal = float(sys.argv[1])
while time.process_time() < goal:
    pass
print(time.process_time(), flush=True)
time.sleep(60)
"""
