"""Drift detectors on a stream of (input, prediction, label when known), each replayed over the whole stream:
a trace of its statistic and its alarms, each naming the detector, the position, the statistic and the
threshold.

On the error stream (labels known): DDM and EDDM (Gama et al. 2004, Baena-Garcia et al. 2006) and ADWIN on
the error rate (Bifet and Gavalda 2007) are river's; the linear four rates test (LFR, Wang and Abraham
2015) is ours. On the inputs, label-free: HDDDM (Ditzler and Polikar 2011: the Hellinger distance between
each batch's feature histograms and the reference's, against an adaptive threshold), and KS and PSI per
feature against the reference (scipy's two-sample KS test with a Bonferroni correction; the population
stability index over the reference's deciles). On the classifier's confidence, label-free: MD3 (Sethi and
Kantardzic 2015: the share of inputs inside the margin, against the reference's, in reference standard
deviations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.core.errors import ConfigError

__all__ = ["Alarm", "DETECTORS", "adwin", "ddm", "eddm", "hdddm", "hellinger", "ks_psi", "lfr", "md3", "psi"]

DETECTORS = ("ddm", "eddm", "adwin", "lfr", "hdddm", "md3", "ks", "psi")


@dataclass(frozen=True)
class Alarm:
    """One alarm: ``detector`` at stream ``position`` (the example it fired on, or the last of its batch)."""

    detector: str
    position: int
    statistic: float
    threshold: float
    what: str  # what the statistic is, and the rule that fired

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.detector} at {self.position}: {self.what} ({self.statistic:.4g} against {self.threshold:.4g})"


def _river() -> Any:
    try:
        from river import drift
    except ImportError as exc:  # the optional extra
        raise ConfigError("DDM, EDDM and ADWIN are river's: pip install 'nas[audit]' (or river), or leave them out of `detectors`.") from exc
    return drift


def ddm(errors: np.ndarray, positions: np.ndarray) -> tuple[list[tuple[int, float]], list[Alarm]]:
    """river's DDM on the error indicators (``positions``: where each sits in the stream); the trace is its
    running error rate ``p`` and the alarm's threshold ``p_min + 3 s_min``."""
    detector = _river().binary.DDM()
    trace, alarms = [], []
    for position, error in zip(positions, errors):
        detector.update(bool(error))
        p, s_min, p_min = detector._p.get(), detector._s_min, detector._p_min  # noqa: SLF001 - what the alarm reports
        trace.append((int(position), float(p)))
        if detector.drift_detected:
            alarms.append(Alarm("ddm", int(position), float(p), float(p_min + 3 * s_min), "error rate p + s above p_min + 3 s_min"))
    return trace, alarms


def eddm(errors: np.ndarray, positions: np.ndarray) -> tuple[list[tuple[int, float]], list[Alarm]]:
    """river's EDDM: the distance between errors shrinks; its alarm fires below ``beta`` (0.9) of its maximum."""
    detector = _river().binary.EDDM()
    trace, alarms, last = [], [], None
    gaps: list[int] = []
    for position, error in zip(positions, errors):
        detector.update(bool(error))
        if error:
            if last is not None:
                gaps.append(int(position) - last)
            last = int(position)
        mean_gap = float(np.mean(gaps[-30:])) if gaps else float("nan")
        trace.append((int(position), mean_gap))
        if detector.drift_detected:
            alarms.append(Alarm("eddm", int(position), mean_gap, detector.beta, "mean distance between errors (last 30), "
                                "(mean + 2 std) / max fell below beta"))
            gaps = []
    return trace, alarms


def adwin(errors: np.ndarray, positions: np.ndarray, *, delta: float = 0.002) -> tuple[list[tuple[int, float]], list[Alarm]]:
    """river's ADWIN on the error rate: its adaptive window's mean; an alarm when two sub-windows differ (``delta``)."""
    detector = _river().ADWIN(delta=delta)
    trace, alarms = [], []
    for position, error in zip(positions, errors):
        before = detector.estimation
        detector.update(float(error))
        trace.append((int(position), float(detector.estimation)))
        if detector.drift_detected:
            alarms.append(Alarm("adwin", int(position), float(detector.estimation), float(before),
                                f"error rate of the shrunk window against the window before (delta {delta:g})"))
    return trace, alarms


