"""Held-out composites scored together: each event's precision and recall, and the pooled figures.

One held-out event is a small sample: one stranger's group near a selfie
moves its precision by several points. This bench builds the held-out
composites of a range of seeds (bench/composite_event.py), scores each one
with ``manage.py evaluate_matching --live --json`` in a throwaway installation
(bench/harness.py's `Stack`),
``--jobs`` at a time, and prints:

- per event: appearances, true and false matches, misses, precision and
  recall; a default-mode event is marked when it meets the open-world bar
  (precision >= 0.98 and recall >= 0.95);
- per mode: the pooled precision and recall (from the summed counts), and how
  many default events meet the bar;
- with ``--against CHECKOUT``: the same events scored by another checkout of
  the project (for example main before issue 17, in a git worktree), run
  with this checkout's Python, and per event the difference in appearances
  found, with its sum per mode.

The composites are kept in ``--work`` and reused. A checkout with no
uncommitted change keeps its scores there too, by commit, so a second run
against the same baseline scores only what is new.

    .venv/bin/python bench/heldout_scores.py --default 31-33 --crowd 27-29
    git worktree add /tmp/before 5875a3f
    .venv/bin/python bench/heldout_scores.py --default 31-33 --crowd 27-29 --against /tmp/before

Score new seeds once, with the final settings: a seed whose score has been
looked at no longer counts as held out for a tuning decision.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import REPO, Stack, out
from processing.evaluation import score as score_counts

BAR_PRECISION = 0.98
BAR_RECALL = 0.95


@dataclass(frozen=True)
class Event:
    """One held-out composite: its mode ("default" or "crowd") and seed."""

    mode: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.mode}-{self.seed}"


@dataclass(frozen=True)
class Score:
    """What evaluate_matching found on one event, or why it could not score it."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    error: str = ""

    @property
    def precision(self) -> float:
        return score_counts(self.tp, self.fp, self.fn).precision

    @property
    def recall(self) -> float:
        return score_counts(self.tp, self.fp, self.fn).recall

    @property
    def meets_bar(self) -> bool:
        return not self.error and self.precision >= BAR_PRECISION and self.recall >= BAR_RECALL


def seeds(spec: str) -> list[int]:
    """Seeds from "31-33,40": ranges and single numbers, comma-separated."""
    found: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        first, _, last = part.partition("-")
        found.extend(range(int(first), int(last or first) + 1))
    return found


def build(event: Event, work: Path) -> Path:
    """The event's composite folder, built once."""
    folder = work / "events" / event.name
    if not (folder / "manifest.json").is_file():
        mode = ["--mode", "crowd"] if event.mode == "crowd" else []
        command = [sys.executable, "-m", "bench.composite_event", str(folder), "--split", "heldout", "--seed"]
        subprocess.run([*command, str(event.seed), *mode], cwd=REPO, check=True, capture_output=True)
    return folder


def commit_of(checkout: Path) -> str | None:
    """The checkout's commit, or None when it has uncommitted changes (its scores are then not kept)."""
    status = subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True, text=True)
    if status.returncode != 0 or status.stdout.strip():
        return None
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True)
    return head.stdout.strip()


def parse(report: dict[str, Any]) -> Score:
    """The counts of evaluate_matching's JSON report (its first threshold: the current setting)."""
    overall = report["results"][0]["overall"]
    return Score(
        tp=int(overall["true_positives"]), fp=int(overall["false_positives"]), fn=int(overall["false_negatives"])
    )


def score(event: Event, folder: Path, checkout: Path, work: Path) -> Score:
    """Score one event with `checkout`'s code, in a throwaway installation (or read the kept score)."""
    commit = commit_of(checkout)
    kept = work / "scores" / f"{commit}-{event.name}.json" if commit else None
    if kept is not None and kept.is_file():
        return parse(json.loads(kept.read_text()))
    with Stack(checkout=checkout) as stack:
        try:
            stack.prepare()
            # The JSON document is the command's whole standard output.
            output = stack.manage("evaluate_matching", str(folder), "--live", "--json", LOG_LEVEL="WARNING")
        except RuntimeError as error:
            lines = str(error).strip().splitlines()
            return Score(error=lines[-1] if lines else "evaluate_matching failed")
    report = json.loads(output)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(report))
    return parse(report)


