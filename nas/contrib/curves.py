"""Learning-curve extrapolation: from the first k points of a curve, the value it will reach at a later epoch.

    predictor = CurvePredictor(maximize=True, bounds=(0, 100), seed=0)
    p = predictor.predict(val_accs[:20], horizon=200)     # the value at epoch 200
    p.mean, p.std, p.prob_beats(91.0)

A weighted ensemble of parametric curve families in the spirit of Domhan, Springenberg and Hutter
(IJCAI 2015): each family is fitted by least squares within bounds (``scipy.optimize.leastsq`` on
logit-transformed parameters, about ten times faster than a bounded ``curve_fit``), the families
are weighted by BIC, and the spread comes from sampling each fit's parameter covariance plus the
observation noise, mixed over the families by weight. Where the families are too naive (curves
under a learning-rate schedule rise late, which no saturating family can know), :func:`calibrate`
corrects a prediction with the finished curves of the same study: ``experiments/lce_eval.py``
measures both on 200 real NAS-Bench-201 curves.

Families are small objects (:class:`Family`) registered in :data:`FAMILIES`; pass their names, or
your own :class:`Family` instances, as ``families=``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import leastsq

from nas.core.errors import ConfigError, unknown_name_message

__all__ = ["CALIBRATION_FEATURES", "DEFAULT_FAMILIES", "FAMILIES", "Calibration", "CurvePredictor", "Family", "Prediction", "calibrate",
           "fit_calibration"]

# Fits run on the curve mapped to z = (sign * y - low) / scale, so every observed prefix spans
# [0, 1] and bounds can be stated once. The asymptote may lie at most this many observed ranges
# above the highest point seen: early on a curve can still rise far (NAS-Bench-201 rises about
# five ranges after 3 epochs), but an unbounded asymptote lets one bad fit blow the ensemble up.
_MAX_RISE = 10.0
_MAX_AMPLITUDE = 1e3
#: 99% quantiles of the chi-square distribution with 1..6 degrees of freedom (scipy.stats.chi2.ppf(0.99, p)).
_CHI2_99 = (0.0, 6.635, 9.210, 11.345, 13.277, 15.086, 16.812)


@dataclass(frozen=True)
class _Context:
    """What a family needs to state its starting point and bounds for one prefix (normalised units)."""

    x: np.ndarray          # 1-based epochs of the points
    z: np.ndarray          # the normalised prefix: min 0, max 1, increasing is better
    c_low: float           # bounds of the asymptote
    c_high: float

    @property
    def x_last(self) -> float:
        return float(self.x[-1])


@dataclass(frozen=True)
class Family:
    """One parametric curve family, increasing towards an asymptote (the direction of improvement).

    ``function(x, *params)`` with ``x`` the 1-based epoch; ``initial(ctx)`` gives a starting point
    and ``bounds(ctx)`` the (low, high) bounds, both in the normalised units of the fit. ``kinds``
    says per parameter how it maps back to the curve's units: ``"level"`` (a value of the curve),
    ``"scale"`` (a difference of values) or ``"shape"`` (unitless, or per epoch: unchanged).
    """

    name: str
    params: tuple[str, ...]
    kinds: tuple[str, ...]
    function: Callable[..., np.ndarray]
    initial: Callable[[_Context], list[float]]
    bounds: Callable[[_Context], tuple[list[float], list[float]]]

    def __post_init__(self) -> None:
        if len(self.params) != len(self.kinds) or not set(self.kinds) <= {"level", "scale", "shape"}:
            raise ConfigError(f"family '{self.name}': `kinds` must give one of level/scale/shape per parameter {self.params}, "
                              f"but got {self.kinds}.")


def _c0(ctx: _Context) -> float:
    return float(np.clip(1.25, ctx.c_low, ctx.c_high))


def _gap(ctx: _Context) -> float:
    """How far the start lies below the asymptote's starting guess: a first guess of amplitude."""
    return max(_c0(ctx) - float(ctx.z[0]), 1e-3)