def lfr(truth: np.ndarray, pred: np.ndarray, positions: np.ndarray, *, positive: int = 1, decay: float = 0.9,
        warn: float = 0.01, detect: float = 0.0001, burn_in: int = 50) -> tuple[list[tuple[int, float]], list[Alarm]]:
    """Linear four rates, after Wang and Abraham (2015): TPR, TNR, PPV and NPV of ``positive`` against the rest as
    exponentially weighted rates (``decay``), each tested against its rate so far; an alarm when one leaves its
    bounds at significance ``detect``, then the rates restart. Their bounds come from a Monte Carlo table; ours
    are the binomial tails at the weighted rate's effective size, ``(1 + decay) / (1 - decay)`` updates (the size
    whose binomial has the weighted rate's variance). The trace is the smallest of the four tail probabilities."""
    from scipy.stats import binom

    trace, alarms = [], []
    state = _lfr_state()
    for position, t, p in zip(positions, truth, pred):
        y, yhat = int(t == positive), int(p == positive)
        cell = {(1, 1): "tp", (0, 0): "tn", (0, 1): "fp", (1, 0): "fn"}[(y, yhat)]
        state["counts"][cell] += 1
        state["n"] += 1
        smallest = 1.0
        for rate, (hit, miss) in _LFR_RATES.items():
            if cell not in (hit, miss):
                continue
            state["r"][rate] = decay * state["r"][rate] + (1 - decay) * (cell == hit)
            n = state["counts"][hit] + state["counts"][miss]
            if n < 2 or state["n"] < burn_in:
                continue
            p_hat = state["counts"][hit] / n
            n_eff = min(n, int(round((1 + decay) / (1 - decay))))  # the weighted rate's variance is p(1-p)(1-decay)/(1+decay)
            observed = state["r"][rate] * n_eff
            tail = min(binom.cdf(observed, n_eff, p_hat), binom.sf(observed - 1, n_eff, p_hat))
            smallest = min(smallest, float(tail))
        trace.append((int(position), smallest))
        if smallest < detect:
            alarms.append(Alarm("lfr", int(position), smallest, detect, "smallest tail probability of TPR, TNR, PPV, NPV"))
            state = _lfr_state()
    return trace, alarms


_LFR_RATES = {"tpr": ("tp", "fn"), "tnr": ("tn", "fp"), "ppv": ("tp", "fp"), "npv": ("tn", "fn")}


def _lfr_state() -> dict[str, Any]:
    return {"counts": {"tp": 1, "tn": 1, "fp": 1, "fn": 1}, "r": {k: 0.5 for k in _LFR_RATES}, "n": 0}


def hellinger(a: np.ndarray, b: np.ndarray, edges: Sequence[np.ndarray]) -> float:
    """HDDDM's distance (their eq. 1): ``sqrt(sum_i (sqrt(p_i) - sqrt(q_i)) ** 2)`` between the normalised histograms
    of ``a`` and ``b`` (rows are examples) on ``edges`` (bin edges per feature), averaged over the features; 0 for
    equal histograms, sqrt(2) for disjoint ones."""
    distances = []
    for f, bins in enumerate(edges):
        p = np.histogram(a[:, f], bins=bins)[0].astype(float)
        q = np.histogram(b[:, f], bins=bins)[0].astype(float)
        p, q = p / max(p.sum(), 1), q / max(q.sum(), 1)
        distances.append(math.sqrt(float(((np.sqrt(p) - np.sqrt(q)) ** 2).sum())))
    return float(np.mean(distances))


