"""Fidelity check: does a cheap estimate rank architectures like the full one, on *your* task?

Train the same sample of architectures at several fidelities, compare each fidelity's ranking with the
reference (highest) one by Kendall tau and Spearman rho with bootstrap intervals, and recommend the
cheapest fidelity whose rank correlation clears a declared threshold::

    report = nas.contrib.fidelity.check_fidelities(
        space="macro_chain", dataset="digits", samples=30, reference="full",
        fidelities={"full": {"epochs": 20}, "3 epochs": {"epochs": 3}, "half width": {"width_multiplier": 0.5}})
    print(report.table()); report.recommended  # -> "3 epochs" (or None)

``experiments/fidelity_check.py`` is the Hydra app around it (stdout, Markdown, TensorBoard).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, unknown_name_message
from nas.core.space import SearchSpace
from nas.core.records import Proposal
from nas.engine.loop import SearchLoop
from nas.store.memory import MemoryStore


@dataclass(frozen=True)
class Agreement:
    """Rank agreement of one fidelity with the reference, with bootstrap 95% intervals."""

    tau: float
    tau_interval: tuple[float, float]
    rho: float
    rho_interval: tuple[float, float]
    pairs: int


def rank_agreement(low: Sequence[float], high: Sequence[float], *, bootstrap: int = 1000, seed: int | None = 0) -> Agreement:
    """Kendall tau-b and Spearman rho of ``low`` against ``high`` (paired scores, one per architecture),
    each with a percentile bootstrap interval over architectures. Pairs with a non-finite side are dropped."""
    a, b = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"`low` and `high` must be paired 1-d sequences, but got shapes {a.shape} and {b.shape}.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3:
        return Agreement(math.nan, (math.nan, math.nan), math.nan, (math.nan, math.nan), len(a))
    draws = np.random.default_rng(seed).integers(0, len(a), size=(bootstrap, len(a)))
    tau, rho = (_correlation(test, a, b) for test in (stats.kendalltau, stats.spearmanr))
    taus, rhos = (np.array([_correlation(test, a[i], b[i]) for i in draws]) for test in (stats.kendalltau, stats.spearmanr))
    return Agreement(tau, _interval(taus), rho, _interval(rhos), len(a))


def _correlation(test: Callable[..., Any], a: np.ndarray, b: np.ndarray) -> float:
    """``test`` (Kendall or Spearman) of a against b; both constant = the same (non-)ranking, 1;
    one side constant ranks nothing, 0 (scipy says nan)."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0
    value = test(a, b).statistic
    return float(value) if np.isfinite(value) else 0.0


def _interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return (math.nan, math.nan)
    low, high = np.percentile(finite, [2.5, 97.5])
    return (float(low), float(high))


#: Below this many architectures compared (both scores finite) a bootstrap interval of Kendall tau cannot be
#: estimated (resamples of 3 to 9 points are mostly ties or repeats: 3 architectures gave "1.000 [1.00, 1.00]"),
#: so nothing is recommended.
MIN_ARCHITECTURES = 10


