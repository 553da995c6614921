"""The table estimator: looks results up instead of training (tabular benchmarks, cached results, surrogates)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Union

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, TrialFailed
from nas.estimators.base import Estimator, Evaluation, Report, accepted, pruned
from nas.core.space import SearchSpace

#: A table entry: a bare score, or a mapping with the score under ``metric`` and optionally
#: ``curve`` (per-epoch values, reported like training would) and ``seconds`` (what training cost).
Entry = Union[float, Mapping[str, Any]]
Table = Union[Mapping[str, Entry], Callable[[Architecture], Entry]]


class TableEstimator(Estimator):
    """Scores an architecture by looking it up in ``table``: a mapping or a function.

    A mapping is keyed by the space's text form (``space.format(sample)``, e.g. NAS-Bench-201's
    ``|nor_conv_3x3~0|+|...``) or by the canonical key; a function takes the
    :class:`~nas.Architecture`. Each entry is a number (the score) or a mapping holding the score
    under ``metric`` and optionally a per-epoch ``curve`` and a cost in ``seconds``. ``key_of`` maps a
    sample to the mapping's key instead (a benchmark's own hash of the architecture).
    :func:`nas.estimators.table_file.table_from_file` reads the table from a csv, json, parquet or pickle file.

    The curve goes through the same ``report`` path as training, so Optuna's pruners stop
    lookups exactly where they would stop training; the recorded ``seconds`` is what training
    would have cost (scaled by the fraction of the curve run when pruned). An architecture missing
    from the table fails its trial with that reason; the search goes on.

        table = {"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|": 94.37}
        nas.search(space="cell_nb201", strategy="evolution", estimator=nas.TableEstimator(table), trials=50)
    """

    needs_data = False
    cheap = True

    def __init__(self, table: Table, *, space: SearchSpace | None = None, metric: str = "score",
                 seconds: float | None = None, name: str = "table",
                 key_of: Callable[[Mapping[str, Any]], Any] | None = None) -> None:
        if not (isinstance(table, Mapping) or callable(table)):
            raise ConfigError(f"estimator '{name}': `table` must be a mapping from architecture to result, or a function of "
                              f"the architecture, but got {type(table).__name__}.")
        if seconds is not None and not seconds >= 0:
            raise ConfigError(f"estimator '{name}': `seconds >= 0` must hold (the cost recorded per lookup), but got {seconds!r}.")
        if key_of is not None and not isinstance(table, Mapping):
            raise ConfigError(f"estimator '{name}': `key_of` maps a sample to a key of a table mapping, but `table` is a function.")
        self.table, self.space, self.metric, self.seconds, self.name = table, space, metric, seconds, name
        self.key_of = key_of
        self.score_metric = metric

    def describe(self) -> dict[str, Any]:
        return {"estimator": self.name, "metric": self.metric}

    def recorded_metrics(self) -> frozenset[str] | None:
        """The first entry's numeric columns and the score (a table function's entries are unknown until looked up)."""
        if not isinstance(self.table, Mapping) or not self.table:
            return None
        entry = next(iter(self.table.values()))
        columns = {k for k, v in entry.items() if k != "curve" and isinstance(v, (int, float))} if isinstance(entry, Mapping) else set()
        return frozenset(columns | {self.metric} | ({"seconds"} if self.seconds is not None else set()))

    def lookup(self, arch: Architecture) -> Entry:
        """The raw entry for ``arch``; raises :class:`TrialFailed` when the table has none."""
        if not isinstance(self.table, Mapping):
            entry = self.table(arch)
            if entry is None:
                raise TrialFailed(f"the table function returned no result for {self._text(arch)}")
            return entry
        text = self._text(arch)
        if self.key_of is not None:
            key = self.key_of(dict(arch.sample))
            if key in self.table:
                return self.table[key]
            raise TrialFailed(f"architecture {text} is not in the table: its key {key!r} is not among {len(self.table)} entries")
        for key in (text, arch.key):
            if key in self.table:
                return self.table[key]
        raise TrialFailed(f"architecture {text} is not in the table ({len(self.table)} entries)")

    def _text(self, arch: Architecture) -> str:
        return self.space.format(arch.sample) if self.space is not None else arch.key

    def evaluate(self, arch: Architecture, report: Report) -> Evaluation:
        entry = self.lookup(arch)
        if not isinstance(entry, Mapping):
            entry = {self.metric: entry}
        if self.metric not in entry:
            raise TrialFailed(f"the table entry for {self._text(arch)} has no `{self.metric}`; it has {sorted(entry)}")
        score = float(entry[self.metric])
        if not math.isfinite(score):
            raise TrialFailed(f"the table gives {score} as `{self.metric}` for {self._text(arch)}")
        curve = [float(v) for v in entry.get("curve", ())]
        cost = entry.get("seconds", self.seconds)
        metrics: dict[str, Any] = {k: v for k, v in entry.items() if k != "curve" and isinstance(v, (int, float, str, bool))}
        metrics[self.metric] = score
        if self.metric != "score":
            metrics["selected_by"] = self.metric  # the leaderboard's title for the score column
        for step, value in enumerate(curve):
            if report(step, value):
                spent: dict[str, Any] = {"seconds": float(cost) * (step + 1) / len(curve)} if cost is not None else {}
                if accepted(report):  # complete on the epochs it ran (the loop records the pruner's value)
                    return Evaluation(score=value, metrics={**metrics, self.metric: value, "epochs": step + 1, **spent})
                raise pruned(f"pruned after epoch {step + 1} of the table's curve at {value:.4f}", epochs=step + 1, **spent)
        if curve:
            metrics["epochs"] = len(curve)
        if cost is not None:
            metrics["seconds"] = float(cost)
        return Evaluation(score=score, metrics=metrics)
