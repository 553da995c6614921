"""One line per finished trial: trial n of N, result, best so far, elapsed and remaining time."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from nas._records import TrialRecord


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def human(n: float) -> str:
    """12345 -> '12.3k'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.done_here = 0

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def trial(self, record: TrialRecord, finished: int, best: TrialRecord | None) -> None:
        self.done_here += 1
        elapsed = time.perf_counter() - self.start
        remaining = elapsed / self.done_here * max(0, self.total - finished)
        m = record.metrics
        if record.state == "complete":
            scores = f"val {record.value:.4f} test {m['test_accuracy']:.4f}" if "test_accuracy" in m else f"score {record.value:.4g}"
            result = f"{scores} {human(m.get('params', 0))} params {m.get('seconds', 0):.1f}s"
        else:
            result = f"{record.state}: {record.reason or ''}"[:70]
        if record.parent is not None:
            result += f" | from #{record.parent}" + (f" ({m['morphism']})" if "morphism" in m else "")
        best_text = f"best {best.value:.4f} (#{best.number})" if best is not None and best.value is not None else "best -"
        self.say(f"trial {finished:>3}/{self.total} #{record.number:<3} {record.arch.key[:8]} | {result} | {best_text} | "
                 f"elapsed {_clock(elapsed)} left ~{_clock(remaining)}")