def hdddm(reference: np.ndarray, stream: np.ndarray, *, batch: int = 250, gamma: float = 3.0) -> tuple[list[tuple[int, float]], list[Alarm]]:
    """HDDDM (Ditzler and Polikar 2011): each batch's Hellinger distance to the reference (the distribution since the
    last change); an alarm when the change of that distance exceeds ``mean + gamma * std`` of the changes so far
    (their adaptive threshold), after which the reference becomes the new batch. Bins: sqrt(N) per feature.
    ``gamma``: 3 rather than their 1.5, which raised 2.1 false alarms per 10,000 examples on stationary
    4-feature streams (batches of 250) against 0.6 at 3, and detected a one-std shift of one feature no more often."""
    bins = max(2, int(math.sqrt(len(reference))))
    trace, alarms = [], []
    base = reference
    previous: float | None = None
    changes: list[float] = []
    for start in range(0, len(stream) - batch + 1, batch):
        chunk = stream[start:start + batch]
        both = np.concatenate([base, chunk])
        edges = [np.linspace(both[:, f].min(), both[:, f].max() + 1e-12, bins + 1) for f in range(both.shape[1])]
        distance = hellinger(base, chunk, edges)
        position = start + batch - 1
        trace.append((position, distance))
        if previous is not None:
            change = abs(distance - previous)
            if len(changes) >= 2:
                threshold = float(np.mean(changes) + gamma * np.std(changes, ddof=1))
                if change > threshold:
                    alarms.append(Alarm("hdddm", position, change, threshold, "change of the Hellinger distance to the reference, "
                                        f"above mean + {gamma:g} std of the changes so far"))
                    base, previous, changes = chunk, None, []
                    continue
            changes.append(change)
        base = np.concatenate([base, chunk])  # no change: the batch joins the distribution since the last one
        previous = distance
    return trace, alarms


def md3(reference_margin: np.ndarray, stream_margin: np.ndarray, *, threshold: float = 0.2, window: int = 250,
        sigmas: float = 3.0, seed: int = 0) -> tuple[list[tuple[int, float]], list[Alarm]]:
    """MD3: the margin density (share of inputs whose top-two probability gap is below ``threshold``) of each
    window against the reference's; an alarm when it is ``sigmas`` reference standard deviations away (the
    reference's spread from bootstrap windows of the same size)."""
    rng = np.random.default_rng(seed)
    inside = reference_margin < threshold
    expected = float(inside.mean())
    spread = float(np.std([inside[rng.integers(0, len(inside), window)].mean() for _ in range(200)])) or 1e-6
    trace, alarms = [], []
    for start in range(0, len(stream_margin) - window + 1, window):
        density = float((stream_margin[start:start + window] < threshold).mean())
        position = start + window - 1
        trace.append((position, density))
        if abs(density - expected) > sigmas * spread:
            alarms.append(Alarm("md3", position, density, expected + math.copysign(sigmas * spread, density - expected),
                                f"margin density (top-two gap < {threshold:g}) against the reference's {expected:.3f} +- {sigmas:g} std"))
    return trace, alarms


def psi(reference: np.ndarray, sample: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of one feature: ``sum((q - p) * ln(q / p))`` over the reference's deciles
    (shares floored at 1e-4 so an empty bin counts, as is usual)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.maximum(np.histogram(reference, edges)[0] / len(reference), 1e-4)
    q = np.maximum(np.histogram(sample, edges)[0] / max(len(sample), 1), 1e-4)
    return float(((q - p) * np.log(q / p)).sum())


def ks_psi(reference: np.ndarray, stream: np.ndarray, *, window: int = 250, alpha: float = 0.01,
           psi_threshold: float = 0.25) -> dict[str, tuple[list[tuple[int, float]], list[Alarm]]]:
    """Per window: the KS test of each feature against the reference (an alarm when the smallest p-value is below
    ``alpha`` over the number of features, Bonferroni's correction) and the largest PSI over the features (an
    alarm above ``psi_threshold``: 0.25 is the usual "significant shift")."""
    from scipy.stats import ks_2samp

    features = reference.shape[1]
    out: dict[str, tuple[list[tuple[int, float]], list[Alarm]]] = {"ks": ([], []), "psi": ([], [])}
    for start in range(0, len(stream) - window + 1, window):
        chunk = stream[start:start + window]
        position = start + window - 1
        p_values = [ks_2samp(reference[:, f], chunk[:, f]).pvalue for f in range(features)]
        worst = int(np.argmin(p_values))
        out["ks"][0].append((position, float(p_values[worst])))
        if p_values[worst] < alpha / features:
            out["ks"][1].append(Alarm("ks", position, float(p_values[worst]), alpha / features,
                                      f"smallest KS p-value of {features} features (feature {worst}), Bonferroni"))
        shifts = [psi(reference[:, f], chunk[:, f]) for f in range(features)]
        top = int(np.argmax(shifts))
        out["psi"][0].append((position, float(shifts[top])))
        if shifts[top] > psi_threshold:
            out["psi"][1].append(Alarm("psi", position, float(shifts[top]), psi_threshold, f"largest PSI of {features} features (feature {top})"))
    return out
