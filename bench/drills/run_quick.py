"""The quick drills, at CI scale, in parallel: bad_input, kill_worker --small, flood --small.

Each drill runs as its own process with its own throwaway installation; this
prints each drill's lines and a summary, and exits 1 if any drill failed.
tests/bench/test_drills.py runs it in the test suite (marked slow).

    .venv/bin/python bench/drills/run_quick.py [--timeout 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.harness import PYTHON, out
from testsupport.paths import REPO

QUICK = {
    "bad_input": ["bench/drills/bad_input.py"],
    "kill_worker": ["bench/drills/kill_worker.py", "--small"],
    "flood": ["bench/drills/flood.py", "--small"],
}


def run_all(timeout: float = 300.0) -> dict[str, tuple[int, str]]:
    """Start every quick drill at once; returns {name: (exit code, output)}."""
    started = {
        name: subprocess.Popen([PYTHON, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, argv in QUICK.items()
    }
    results = {}
    deadline = time.monotonic() + timeout
    for name, proc in started.items():
        try:
            output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            output += f"\nFAIL {name}: timed out after {timeout:.0f} s"
        results[name] = (proc.returncode if proc.returncode is not None else 1, output)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for all drills together")
    args = parser.parse_args()
    started = time.monotonic()
    results = run_all(args.timeout)
    for name, (_, output) in results.items():
        out(f"--- {name}")
        out("\n".join(line for line in output.splitlines() if not line.startswith("20")))
    out("")
    for name, (code, _) in results.items():
        out(f"{'PASS' if code == 0 else 'FAIL'} {name}")
    out(f"quick drills took {time.monotonic() - started:.0f} s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