# ---- the families (Domhan et al. 2015, table 1, written increasing towards the asymptote c) -------------------
def _constant(x: np.ndarray, c: float) -> np.ndarray:
    return 0.0 * x + c


def _pow3(x: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c - a * x ** (-alpha)


def _pow4(x: np.ndarray, c: float, a: float, b: float, alpha: float) -> np.ndarray:
    return c - a * (x + b) ** (-alpha)


def _exp3(x: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return c - a * np.exp(-b * x)


def _log_power(x: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c - a * np.log1p(x) ** (-alpha)


def _janoschek(x: np.ndarray, c: float, a: float, b: float, delta: float) -> np.ndarray:
    return c - a * np.exp(-b * x ** delta)


def _weibull(x: np.ndarray, c: float, a: float, b: float, delta: float) -> np.ndarray:
    return c - a * np.exp(-((b * x) ** delta))


def _mmf(x: np.ndarray, c: float, a: float, b: float, delta: float) -> np.ndarray:
    return c - a / (1.0 + (b * x) ** delta)


def _ilog2(x: np.ndarray, c: float, a: float) -> np.ndarray:
    return c - a / np.log(x + 1.0)


def _rate_bounds(ctx: _Context) -> tuple[float, float]:
    """Per-epoch rates from "changes over a hundred prefixes" to "settled within a hundredth of one"."""
    return 0.01 / ctx.x_last, 100.0 / ctx.x_last


def _family(name: str, params: tuple[str, ...], kinds: tuple[str, ...], function: Callable[..., np.ndarray],
            initial: Callable[[_Context], list[float]], lows: Callable[[_Context], list[float]],
            highs: Callable[[_Context], list[float]]) -> Family:
    return Family(name, params, kinds, function, initial, lambda ctx: (lows(ctx), highs(ctx)))


_A = _MAX_AMPLITUDE
FAMILIES: dict[str, Family] = {f.name: f for f in (
    _family("constant", ("c",), ("level",), _constant,
            lambda ctx: [float(np.clip(ctx.z.mean(), ctx.c_low, ctx.c_high))],
            lambda ctx: [ctx.c_low], lambda ctx: [ctx.c_high]),
    _family("pow3", ("c", "a", "alpha"), ("level", "scale", "shape"), _pow3,
            lambda ctx: [_c0(ctx), _gap(ctx) * float(ctx.x[0]) ** 0.5, 0.5],
            lambda ctx: [ctx.c_low, 0.0, 0.01], lambda ctx: [ctx.c_high, _A * ctx.x_last ** 4, 4.0]),
    _family("pow4", ("c", "a", "b", "alpha"), ("level", "scale", "shape", "shape"), _pow4,
            lambda ctx: [_c0(ctx), _gap(ctx) * (float(ctx.x[0]) + 1.0) ** 0.5, 1.0, 0.5],
            lambda ctx: [ctx.c_low, 0.0, 0.0, 0.01], lambda ctx: [ctx.c_high, _A * (2 * ctx.x_last) ** 4, ctx.x_last, 4.0]),
    _family("exp3", ("c", "a", "b"), ("level", "scale", "shape"), _exp3,
            lambda ctx: [_c0(ctx), _gap(ctx) * math.exp(2.0 * float(ctx.x[0]) / ctx.x_last), 2.0 / ctx.x_last],
            lambda ctx: [ctx.c_low, 0.0, _rate_bounds(ctx)[0]], lambda ctx: [ctx.c_high, _A, _rate_bounds(ctx)[1]]),
    _family("log_power", ("c", "a", "alpha"), ("level", "scale", "shape"), _log_power,
            lambda ctx: [_c0(ctx), _gap(ctx) * math.log1p(float(ctx.x[0])), 1.0],
            lambda ctx: [ctx.c_low, 0.0, 0.01], lambda ctx: [ctx.c_high, _A, 8.0]),
    _family("janoschek", ("c", "a", "b", "delta"), ("level", "scale", "shape", "shape"), _janoschek,
            lambda ctx: [_c0(ctx), _gap(ctx), 1.0 / ctx.x_last, 1.0],
            lambda ctx: [ctx.c_low, 0.0, 1e-4 / ctx.x_last, 0.1], lambda ctx: [ctx.c_high, _A, 100.0, 4.0]),
    _family("weibull", ("c", "a", "b", "delta"), ("level", "scale", "shape", "shape"), _weibull,
            lambda ctx: [_c0(ctx), _gap(ctx), 1.0 / ctx.x_last, 1.0],
            lambda ctx: [ctx.c_low, 0.0, _rate_bounds(ctx)[0], 0.1], lambda ctx: [ctx.c_high, _A, _rate_bounds(ctx)[1], 4.0]),
    _family("mmf", ("c", "a", "b", "delta"), ("level", "scale", "shape", "shape"), _mmf,
            lambda ctx: [_c0(ctx), _gap(ctx) * 2.0, 1.0 / ctx.x_last, 1.0],
            lambda ctx: [ctx.c_low, 0.0, _rate_bounds(ctx)[0], 0.1], lambda ctx: [ctx.c_high, _A, _rate_bounds(ctx)[1], 4.0]),
    _family("ilog2", ("c", "a"), ("level", "scale"), _ilog2,
            lambda ctx: [_c0(ctx), _gap(ctx) * math.log(float(ctx.x[0]) + 1.0)],
            lambda ctx: [ctx.c_low, 0.0], lambda ctx: [ctx.c_high, _A]),
)}
#: Janoschek and Weibull are one shape (``b x^d`` against ``(b x)^d``); both are registered, only
#: Janoschek is fitted by default, so the shape is not counted twice in the weights.
DEFAULT_FAMILIES = ("constant", "pow3", "pow4", "exp3", "log_power", "janoschek", "mmf", "ilog2")


@dataclass(frozen=True, eq=False)
class Prediction:
    """What a curve will read at epoch ``horizon``, from its first ``points`` values.

    ``mean`` is the weighted mean of the families' best-fit predictions, ``std`` the spread of
    ``samples`` (plausible values at the horizon: parameter uncertainty, family uncertainty and
    observation noise), ``level`` the ensemble's fitted value at the last point seen (the curve's
    current level with the noise smoothed out), ``noise`` the estimated noise of one point.
    After :func:`calibrate`, ``mean``, ``std`` and ``samples`` are the corrected ones and
    ``calibration`` says how they were obtained. ``weights`` and ``params`` are per family; params
    are in the curve's units for the family's increasing form fitted to ``sign * curve`` (for a
    curve to minimise, a ``level`` parameter is reported as the curve's value, so ``c`` is the loss
    it settles at). ``samples`` is read-only: a cached prediction is shared.
    """

    mean: float
    std: float
    samples: np.ndarray
    horizon: int
    points: int
    maximize: bool = True
    weights: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, dict[str, float]] = field(default_factory=dict)
    noise: float = 0.0
    bounds: tuple[float, float] | None = None
    level: float = math.nan
    calibration: Mapping[str, Any] | None = None

    def prob_beats(self, value: float) -> float:
        """Probability that the value at the horizon is better than ``value`` (above it when
        maximising, below when minimising), estimated from the samples."""
        better = self.samples > value if self.maximize else self.samples < value
        return float(np.mean(better)) if self.samples.size else 0.0

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.samples, q))