def score_all(events: list[Event], folders: dict[Event, Path], checkout: Path, work: Path, jobs: int) -> list[Score]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda event: score(event, folders[event], checkout, work), events))


def line(event: Event, now: Score, before: Score | None) -> str:
    if now.error:
        return f"{event.name:<12} failed: {now.error}"
    text = (
        f"{event.name:<12} {now.tp + now.fn:>4} appearances  tp {now.tp:>4}  fp {now.fp:>3}  fn {now.fn:>4}"
        f"  precision {now.precision:.3f}  recall {now.recall:.3f}"
    )
    if event.mode == "default":
        text += "  bar met" if now.meets_bar else "  bar missed"
    if before is not None:
        text += (
            f"  | against: {before.precision:.3f} / {before.recall:.3f}, {now.tp - before.tp:+d} found"
            if not before.error
            else f"  | against: failed ({before.error})"
        )
    return text


def pooled(mode: str, scored: list[tuple[Event, Score, Score | None]]) -> None:
    rows = [(event, now, before) for event, now, before in scored if event.mode == mode and not now.error]
    if not rows:
        return
    total = Score(tp=sum(r[1].tp for r in rows), fp=sum(r[1].fp for r in rows), fn=sum(r[1].fn for r in rows))
    text = (
        f"{mode}: {len(rows)} events, pooled precision {total.precision:.3f}, recall {total.recall:.3f}"
        f" (tp {total.tp}, fp {total.fp}, fn {total.fn})"
    )
    if mode == "default":
        met = sum(1 for _, now, _ in rows if now.meets_bar)
        text += f"; {met} of {len(rows)} meet precision >= {BAR_PRECISION} and recall >= {BAR_RECALL}"
    out(text)
    compared = [(now, before) for _, now, before in rows if before is not None and not before.error]
    if compared:
        base = Score(
            tp=sum(b.tp for _, b in compared), fp=sum(b.fp for _, b in compared), fn=sum(b.fn for _, b in compared)
        )
        gains = [now.tp - before.tp for now, before in compared]
        out(
            f"  against: pooled precision {base.precision:.3f}, recall {base.recall:.3f};"
            f" appearances found {sum(gains):+d} in all, fewer on {sum(1 for g in gains if g < 0)}"
            f" of {len(gains)} events, more on {sum(1 for g in gains if g > 0)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--default", default="", help="held-out seeds of default-mode events, as 31-33,40")
    parser.add_argument("--crowd", default="", help="held-out seeds of crowd-mode events")
    parser.add_argument("--against", type=Path, help="another checkout of the project to score the same events with")
    parser.add_argument("--jobs", type=int, default=2, help="events scored at once (default 2)")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "photoevent-heldout",
        help="where the composites and kept scores live",
    )
    args = parser.parse_args()
    events = [Event("default", s) for s in seeds(args.default)] + [Event("crowd", s) for s in seeds(args.crowd)]
    if not events:
        parser.error("give --default or --crowd seeds")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        folders = dict(zip(events, pool.map(lambda event: build(event, args.work), events), strict=True))
    now = score_all(events, folders, REPO, args.work, args.jobs)
    before: list[Score | None] = [None] * len(events)
    if args.against:
        before = list(score_all(events, folders, args.against.resolve(), args.work, args.jobs))
    scored = list(zip(events, now, before, strict=True))
    for event, current, baseline in scored:
        out(line(event, current, baseline))
    for mode in ("default", "crowd"):
        pooled(mode, scored)
    return 1 if any(current.error for current in now) else 0


if __name__ == "__main__":
    sys.exit(main())