@dataclass
class FidelityReport:
    """Scores of every architecture at every fidelity, their cost, and the verdict."""

    reference: str
    threshold: float
    architectures: list[Architecture]
    scores: dict[str, list[float]]           # fidelity -> score per architecture (nan = failed)
    seconds: dict[str, list[float]]          # fidelity -> training seconds per architecture
    settings: dict[str, dict[str, Any]]      # fidelity -> estimator overrides
    agreement: dict[str, Agreement] = field(default_factory=dict)
    conservative: bool = False

    @property
    def cost(self) -> dict[str, float]:
        """Mean seconds per architecture at each fidelity."""
        return {name: float(np.nanmean(s)) if len(s) else math.nan for name, s in self.seconds.items()}

    @property
    def compared(self) -> int:
        """The fewest architectures any fidelity was compared with the reference on (both scores finite)."""
        return min((ag.pairs for ag in self.agreement.values()), default=0)

    @property
    def recommended(self) -> str | None:
        """The cheapest fidelity whose Kendall tau (its interval's lower end if ``conservative``) clears
        the threshold; the reference itself qualifies. ``None`` when nothing was measured, or when fewer than
        :data:`MIN_ARCHITECTURES` were compared (no interval to judge by)."""
        if self.compared < MIN_ARCHITECTURES:
            return None
        cost = self.cost
        passing = [name for name in self.scores if name == self.reference or self._clears(name)]
        return min(passing, key=lambda n: cost[n]) if passing else None

    def table(self) -> str:
        """Markdown: one row per fidelity, cheapest first."""
        cost = self.cost
        ref_cost = cost[self.reference]
        rows = ["| fidelity | settings | Kendall tau [95% CI] | Spearman rho [95% CI] | seconds per arch | cost vs reference | clears |",
                "|---|---|---|---|---:|---:|:---:|"]
        for name in sorted(self.scores, key=lambda n: cost[n]):
            ag = self.agreement[name]
            settings = ", ".join(f"{k}={v}" for k, v in self.settings[name].items()) or "-"
            mark = "reference" if name == self.reference else ("yes" if self._clears(name) else "no")
            mark += " (recommended)" if name == self.recommended else ""
            rows.append(f"| {name} | {settings} | {ag.tau:.3f} [{ag.tau_interval[0]:.2f}, {ag.tau_interval[1]:.2f}] | "
                        f"{ag.rho:.3f} [{ag.rho_interval[0]:.2f}, {ag.rho_interval[1]:.2f}] | {cost[name]:.2f} | "
                        f"{cost[name] / ref_cost:.2f}x | {mark} |")
        return "\n".join(rows)

    def _clears(self, name: str) -> bool:
        ag = self.agreement[name]
        value = ag.tau_interval[0] if self.conservative else ag.tau
        return math.isfinite(value) and value >= self.threshold

    def verdict(self) -> str:
        best = self.recommended
        what = "the lower end of its 95% interval of Kendall tau" if self.conservative else "Kendall tau"
        if 0 < self.compared < MIN_ARCHITECTURES:
            return (f"No recommendation: {self.compared} architectures compared, and an interval of Kendall tau cannot be "
                    f"estimated from fewer than {MIN_ARCHITECTURES}; run with samples >= {MIN_ARCHITECTURES}.")
        if best is None:
            return "No fidelity could be compared (every training failed)."
        if best == self.reference:
            return (f"No cheaper fidelity reaches {what} >= {self.threshold} against '{self.reference}' on this task: "
                    f"keep the reference.")
        ratio = self.cost[best] / self.cost[self.reference]
        return (f"Recommended: '{best}' ({self.agreement[best].tau:.3f} Kendall tau against '{self.reference}', "
                f"{ratio:.2f}x its cost): the cheapest fidelity whose {what} is >= {self.threshold}.")


def sample_architectures(space: SearchSpace, count: int, *, seed: int | None = 0) -> list[Architecture]:
    """``count`` architectures with distinct keys, drawn uniformly (fewer if the space is smaller)."""
    rng = np.random.default_rng(seed)
    seen: dict[str, Architecture] = {}
    for _ in range(count * 50):
        arch = space.architecture(space.sample(rng))
        seen.setdefault(arch.key, arch)
        if len(seen) == count:
            break
    return list(seen.values())