class CurvePredictor:
    """Extrapolates learning curves with a BIC-weighted ensemble of parametric families.

    ``maximize`` says whether larger is better (accuracy) or smaller (loss): a curve to minimise is
    fitted negated, so the same increasing families apply. ``bounds=(low, high)`` declares the
    metric's plausible range (``(0, 100)`` for accuracy in %): the asymptotes are kept inside it and
    predictions clipped to it; by default nothing is clipped. ``n_samples`` plausible final values
    are drawn per prediction. Predictions of the same prefix are kept (``cache_size`` of them),
    because a pruner asks again for the same finished curves at every check.

    A predict call on 20 points takes about 10 to 30 ms (one bounded fit per family).
    """

    def __init__(self, *, families: Sequence[str | Family] = DEFAULT_FAMILIES, maximize: bool = True,
                 bounds: tuple[float, float] | None = None, n_samples: int = 500, max_evals: int = 400,
                 cache_size: int = 4096, seed: int | None = None) -> None:
        self.families: tuple[Family, ...] = tuple(self._family(f) for f in families)
        if not self.families:
            raise ConfigError("`families` must name at least one curve family, but got none. "
                              f"Registered: {', '.join(FAMILIES)}.")
        if bounds is not None:
            low, high = (float(b) for b in bounds)
            if not low < high:
                raise ConfigError(f"`bounds[0] < bounds[1]` must hold (the metric's plausible range), but got bounds={tuple(bounds)}.")
            bounds = (low, high)
        if n_samples < 10:
            raise ConfigError(f"`n_samples >= 10` must hold, but got n_samples={n_samples}.")
        if max_evals < 10:
            raise ConfigError(f"`max_evals >= 10` must hold (function evaluations per fit), but got max_evals={max_evals}.")
        self.maximize, self.bounds, self.n_samples, self.max_evals = bool(maximize), bounds, int(n_samples), int(max_evals)
        self._rng = np.random.default_rng(seed)
        self._cache: OrderedDict[bytes, Prediction] = OrderedDict()
        self.cache_size = int(cache_size)

    @staticmethod
    def _family(f: str | Family) -> Family:
        if isinstance(f, Family):
            return f
        if f not in FAMILIES:
            raise ConfigError(unknown_name_message("curve family", f, FAMILIES))
        return FAMILIES[f]

    # ---- public ----------------------------------------------------------------------------------
    def predict(self, curve_prefix: Sequence[float] | np.ndarray, horizon: int, *,
                epochs: Sequence[float] | np.ndarray | None = None) -> Prediction:
        """The value the curve will have at epoch ``horizon`` (1-based: ``horizon=200`` is the
        200th value), from ``curve_prefix``, its values at epochs 1, 2, ..., k (or at ``epochs``,
        1-based and increasing, when values were not recorded every epoch).

        Raises ``ValueError`` when fewer than 3 points are given, any is not finite, or the
        horizon lies before the last point.
        """
        y = np.asarray(curve_prefix, dtype=float).ravel()
        if y.size < 3:
            raise ValueError(f"`len(curve_prefix) >= 3` must hold to fit a curve, but got {y.size} point(s).")
        if not np.all(np.isfinite(y)):
            bad = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValueError(f"every point of `curve_prefix` must be finite, but got {y[bad]} at index {bad}.")
        x = np.arange(1.0, y.size + 1.0) if epochs is None else np.asarray(epochs, dtype=float).ravel()
        if x.shape != y.shape or not np.all(np.isfinite(x)) or x[0] <= 0 or np.any(np.diff(x) <= 0):
            raise ValueError(f"`epochs` must be {y.size} increasing positive numbers (1-based), one per point, but got {x.tolist()}.")
        if not horizon >= x[-1]:
            raise ValueError(f"`horizon >= {x[-1]:g}` (the last epoch given) must hold, but got horizon={horizon}.")
        key = np.concatenate([[float(horizon)], x, y]).tobytes()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        prediction = self._predict(x, y, int(horizon))
        prediction.samples.flags.writeable = False  # shared with later callers through the cache
        if self.cache_size > 0:
            self._cache[key] = prediction
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return prediction

    # ---- internals ---------------------------------------------------------------------------------
    def _predict(self, x: np.ndarray, y: np.ndarray, horizon: int) -> Prediction:
        sign = 1.0 if self.maximize else -1.0
        z = sign * y
        low, scale = float(z.min()), float(z.max() - z.min())
        level = float(z.mean())
        if scale <= 1e-12 * max(1.0, abs(level)):
            # A constant curve: nothing to fit, nothing to extrapolate.
            value = self._clip(y[-1:])[0]
            return Prediction(mean=float(value), std=0.0, samples=np.full(self.n_samples, value), horizon=horizon,
                              points=y.size, maximize=self.maximize, weights={"constant": 1.0}, params={"constant": {"c": float(value)}},
                              bounds=self.bounds, level=float(value))
        zn = (z - low) / scale
        c_low, c_high = 0.0, 1.0 + _MAX_RISE
        if self.bounds is not None:
            zb = sorted(((sign * self.bounds[0] - low) / scale, (sign * self.bounds[1] - low) / scale))
            c_low, c_high = max(c_low, zb[0]), min(c_high, zb[1])
            if c_high <= c_low:  # the prefix already sits at the declared edge of the range
                c_low, c_high = min(zb[1], 1.0) - 1e-6, max(zb[1], 1.0) + 1e-6
        ctx = _Context(x=x, z=zn, c_low=c_low, c_high=c_high)

        # A family with more parameters than points cannot be fitted; with as many it interpolates.
        fits = [fit for fit in (self._fit(f, ctx) for f in self.families if len(f.params) <= y.size) if fit is not None]
        if not fits:  # every bounded fit failed: fall back on the last value, with the curve's own spread
            return self._fallback(y, horizon)
        n = y.size
        # One noise level for every family, so their BIC compare: the best fit's residual spread, or the
        # curve's own jitter (second differences, by their median absolute deviation so that the steep first
        # epochs do not count as noise), whichever is larger; never below a thousandth of the range, a hundredth
        # below 5 points (with as many parameters as points the residuals say nothing about the noise).
        d2 = np.diff(zn, 2)
        jitter = float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6.0)) if n >= 5 else 0.0
        sigma = max(min(math.sqrt(fit.sse / max(n - fit.p, 1)) for fit in fits), jitter, 1e-3 if n >= 5 else 1e-2)
        scores = np.array([fit.sse / sigma**2 + fit.p * math.log(n) for fit in fits])
        weights = np.exp(-0.5 * (scores - scores.min()))
        weights /= weights.sum()

        xh = np.array([float(horizon)])
        counts = self._rng.multinomial(self.n_samples, weights)
        parts, points = [], []
        for fit, count in zip(fits, counts):
            point = float(fit.family.function(xh, *fit.popt)[0])
            points.append(point)
            if count:
                parts.append(self._sample(fit, x, zn, xh, int(count), sigma))
        samples_n = np.concatenate(parts)
        samples_n += self._rng.normal(0.0, sigma, samples_n.size)  # the final value is one noisy epoch too
        mean_n = float(np.dot(weights, points))
        level_n = float(np.dot(weights, [fit.family.function(x[-1:], *fit.popt)[0] for fit in fits]))
        samples = self._clip(sign * (low + scale * samples_n))
        mean = float(self._clip(np.array([sign * (low + scale * mean_n)]))[0])
        params = {fit.family.name: self._denormalise(fit, sign, low, scale) for fit in fits}
        return Prediction(mean=mean, std=float(samples.std()), samples=samples, horizon=horizon, points=n, maximize=self.maximize,
                          weights={fit.family.name: float(w) for fit, w in zip(fits, weights)}, params=params,
                          noise=float(sigma * scale), bounds=self.bounds, level=sign * (low + scale * level_n))

    def _fit(self, family: Family, ctx: _Context) -> _Fit | None:
        """Least squares by Levenberg-Marquardt (MINPACK) on logit-transformed parameters: the bounds
        hold by construction and each fit costs a few milliseconds, where a bounded trust-region fit
        costs several times more."""
        lo, hi = (np.asarray(b, dtype=float) for b in family.bounds(ctx))
        # Parameters spanning orders of magnitude (amplitudes, rates) move on a log scale: on a linear one
        # a start near the low end sits deep in the logistic's flat tail and the fit never leaves it.
        logs = (lo >= 0) & (hi > 0) & ((lo == 0) | (hi > 1e3 * lo))
        lo = np.where(logs, np.log(np.maximum(lo, hi * 1e-12)), lo)
        hi = np.where(logs, np.log(hi), hi)
        width = hi - lo
        p0 = np.asarray(family.initial(ctx), dtype=float)
        p0 = np.clip(np.where(logs, np.log(np.maximum(p0, 1e-300)), p0), lo + 1e-3 * width, hi - 1e-3 * width)
        theta0 = np.log((p0 - lo) / (hi - p0))

        def residuals(theta: np.ndarray) -> np.ndarray:
            return family.function(ctx.x, *_from_theta(theta, lo, width, logs)) - ctx.z

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # overflow in wild trial steps; those steps are rejected
            try:
                theta, cov, *_ = leastsq(residuals, theta0, full_output=True, maxfev=self.max_evals)
            except (RuntimeError, ValueError, FloatingPointError):
                return None
            fitted = residuals(theta) + ctx.z
        if not np.all(np.isfinite(fitted)) or not np.all(np.isfinite(theta)):
            return None
        sse = float(np.sum((fitted - ctx.z) ** 2))
        return _Fit(family=family, theta=theta, cov=cov, sse=sse, p=len(theta), lo=lo, width=width, logs=logs)

    def _sample(self, fit: _Fit, x: np.ndarray, z: np.ndarray, xh: np.ndarray, count: int, sigma: float) -> np.ndarray:
        """Values at the horizon for parameters drawn from the fit's covariance (at the shared noise level).

        The covariance is a local, Gaussian picture; along poorly determined directions it proposes
        curves that miss the observed points by far (an amplitude of thousands with a rate near zero)
        and would predict anything. A draw is kept only if its curve fits the points about as well
        as a draw from that Gaussian picture should (chi-square with one degree per parameter, 99%);
        the kept ones fill the sample.
        """
        point = float(fit.family.function(xh, *fit.popt)[0])
        if fit.cov is None or not np.all(np.isfinite(fit.cov)):
            return np.full(count, point)
        draws = self._rng.multivariate_normal(fit.theta, fit.cov * sigma**2, size=count, method="eigh", check_valid="ignore")
        params = _from_theta(draws.T, fit.lo[:, None], fit.width[:, None], fit.logs[:, None])
        with np.errstate(all="ignore"):
            values = np.broadcast_to(fit.family.function(xh, *params), (count,)).astype(float)
            misfit = (np.sum((fit.family.function(x[:, None], *params) - z[:, None]) ** 2, axis=0) - fit.sse) / sigma**2
        kept = values[np.isfinite(values) & (misfit <= _CHI2_99[fit.p])]
        if kept.size == 0:
            return np.full(count, point)
        return kept if kept.size == count else self._rng.choice(kept, size=count)

    def _denormalise(self, fit: _Fit, sign: float, low: float, scale: float) -> dict[str, float]:
        out = {}
        for name, kind, value in zip(fit.family.params, fit.family.kinds, fit.popt):
            out[name] = float(sign * (low + scale * value) if kind == "level" else scale * value if kind == "scale" else value)
        return out

    def _fallback(self, y: np.ndarray, horizon: int) -> Prediction:
        spread = float(np.std(y))
        samples = self._clip(y[-1] + self._rng.normal(0.0, spread, self.n_samples))
        return Prediction(mean=float(y[-1]), std=float(samples.std()), samples=samples, horizon=horizon, points=y.size,
                          maximize=self.maximize, bounds=self.bounds, level=float(y[-1]))

    def _clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, *self.bounds) if self.bounds is not None else values


