"""One line per finished trial: trial n of N, result, best so far, elapsed and remaining time."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from nas.core.records import TrialRecord, TrialState
from nas.engine.callbacks import Callback

if TYPE_CHECKING:
    from nas.engine.loop import SearchLoop

def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def human(n: float) -> str:
    """12345 -> '12.3k'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


def remaining(elapsed: float, done_here: int, trials_left: int | None, time_left: float | None) -> float | None:
    """Seconds left: the trials still to run at this process's pace, capped by the time budget
    (whichever ends the search first); ``None`` when neither is known."""
    by_trials = elapsed / done_here * max(0, trials_left) if trials_left is not None and done_here else None
    options = [t for t in (by_trials, time_left) if t is not None]
    return max(0.0, min(options)) if options else None


def result_text(record: TrialRecord) -> str:
    """``val 0.9800 test 0.9711 12.3k params 4.1s``; what was measured, nothing invented (a lookup has
    no parameter count, and its microseconds are no cost worth a column)."""
    m = record.metrics
    if record.state is TrialState.COMPLETE:
        text = f"val {record.value:.4f} test {m['test_accuracy']:.4f}" if "test_accuracy" in m else f"score {record.value:.4g}"
        if "params" in m:
            text += f" {human(m['params'])} params"
        if record.cost is not None and record.cost >= 0.05:
            text += f" {record.cost:.1f}s"
    else:
        text = f"{record.state}: {record.reason or ''}"[:70]
    if record.parent is not None:
        inh = record.inheritance
        text += f" | from #{record.parent}" + (f" ({inh.morphism})" if inh is not None and inh.morphism else "")
    return text


class ProgressCallback(Callback):
    """Prints the search's messages and a line per finished trial to ``stream`` (stdout)."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, prefix: str = "", parallel: int = 1) -> None:
        self.enabled = enabled
        self.stream = stream
        self.prefix = prefix  # a worker's tag, e.g. "[w1] "
        self.parallel = max(1, parallel)  # workers sharing the budget: the trials left are theirs together
        self.done_here = 0
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        if self.enabled:
            print(self.prefix + text, file=self.stream or sys.stdout, flush=True)

    def on_search_start(self, search: SearchLoop) -> None:
        super().on_search_start(search)
        self.start = time.perf_counter()

    def on_message(self, text: str) -> None:
        self.say(text)

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        self.done_here += 1
        search = self.search
        finished = search.store.finished_count()
        total = search.budget.trials if search.budget is not None else None
        elapsed = time.perf_counter() - self.start
        time_left = search.deadline - time.perf_counter() if search.deadline is not None else None
        left = remaining(elapsed, self.done_here * self.parallel, total - finished if total is not None else None, time_left)
        best = search.store.best()
        best_text = f"best {best.value:.4f} (#{best.number})" if best is not None and best.value is not None else "best -"
        count = f"{finished:>3}/{total}" if total is not None else f"{finished:>3}"
        self.say(f"trial {count} #{record.number:<3} {record.arch.key[:8]} | {result_text(record)} | {best_text} | "
                 f"elapsed {clock(elapsed)}" + (f" left ~{clock(left)}" if left is not None else ""))
