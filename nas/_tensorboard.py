"""TensorBoard event files: one run per trial (curves, HParams, architecture text) plus one for the search."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from nas._architecture import Architecture
from nas._records import TrialRecord
from nas._space import SearchSpace

# Metrics shown as HParams columns (sortable in TensorBoard's HParams table view).
HPARAM_METRICS = ("val_accuracy", "test_accuracy", "params", "macs", "seconds", "epochs", "inherited_fraction", "preservation_error")


def _hparam_value(value: Any, numeric: bool) -> Any:
    if value is None:
        return math.nan if numeric else "inactive"
    return value if isinstance(value, (int, float, str, bool)) else str(value)


class TrialLog:
    """The TensorBoard run of one trial (``tb/trial_NNNN``)."""

    def __init__(self, root: Path, number: int) -> None:
        self.writer = SummaryWriter(str(root / f"trial_{number:04d}"))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def finish(self, space: SearchSpace, record: TrialRecord, text: str) -> None:
        dims = space.dimensions()
        hparams = {
            name: _hparam_value(record.arch.sample.get(name), not hasattr(dim, "choices") or
                                all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in getattr(dim, "choices", ())))
            for name, dim in dims.items()
        }
        hparams["state"] = record.state
        hparams["parent"] = -1 if record.parent is None else record.parent  # -1: trained from scratch
        hparams["morphism"] = str(record.metrics.get("morphism", "-"))
        # fidelity columns: compare low- and full-fidelity trials side by side in the HParams view
        hparams.update({f"fidelity.{k}": _hparam_value(v, isinstance(v, (int, float))) for k, v in record.fidelity.items()})
        metrics = {f"hparam/{m}": float(record.metrics[m]) for m in HPARAM_METRICS if m in record.metrics}
        if not metrics:
            metrics = {"hparam/val_accuracy": math.nan}
        self.writer.add_text("architecture", text, 0)
        self.writer.add_hparams(hparams, metrics, run_name=".")
        self.writer.close()


class SearchLog:
    """The search-level run (``tb/search``): best-so-far and each trial's score against trial number."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writer = SummaryWriter(str(root / "search"))

    def trial(self, record: TrialRecord, best: TrialRecord | None) -> None:
        if record.value is not None:
            self.writer.add_scalar("search/trial_val_accuracy", record.value, record.number)
        if best is not None and best.value is not None:
            self.writer.add_scalar("search/best_val_accuracy", best.value, record.number)
            if "test_accuracy" in best.metrics:
                self.writer.add_scalar("search/best_test_accuracy", best.metrics["test_accuracy"], record.number)
        self.writer.flush()

    def lineage(self, text: str) -> None:
        """The parent-to-child tree (TensorBoard's text tab, ``search/lineage``)."""
        self.writer.add_text("search/lineage", text, 0)

    def close(self) -> None:
        self.writer.close()


def arch_text(space: SearchSpace, arch: Architecture, record: TrialRecord | None = None) -> str:
    """Markdown summary of an architecture for TensorBoard's text tab."""
    lines = [f"**{space.name}** key `{arch.key}`", "", f"`{space.format(arch.sample)}`", "", "| dimension | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in arch.sample.items()]
    if record is not None:
        lines += ["", f"state: {record.state}" + (f" ({record.reason})" if record.reason else "")]
        lines += [f"- {k}: {v}" for k, v in record.metrics.items()]
    return "\n".join(lines)
