"""wait_for: the one way tests and benchmarks wait for a condition."""

from __future__ import annotations

import itertools

import pytest

from testsupport.waiting import wait_for, wait_for_drain


def test_returns_the_first_true_value_of_the_condition() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_for(lambda: next(answers), 10, "an answer", interval=0) == "ready"
    assert next(answers) == "later"


def test_tries_once_even_with_no_time_left() -> None:
    assert wait_for(lambda: True, 0, "something already true") is True


def test_names_what_it_waited_for_when_time_runs_out() -> None:
    tries = itertools.count(1)
    with pytest.raises(TimeoutError, match="waiting for the moon"):
        wait_for(lambda: next(tries) < 0, 0, "the moon")
    assert next(tries) == 2


def test_drain_returns_once_nothing_remains_however_slow_the_progress() -> None:
    counts = iter([5, 5, 4, 4, 3, 2, 2, 1, 0])
    wait_for_drain(lambda: next(counts), 1, "the queue", interval=0)


def test_drain_fails_when_progress_stops() -> None:
    with pytest.raises(TimeoutError, match="the queue: stuck at 3"):
        wait_for_drain(lambda: 3, 0, "the queue", interval=0)