def _from_theta(theta: np.ndarray, lo: np.ndarray, width: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """Unconstrained fit variables to parameters: a logistic onto (lo, hi), on a log scale where ``logs``."""
    inner = lo + width / (1.0 + np.exp(-np.clip(theta, -60.0, 60.0)))
    return np.where(logs, np.exp(np.minimum(inner, 700.0)), inner)


@dataclass(frozen=True, eq=False)
class _Fit:
    family: Family
    theta: np.ndarray
    cov: np.ndarray | None  # of theta, per unit noise variance
    sse: float
    p: int
    lo: np.ndarray
    width: np.ndarray
    logs: np.ndarray

    @property
    def popt(self) -> np.ndarray:
        return _from_theta(self.theta, self.lo, self.width, self.logs)


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theil-Sen lines ``y ~ a + b x`` fitted on all points and on each leave-one-out subset at once.

    Returns ``(a, b, loo)``: index 0 of ``a`` and ``b`` is the line on all points, index ``i + 1``
    the line without point ``i``; ``loo[i]`` is point ``i``'s residual from the line fitted
    without it. The slope is the median of pairwise slopes, kept within [0.05, 20]; with fewer than 4
    points every line is a pure shift (``b = 1``). The offset is the median one.
    """
    n = x.size
    i, j = np.triu_indices(n, 1)
    dx = x[j] - x[i]
    with np.errstate(all="ignore"):
        slopes = np.where(np.abs(dx) > 1e-12 * max(1.0, float(np.abs(x).max())), (y[j] - y[i]) / dx, np.nan)
    # Row 0 keeps every pair; row r + 1 drops the pairs that involve point r.
    drop = np.zeros((n + 1, slopes.size), dtype=bool)
    drop[1 + i, np.arange(i.size)] = True
    drop[1 + j, np.arange(j.size)] = True
    masked = np.where(drop, np.nan, slopes)
    counts = np.sum(~np.isnan(masked), axis=1)
    sizes = np.r_[n, np.full(n, n - 1)]
    b = _row_medians(masked, counts)
    # The same model for every line, so that the leave-one-out residuals measure the line actually used.
    b = np.where((n >= 4) & (counts >= 1) & np.isfinite(b), np.clip(b, 0.05, 20.0), 1.0)
    offsets = y[None, :] - b[:, None] * x[None, :]
    offsets[np.arange(1, n + 1), np.arange(n)] = np.nan
    a = _row_medians(offsets, sizes)
    loo = y - (a[1:] + b[1:] * x)
    return a, b, loo


def _row_medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each row's first ``counts`` values once sorted (NaN sort last); NaN for an empty row.
    A tenth of ``np.nanmedian``'s cost, which goes through masked arrays."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    ordered = np.sort(values, axis=1)
    rows = np.arange(values.shape[0])
    low, high = np.maximum(counts - 1, 0) // 2, np.maximum(counts, 1) // 2
    return np.where(counts > 0, 0.5 * (ordered[rows, low] + ordered[rows, np.minimum(high, values.shape[1] - 1)]), np.nan)


# Local spread: the residuals of the references nearest in the feature, this fraction of them and at least
# this many (fewer made the pruner overconfident with the handful of references early in a study).
_NEAR_FRACTION, _NEAR_MIN = 1 / 3, 5

#: What :func:`calibrate` may map to the final value: the extrapolation, or the fitted level at the last point seen.
CALIBRATION_FEATURES = ("mean", "level")


@dataclass(frozen=True, eq=False)
class Calibration:
    """``final ~ a + b * feature`` learnt from finished curves, with its leave-one-out residuals.

    Made by :func:`fit_calibration`; :meth:`apply` corrects any prediction made from as many
    points with the same horizon. Kept separately so that a pruner checking many trials at the
    same epoch against the same finished ones fits it once.
    """

    feature: str
    a: float
    b: float
    x: np.ndarray          # the references' feature values
    residuals: np.ndarray  # their leave-one-out residuals
    loo_mae: float

    def apply(self, prediction: Prediction, *, seed: int | None = None) -> Prediction:
        own = float(getattr(prediction, self.feature))
        mean = self.a + self.b * own
        n = self.x.size
        near = np.argsort(np.abs(self.x - own), kind="stable")[:max(_NEAR_MIN, math.ceil(n * _NEAR_FRACTION))]
        local = self.residuals[near]
        rng = np.random.default_rng(seed)
        size = prediction.samples.size or 500
        # Residuals drawn with a little jitter, so a handful of references still give a continuous spread.
        jitter = float(np.std(local)) / math.sqrt(local.size) + 1e-3 * float(np.std(self.residuals))
        samples = mean + rng.choice(local, size=size) + rng.normal(0.0, jitter, size)
        if prediction.bounds is not None:
            samples = np.clip(samples, *prediction.bounds)
            mean = float(np.clip(mean, *prediction.bounds))
        return dataclasses.replace(prediction, mean=float(mean), std=float(samples.std()), samples=samples,
                                   calibration={"feature": self.feature, "a": self.a, "b": self.b, "references": n,
                                                "loo_mae": self.loo_mae})


def fit_calibration(reference: Sequence[tuple[Prediction, float]], *, features: Sequence[str] = CALIBRATION_FEATURES,
                    min_reference: int = 3) -> Calibration | None:
    """The correction :func:`calibrate` applies, or ``None`` with fewer than ``min_reference`` (and 3) references."""
    if not features:
        raise ConfigError(f"`features` must name at least one of {CALIBRATION_FEATURES}, but got none.")
    for name in features:
        if name not in CALIBRATION_FEATURES:
            raise ConfigError(unknown_name_message("calibration feature", name, CALIBRATION_FEATURES))
    if len(reference) < max(min_reference, 3):
        return None
    y = np.array([v for _, v in reference], dtype=float)
    best: Calibration | None = None
    for name in features:
        x = np.array([getattr(p, name) for p, _ in reference], dtype=float)
        a, b, loo = _theil_sen(x, y)
        candidate = Calibration(feature=name, a=float(a[0]), b=float(b[0]), x=x, residuals=loo, loo_mae=float(np.mean(np.abs(loo))))
        if best is None or candidate.loo_mae < best.loo_mae:
            best = candidate
    return best


def calibrate(prediction: Prediction, reference: Sequence[tuple[Prediction, float]], *,
              features: Sequence[str] = CALIBRATION_FEATURES, min_reference: int = 3, seed: int | None = None) -> Prediction:
    """Correct ``prediction`` with finished curves: ``reference`` pairs each one's prediction from its
    own first points (as many points, the same horizon) with the value it really reached.

    Parametric families miss systematic shapes (a cosine schedule's late rise); the finished
    curves of the same study show by how much. For each of ``features`` (``"mean"``, the
    extrapolated value, and ``"level"``, the fitted value at the last point seen),
    ``final ~ a + b * feature`` is fitted robustly (Theil-Sen, because a few broken runs stuck at
    chance would drag a least-squares line far from every useful one) and scored by its
    leave-one-out error over the references; the better one is used. The spread is the
    leave-one-out residuals themselves (real errors of this very correction) of the references
    nearest to this prediction in the feature (a third of them, at least 5: a run near chance is
    harder to call than a good one), resampled with a little jitter. With fewer than
    ``min_reference`` references (3 at least) the prediction is returned unchanged. What was done
    is recorded in ``prediction.calibration``.
    """
    fitted = fit_calibration(reference, features=features, min_reference=min_reference)
    return prediction if fitted is None else fitted.apply(prediction, seed=seed)

