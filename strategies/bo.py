"""Architecture-aware Bayesian optimisation: a GP on an architecture encoding, acquisition over mutations of the best."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from nas.core import ConfigError, Float, SearchSpace, Strategy, TrialRecord
from nas.core.fronts import scored
from nas.core.strategy import auto_startup, resolve_auto
from nas.core.space import Sample
from strategies._encoding import ENCODINGS, Encoding, make_encoding

__all__ = ["ACQUISITIONS", "ArchitectureBO", "GaussianProcess"]

#: Names of the acquisition functions ``ArchitectureBO`` accepts.
ACQUISITIONS = ("ei", "ucb", "thompson")

_KEY_MEMO_LIMIT = 200_000
_LOG_2PI = math.log(2 * math.pi)


class GaussianProcess:
    """Exact GP regression with a Matern-5/2 kernel on encodings, hyperparameters by marginal likelihood.

    The targets are standardised; the signal variance is profiled out in closed form, and the
    lengthscale (as multiples of the median pairwise distance of the training inputs) and the noise
    ratio are picked from small grids by the profiled log marginal likelihood. Deterministic: the same
    inputs give the same fit.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, *, lengthscales: Sequence[float] = (0.5, 1.0, 2.0),
                 noises: Sequence[float] = (1e-3, 1e-2, 1e-1)) -> None:
        self.X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.mean, self.std = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mean) / self.std
        d = np.sqrt(_sqdist(self.X, self.X))
        upper = d[np.triu_indices(len(d), 1)]
        positive = upper[upper > 0]
        self.scale = float(np.median(positive)) if positive.size else 1.0
        best = None
        for ls in lengthscales:
            K0 = _matern52(d / (ls * self.scale))
            for noise in noises:
                try:
                    factor = cho_factor(K0 + (noise + 1e-8) * np.eye(len(z)), lower=True, check_finite=False)
                except np.linalg.LinAlgError:
                    continue
                alpha = cho_solve(factor, z, check_finite=False)
                signal = max(float(z @ alpha) / len(z), 1e-12)
                lml = -0.5 * len(z) * (math.log(signal) + 1 + _LOG_2PI) - float(np.log(np.diag(factor[0])).sum())
                if best is None or lml > best[0]:
                    best = (lml, ls, noise, factor, alpha, signal)
        if best is None:
            raise np.linalg.LinAlgError("no hyperparameters on the grid gave a positive definite kernel matrix")
        self.lml, self.lengthscale, self.noise, self._factor, self._alpha, self.signal = best
        #: Posterior mean at the training inputs: K0 alpha = z - (noise + jitter) alpha, no solve needed.
        self.fitted = self.mean + self.std * (z - (self.noise + 1e-8) * self._alpha)

    def _cross(self, Xs: np.ndarray) -> np.ndarray:
        return _matern52(np.sqrt(_sqdist(np.asarray(Xs, dtype=float), self.X)) / (self.lengthscale * self.scale))

    def predict(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function, in the targets' units."""
        Ks = self._cross(Xs)
        mu = Ks @ self._alpha
        v = solve_triangular(self._factor[0], Ks.T, lower=True, check_finite=False)
        var = self.signal * np.clip(1.0 - np.einsum("ij,ij->j", v, v), 1e-12, None)
        return self.mean + self.std * mu, self.std * np.sqrt(var)

    def sample(self, Xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One joint draw of the latent function at ``Xs`` (Thompson sampling), in the targets' units."""
        Ks = self._cross(Xs)
        mu = Ks @ self._alpha
        v = solve_triangular(self._factor[0], Ks.T, lower=True, check_finite=False)
        cov = self.signal * (_matern52(np.sqrt(_sqdist(Xs, Xs)) / (self.lengthscale * self.scale)) - v.T @ v)
        w, U = np.linalg.eigh(cov)
        draw = mu + U @ (np.sqrt(np.clip(w, 0.0, None)) * rng.standard_normal(len(w)))
        return self.mean + self.std * draw


def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.clip(d, 0.0, None)


def _matern52(r: np.ndarray) -> np.ndarray:
    s = math.sqrt(5.0) * r
    return (1.0 + s + s * s / 3.0) * np.exp(-s)


def _copula(values: np.ndarray) -> np.ndarray:
    """Ranks mapped to normal quantiles (ties share their mean rank): robust to outliers and to the objective's scale."""
    return ndtri((rankdata(values) - 0.5) / len(values))


_controller: list[Any] = []  # the threadpoolctl controller, made on first use (None: unavailable)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread (threadpoolctl, when installed); a no-op otherwise."""
    if not _controller:
        try:
            from threadpoolctl import ThreadpoolController

            _controller.append(ThreadpoolController())
        except Exception:  # threadpoolctl missing or unable to inspect the libraries: run as is
            _controller.append(None)
    if _controller[0] is None:
        yield
        return
    with _controller[0].limit(limits=1, user_api="blas"):
        yield


class ArchitectureBO(Strategy):
    """Bayesian optimisation over architectures: a Gaussian process on an architecture encoding.

    Each ask, after ``n_initial`` random architectures, fits a GP (Matern-5/2, hyperparameters by
    marginal likelihood on a small grid) to every finished trial's encoding, then scores candidates
    with the acquisition function and returns the best. Candidates are the one-dimension neighbours of
    the ``top_k`` best architectures so far, two-step mutations of them, and a share of fresh random
    samples, ``n_candidates`` in all; with ``skip_duplicates`` none has a canonical key tried before.

    Knobs:

    - ``n_initial``: random architectures before the model is used.
    - ``n_candidates``: candidates scored per ask.
    - ``top_k``: how many of the best architectures so far are mutated into candidates.
    - ``two_step_fraction``: share of the mutation candidates that change two dimensions (the rest are
      one-dimension neighbours, all of them when they fit).
    - ``random_fraction``: share of the candidates drawn uniformly at random (global exploration).
    - ``acquisition``: ``"ei"`` (expected improvement over the best so far), ``"ucb"`` (mean plus
      ``ucb_beta`` standard deviations) or ``"thompson"`` (one joint posterior draw over the candidates).
    - ``encoding``: ``"onehot"`` (every dimension; categorical one-hot, numbers scaled to [0, 1],
      inactive dimensions zero), ``"path"`` (BANANAS path counts; needs a cell space with ``paths()``),
      ``"both"`` side by side, or ``"auto"``: path where the space has ``paths()``, else one-hot.
    - ``max_train``: at most this many trials fit the GP (the best ones), which bounds the cubic cost.
    - ``max_redraws``: redraws of a random sample whose key was already tried (random phase, fallbacks).

    Values are fit through a rank-to-normal (copula) transform, so the scale of the objective and
    outliers such as diverged trainings do not matter. Failed and pruned trials count as the worst
    value seen; running ones are only kept out of the candidates. Everything is derived from the
    history and the seed (``self.rng(history)``), so the same history gives the same next ask, also
    in a fresh process; encodings and keys are memoised as pure functions of a sample.

    With several :attr:`objectives`, each ask is ParEGO's (Knowles 2006): a weight vector drawn
    uniformly from the simplex turns the objectives (each scaled to [0, 1] over the trials so far) into
    one value by the augmented Tchebycheff scalarisation ``-(max_j w_j f_j + 0.05 sum_j w_j f_j)``,
    and the GP, the candidates and the acquisition work on it as on a single score. Another weight
    vector each ask spreads the asks along the front.
    """

    name = "bo"
    multi_objective = True  # ParEGO's random scalarisations (see above)

    def __init__(self, space: SearchSpace, *, seed: int | None = None, skip_duplicates: bool = True, n_initial: int | str = "auto",
                 n_candidates: int = 250, top_k: int = 10, two_step_fraction: float = 0.1, random_fraction: float = 0.1,
                 acquisition: str = "ei", ucb_beta: float = 2.0, encoding: str = "auto", max_train: int = 500,
                 max_redraws: int = 1000, budget: int | None = None) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        if n_initial == "auto" and budget is not None:
            self.notes.append(f"n_initial=auto -> {auto_startup(budget)} for {budget} trials")
        n_initial = resolve_auto("n_initial", n_initial, auto_startup(budget), strategy="bo")
        ints = {"n_initial": (n_initial, 1), "n_candidates": (n_candidates, 1), "top_k": (top_k, 1), "max_train": (max_train, 2),
                "max_redraws": (max_redraws, 0)}
        for key, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"strategy 'bo': `{key}` must be an integer >= {low}, but got {value!r}.")
        for key, value in {"two_step_fraction": two_step_fraction, "random_fraction": random_fraction}.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"strategy 'bo': `0 <= {key} <= 1` must hold, but got {key}={value!r}.")
        if isinstance(ucb_beta, bool) or not isinstance(ucb_beta, (int, float)) or not ucb_beta >= 0:
            raise ConfigError(f"strategy 'bo': `ucb_beta >= 0` must hold, but got ucb_beta={ucb_beta!r}.")
        for key, value, valid in (("acquisition", acquisition, ACQUISITIONS), ("encoding", encoding, ENCODINGS)):
            if value not in valid:
                raise ConfigError(f"strategy 'bo': `{key}` must be one of {list(valid)!r}, but got {value!r}.")
        self.n_initial, self.n_candidates, self.top_k = int(n_initial), int(n_candidates), int(top_k)
        self.random_fraction, self.acquisition, self.ucb_beta = float(random_fraction), acquisition, float(ucb_beta)
        self.max_train, self.max_redraws = int(max_train), int(max_redraws)
        self.two_step_fraction = float(two_step_fraction)
        self.encoder: Encoding = make_encoding(space, encoding)
        self._keys: dict[tuple, str] = {}
        self._neighbor_memo: dict[tuple, list[Sample]] = {}
        self._finite: set[str] | None | bool = False  # False: not computed yet; None: too large to enumerate

    # ---- memoised pure functions of a sample ----------------------------------------------------
    def _key(self, sample: Sample) -> str:
        token = tuple(sample.items())
        key = self._keys.get(token)
        if key is None:
            if len(self._keys) >= _KEY_MEMO_LIMIT:
                self._keys.clear()
            key = self._keys[token] = self.space.key(sample)
        return key

    def _neighbors(self, sample: Sample) -> list[Sample]:
        """One-dimension neighbours, newly active dimensions at their defaults: a pure function, so memoised."""
        token = tuple(sample.items())
        found = self._neighbor_memo.get(token)
        if found is None:
            if len(self._neighbor_memo) >= _KEY_MEMO_LIMIT // 10:
                self._neighbor_memo.clear()
            found = self._neighbor_memo[token] = self.space.neighbors(sample)
        return found

    # ---- the contract ---------------------------------------------------------------------------
    def random_warmup(self) -> tuple[str, int]:
        return "n_initial", self.n_initial

    def is_exhausted(self, history: Sequence[TrialRecord]) -> bool:
        """True only on small finite spaces (at most 4,096 grid points, no floats) once every key was tried."""
        if not self.skip_duplicates:
            return False
        every = self._every_key()
        return every is not None and every <= self.seen_keys(history)

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        with _one_blas_thread():  # 200x200 algebra gains nothing from threads and loses much on a busy machine
            return self._ask(history)

    def _ask(self, history: Sequence[TrialRecord]) -> Sample:
        rng = self.rng(history)
        seen = self.seen_keys(history) if self.skip_duplicates else set()
        data = self._training_data(history, self._scalarised(history, rng) if len(self.objectives) > 1 else None)
        if len(history) < self.n_initial or data is None:
            return self._fresh(lambda: self.space.sample(rng), seen)
        samples, values = data
        candidates = self._candidates(samples, values, seen, rng)
        if not candidates:
            return self._fresh(lambda: self.space.sample(rng), seen)
        try:
            gp = GaussianProcess(self.encoder.encode_many(samples), _copula(values))
        except np.linalg.LinAlgError:
            return candidates[0]
        scores = self._acquire(gp, self.encoder.encode_many(candidates), rng)
        return candidates[int(np.argmax(scores))]

    # ---- pieces ---------------------------------------------------------------------------------
    def _scalarised(self, history: Sequence[TrialRecord], rng: np.random.Generator) -> dict[int, float]:
        """ParEGO: each completed trial's objectives as one value to maximise, under this ask's random weights."""
        kept, points = scored(history, self.objectives)
        weights = rng.dirichlet(np.ones(len(self.objectives)))
        if not kept:
            return {}
        low, span = points.min(axis=0), np.ptp(points, axis=0)
        scaled = (points - low) / np.where(span > 0, span, 1.0)
        values = -(np.max(weights * scaled, axis=1) + 0.05 * (scaled @ weights))
        return {r.number: float(v) for r, v in zip(kept, values)}

    def _training_data(self, history: Sequence[TrialRecord],
                       scalarised: dict[int, float] | None = None) -> tuple[list[Sample], np.ndarray] | None:
        """Finished trials as (samples, values); failed and pruned ones take the worst value seen. None before two values.
        ``scalarised``: each trial's value by number instead of its score (several objectives), the others as failed."""
        done = [(r.arch.sample, float(r.value) if scalarised is None else scalarised[r.number]) for r in history
                if r.state == "complete" and r.value is not None and math.isfinite(float(r.value))
                and (scalarised is None or r.number in scalarised)]
        if len(done) < 2:
            return None
        worst = min(v for _, v in done)
        bad = [(r.arch.sample, worst) for r in history if r.finished and (r.state != "complete" or r.value is None
                                                                        or not math.isfinite(float(r.value))
                                                                        or (scalarised is not None and r.number not in scalarised))]
        rows = done + bad
        if len(rows) > self.max_train:
            order = sorted(range(len(rows)), key=lambda i: -rows[i][1])  # stable: ties keep history order
            rows = [rows[i] for i in sorted(order[:self.max_train])]
        return [dict(s) for s, _ in rows], np.array([v for _, v in rows])

    def _candidates(self, samples: list[Sample], values: np.ndarray, seen: set[str], rng: np.random.Generator) -> list[Sample]:
        """Neighbours and two-step mutations of the ``top_k`` best, plus random samples; unseen and distinct by key."""
        order = sorted(range(len(values)), key=lambda i: -values[i])  # stable
        parents = [self.space.active(samples[i]) for i in order[:self.top_k]]
        pool: dict[str, Sample] = {}

        def add(sample: Sample) -> None:
            key = self._key(sample)
            if key not in seen and key not in pool:
                pool[key] = sample

        n_random = int(round(self.n_candidates * self.random_fraction))
        n_two = int(round((self.n_candidates - n_random) * self.two_step_fraction))
        n_one = self.n_candidates - n_random - n_two
        one_step = [n for p in parents for n in self._neighbors(p)]
        if len(one_step) > n_one:
            one_step = [one_step[i] for i in np.sort(rng.choice(len(one_step), size=n_one, replace=False))]
        for sample in one_step:
            add(sample)
        for i in range(n_two):
            parent = parents[i % len(parents)]
            add(self.space.mutate(self.space.mutate(parent, rng), rng))
        for _ in range(n_random):
            add(self.space.sample(rng))
        return list(pool.values())

    def _acquire(self, gp: GaussianProcess, Xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.acquisition == "thompson":
            return gp.sample(Xs, rng)
        mu, sd = gp.predict(Xs)
        if self.acquisition == "ucb":
            return mu + self.ucb_beta * sd
        best = self._incumbent(gp)
        z = (mu - best) / sd
        return (mu - best) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    @staticmethod
    def _incumbent(gp: GaussianProcess) -> float:
        return float(gp.fitted.max())

    def _fresh(self, make: Callable[[], Sample], seen: set[str]) -> Sample:
        """``make()`` until its key is unseen (at most ``max_redraws`` redraws)."""
        sample = make()
        for _ in range(self.max_redraws):
            if self._key(sample) not in seen:
                break
            sample = make()
        return sample

    def _every_key(self) -> set[str] | None:
        if self._finite is False:
            size = 1
            for dim in self.space.dimensions().values():
                if isinstance(dim, Float):
                    size = 0  # a float: infinitely many architectures
                    break
                size *= len(dim.grid())
                if size > 4096:
                    break
            self._finite = {self.space.key(s) for s in self.space.grid()} if 0 < size <= 4096 else None
        return self._finite  # type: ignore[return-value]
