"""The quick fault drills of bench/drills (bad input, kill -9 mid-batch, flood), at CI scale.

They start their own throwaway installations (gunicorn + qcluster on free
127.0.0.1 ports) in parallel, so this test needs no database fixture.
"""

from __future__ import annotations

import pytest

from bench.drills.run_quick import QUICK, run_all

pytestmark = pytest.mark.slow


def test_quick_drills_pass() -> None:
    results = run_all(timeout=240)
    failed = {name: output for name, (code, output) in results.items() if code != 0}
    report = "\n\n".join(f"--- {name}\n{output[-4000:]}" for name, output in failed.items())
    assert set(results) == set(QUICK)
    assert not failed, f"drills failed: {', '.join(failed)}\n{report}"
