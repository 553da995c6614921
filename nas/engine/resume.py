"""Trial checkpoints: a running trial's training state, saved as it trains, so that a lost trial's
re-run (see :class:`nas.store.Heartbeat`) resumes where the lost one stopped instead of from scratch.

One file per running trial (``trial-00012.pt`` in ``checkpoints/`` of the run directory, or the
folder ``checkpoints.store`` names, which workers on other machines must share), replaced atomically
at each save, so a worker killed mid-write leaves the previous one whole; removed when the trial
(and whatever it re-ran) finishes. What is in it is the estimator's business (the training estimator:
model, optimizer, random generators, the step), plus the curve so far.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError

CHECKPOINT_DIR = "checkpoints"


class TrialCheckpoints:
    """Saves, loads and removes trials' checkpoints under ``root``: every epoch (``every=0``) or at
    most every ``every`` seconds (the search's default, 30: a save of a small CNN costs some 7 ms)."""

    def __init__(self, root: str | Path, *, every: float = 0) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every < 0:
            raise ConfigError(f"`checkpoints.every` must be a number of seconds >= 0 (0 = every epoch; null = no checkpoints), "
                              f"but got {every!r}.")
        self.root, self.every = Path(root), float(every)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"`checkpoints.store` must be a folder that can be created and written, but {str(root)!r} failed: "
                              f"{exc}") from exc
        self._last: dict[int, float] = {}  # trial number -> when this process last saved it

    def path(self, number: int) -> Path:
        return self.root / f"trial-{number:05d}.pt"

    def due(self, number: int) -> bool:
        """Whether a save of trial ``number`` now keeps to ``every``: every offer when 0, else once
        ``every`` seconds have passed since the last save (since the first offer, for the first save:
        a trial shorter than that is never saved, and costs nothing)."""
        now = time.monotonic()
        if number not in self._last:
            self._last[number] = now
            return self.every == 0
        return now - self._last[number] >= self.every

    def save(self, number: int, state: Mapping[str, Any]) -> None:
        """Write ``state`` (tensors and plain values) for trial ``number``; the old file stays whole until replaced."""
        import torch

        path = self.path(number)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(dict(state), tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self._last[number] = time.monotonic()

    def load(self, number: int) -> dict[str, Any] | None:
        """Trial ``number``'s last checkpoint, or ``None`` when it has none (or it cannot be read)."""
        import torch

        path = self.path(number)
        if not path.is_file():
            return None
        try:
            return dict(torch.load(path, map_location="cpu", weights_only=False))
        except Exception:  # a torn or foreign file: resume from scratch rather than fail the trial
            return None

    def remove(self, *numbers: int) -> None:
        for number in numbers:
            self._last.pop(number, None)
            self.path(number).unlink(missing_ok=True)


def checkpoints_from_config(node: Mapping[str, Any] | None, run_dir: Path) -> TrialCheckpoints | None:
    """``checkpoints: {every, store}`` as a :class:`TrialCheckpoints`; ``every: null`` (or no node): none."""
    node = dict(node or {})
    unknown = sorted(set(node) - {"every", "store"})
    if unknown:
        raise ConfigError(f"`checkpoints` takes `every` (seconds; 0 = every epoch; null = none) and `store` (a folder), but got "
                          f"unknown key(s) {', '.join(unknown)}.")
    if node.get("every", 0) is None:
        return None
    return TrialCheckpoints(node.get("store") or run_dir / CHECKPOINT_DIR, every=node.get("every", 0))


#: What an estimator hands :meth:`nas.engine.loop.TrialReporter.checkpoint`: a function building the state (called only when due).
StateFactory = Callable[[], Mapping[str, Any]]