def check_fidelities(
    *,
    space: str | SearchSpace,
    dataset: str | Any,
    fidelities: Mapping[str, Mapping[str, Any]],
    reference: str,
    samples: int = 30,
    threshold: float = 0.6,
    conservative: bool = False,
    estimator: Mapping[str, Any] | None = None,
    bootstrap: int = 1000,
    seed: int | None = 0,
    on_result: Callable[[str, int, Architecture, float, float], None] | None = None,
    on_architecture: Callable[[FidelityReport], None] | None = None,
) -> FidelityReport:
    """Train ``samples`` architectures of ``space`` at every fidelity and compare rankings with ``reference``.

    ``fidelities`` maps a name to training-estimator settings that differ from ``estimator`` (the base
    settings, default ``configs/estimator/train.yaml``), e.g. ``{"epochs": 3}`` or ``{"data_fraction": 0.25}``.
    ``on_result(fidelity, index, arch, score, seconds)`` is called after each training (progress, logging);
    ``on_architecture(report)`` after each architecture has trained at every fidelity, with the report of those
    so far (its intervals from 200 resamples), so that an interrupted check leaves what it measured.
    """
    from nas._config import compose, get_space, instantiate
    from nas.datasets import as_splits

    if reference not in fidelities:
        raise ConfigError("fidelity check: `reference` must name one of the fidelities; " +
                          unknown_name_message("fidelity", reference, list(fidelities)))
    if not 0 < threshold <= 1:
        raise ConfigError(f"fidelity check: `0 < threshold <= 1` must hold, but got threshold={threshold}.")
    if samples < 3:
        raise ConfigError(f"fidelity check: `samples >= 3` must hold (a rank correlation needs three), but got samples={samples}.")
    space_obj = get_space(space) if isinstance(space, str) else space
    if isinstance(dataset, str):
        data = as_splits(instantiate(compose([f"dataset={dataset}"]).dataset, kind=f"dataset '{dataset}'"))
    else:
        data = as_splits(dataset() if callable(dataset) else dataset)
    base = dict(estimator) if estimator is not None else dict(compose([]).estimator)
    # Every estimator is built (and its settings checked) before the first architecture trains.
    built = {}
    for name, settings in fidelities.items():
        try:
            built[name] = instantiate({**base, **dict(settings), "_partial_": False}, kind=f"fidelity '{name}'",
                                      space=space_obj, dataset=data, seed=seed)
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(message if message.startswith("fidelity") else f"fidelity '{name}': {message}") from exc
    archs = sample_architectures(space_obj, samples, seed=seed)
    # One search loop per fidelity, on an in-process store, advanced together: each architecture is
    # trained at every fidelity before the next one, so machine drift affects every fidelity alike.
    loops = {name: SearchLoop(space=space_obj, strategy=None, estimator=est, store=MemoryStore()) for name, est in built.items()}
    scores: dict[str, list[float]] = {name: [] for name in fidelities}
    seconds: dict[str, list[float]] = {name: [] for name in fidelities}
    for index, arch in enumerate(archs):
        for name, loop in loops.items():
            record = loop.step(proposal=Proposal(arch.sample))
            if not record.completed:  # a failing architecture is left out of that fidelity's ranking
                print(f"  {name} #{index} failed: {record.reason}", file=sys.stderr)
            score, spent = (float(record.value) if record.completed else math.nan), float(record.cost or 0.0)  # type: ignore[arg-type]
            scores[name].append(score)
            seconds[name].append(spent)
            if on_result is not None:
                on_result(name, index, arch, score, spent)
        if on_architecture is not None and index + 1 < len(archs):
            on_architecture(_report(archs[:index + 1], scores, seconds, fidelities, reference, threshold, conservative, 200, seed))
    return _report(archs, scores, seconds, fidelities, reference, threshold, conservative, bootstrap, seed)


def _report(archs: list[Architecture], scores: dict[str, list[float]], seconds: dict[str, list[float]],
            fidelities: Mapping[str, Mapping[str, Any]], reference: str, threshold: float, conservative: bool, bootstrap: int,
            seed: int | None) -> FidelityReport:
    report = FidelityReport(reference=reference, threshold=threshold, architectures=list(archs),
                            scores={k: list(v) for k, v in scores.items()}, seconds={k: list(v) for k, v in seconds.items()},
                            settings={k: dict(v) for k, v in fidelities.items()}, conservative=conservative)
    report.agreement = {name: rank_agreement(scores[name], scores[reference], bootstrap=bootstrap, seed=seed) for name in fidelities}
    return report
