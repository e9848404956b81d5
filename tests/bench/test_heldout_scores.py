"""bench/heldout_scores.py: seeds, scores of evaluate_matching's report, the bar and the pooled figures."""

from __future__ import annotations

import pytest

from bench import heldout_scores as bench
from bench.heldout_scores import Event, Score, parse, seeds
from processing.evaluation import evaluate


def test_seeds_take_ranges_and_single_numbers() -> None:
    assert seeds("31-33,40") == [31, 32, 33, 40]
    assert seeds("") == []


def test_a_score_is_read_from_the_reports_first_threshold() -> None:
    # The report's results are what processing.evaluation.evaluate returns, one per threshold.
    truth = {"ann": {"a.jpg", "b.jpg", "c.jpg"}, "bob": {"c.jpg"}}
    first = evaluate(truth, {"ann": {"a.jpg", "b.jpg", "d.jpg"}, "bob": {"c.jpg"}})
    second = evaluate(truth, {"ann": set(), "bob": set()})
    assert parse({"results": [first, second]}) == Score(tp=3, fp=1, fn=1)


def test_the_bar_needs_both_precision_and_recall() -> None:
    assert Score(tp=98, fp=2, fn=5).meets_bar  # 0.980 / 0.951
    assert not Score(tp=97, fp=3, fn=0).meets_bar  # precision 0.970
    assert not Score(tp=94, fp=0, fn=6).meets_bar  # recall 0.940
    assert not Score(error="selfie refused").meets_bar


def test_pooled_figures_sum_the_counts_and_compare_events(capsys: pytest.CaptureFixture[str]) -> None:
    scored = [
        (Event("default", 1), Score(tp=99, fp=1, fn=1), None),
        (Event("default", 2), Score(tp=90, fp=10, fn=10), None),
        (Event("crowd", 1), Score(tp=80, fp=0, fn=20), Score(tp=82, fp=0, fn=18)),
        (Event("crowd", 2), Score(tp=90, fp=0, fn=10), Score(tp=85, fp=1, fn=15)),
        (Event("crowd", 3), Score(error="selfie refused"), None),
    ]
    bench.pooled("default", scored)
    bench.pooled("crowd", scored)
    printed = capsys.readouterr().out
    assert "default: 2 events, pooled precision 0.945, recall 0.945 (tp 189, fp 11, fn 11); 1 of 2 meet" in printed
    assert "crowd: 2 events, pooled precision 1.000, recall 0.850 (tp 170, fp 0, fn 30)" in printed
    assert "appearances found +3 in all, fewer on 1 of 2 events, more on 1" in printed
