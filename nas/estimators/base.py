"""The estimator contract: training, table lookup and zero-cost proxies behind one interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna

from nas.core.architecture import Architecture
from nas.core.objectives import Constraint
from nas.core.records import Inheritance


class Report(Protocol):
    """``report(step, value, **scalars) -> stop``: records ``value`` with the trial (so pruners work),
    logs ``scalars`` (e.g. ``train_loss``) for TensorBoard, and returns whether to stop: the pruner
    says so, or the search's time budget is spent. When the budget is spent (:func:`deadline_passed`)
    or the pruner accepted the trial (:func:`accepted`), :func:`score_now` is true and an estimator
    that can should score the trial on what it has (as a time limit does) instead of raising :func:`pruned`."""

    def __call__(self, step: int, value: float, **scalars: float) -> bool: ...


def deadline_passed(report: Any) -> bool:
    """Whether ``report`` (a :data:`Report`) asked to stop because the search's time budget is spent."""
    check = getattr(report, "deadline_passed", None)
    return bool(check()) if callable(check) else False


def accepted(report: Any) -> bool:
    """Whether ``report`` asked to stop because the pruner *accepted* the trial (``pruner=lce``'s early
    acceptance): the trial is complete on the epochs it ran, and the estimator scores it on them."""
    check = getattr(report, "accepted", None)
    return callable(check) and check() is not None


def score_now(report: Any) -> bool:
    """Whether a stop asked by ``report`` means "score the trial on what it has" (the search's time budget
    is spent, or the pruner accepted it) rather than "pruned" (raise :func:`pruned`)."""
    return deadline_passed(report) or accepted(report)


def resume_state(report: Any) -> Any:
    """The training state a re-run of a lost trial resumes from (what the estimator gave
    :func:`save_state` last in the lost run), or ``None``: start from scratch. Reports outside a
    search have none."""
    resume = getattr(report, "resume", None)
    return resume() if callable(resume) else None


def save_state(report: Any, step: int, state: Any) -> None:
    """Offer the training state after report ``step``: ``state()`` (a mapping of tensors and plain
    values) is called and saved only when a checkpoint is due. Reports outside a search ignore it."""
    checkpoint = getattr(report, "checkpoint", None)
    if callable(checkpoint):
        checkpoint(step, state)


@dataclass
class Evaluation:
    """What an estimator measured for one architecture.

    ``score`` is the value the search maximises (validation accuracy for training), never a test
    metric. ``metrics`` are what this estimator measured besides (recorded with the trial; a
    ``seconds`` entry becomes the trial's ``cost``); ``model`` (optional) is kept if it is the best;
    ``inheritance`` says how the model started from its parent's weights.
    """

    score: float
    metrics: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    inheritance: Inheritance | None = None


@dataclass(frozen=True)
class ParentWeights:
    """A trained parent handed to an estimator that inherits weights: its trial number, its active
    sample and its state dict (as saved by the runner in the study's artifact store)."""

    number: int
    sample: dict[str, Any]
    state: dict[str, Any]


class Estimator(ABC):
    """Scores architectures. The runner calls :meth:`evaluate` once per trial, in the worker process.

    An estimator with ``inherits_weights = True`` is called as ``evaluate(arch, report, parent=...)``
    for a child whose parent's weights are kept, and records what it inherited in its metrics.

    ``evaluate`` may raise :class:`optuna.TrialPruned` when ``report`` says stop, and
    :class:`nas.TrialFailed` (or any exception) when no result can be had; the search loop records
    both and the search goes on.
    """

    #: Whether one evaluation is a lookup or a proxy (milliseconds), not training: TensorBoard then
    #: logs trials in the search's run instead of one run each (thousands of runs make it crawl).
    cheap: bool = False
    #: Whether the models :meth:`evaluate` returns are trained (zero-cost proxies hand back initial weights).
    trains: bool = True

    #: Whether the estimator is given the run's dataset (``dataset=``); table estimators are not.
    needs_data: bool = True
    #: Whether ``evaluate`` takes ``parent=`` (:class:`ParentWeights`) and returns a model whose weights
    #: children may inherit; the runner then keeps completed trials' weights.
    inherits_weights: bool = False
    #: Input shape and class count of the models this estimator builds (for ``best_model()``).
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0
    #: The metric the score is (``val_accuracy`` for training), also recorded under its name; ``None``: unnamed.
    score_metric: str | None = None

    @abstractmethod
    def evaluate(self, arch: Architecture, report: Report) -> Evaluation:
        """Score ``arch``."""

    def describe(self) -> dict[str, Any]:
        """Settings worth recording with the run (fidelity, dataset, ...)."""
        return {}

    def recorded_metrics(self) -> frozenset[str] | None:
        """The metrics every completed trial's record holds (what objectives may name, besides ``score``);
        ``None`` where they are known only once a trial ends (then an objective is not checked before)."""
        return None

    def constraints_after_training(self) -> tuple[Constraint, ...]:
        """The constraints judged on a trained trial's metrics (not on costs measured before training): the
        loop marks a completed trial that breaks one ``feasible: False``. None here; screening declares them."""
        return ()

    def fidelity(self) -> dict[str, Any]:
        """The knobs that make this estimate cheaper than the full one (epochs, data fraction, width, ...),
        recorded with every trial (``TrialRecord.fidelity``) and shown in TensorBoard. Empty: full fidelity."""
        return {}


def never_stop(step: int, value: float, **scalars: float) -> bool:
    """A :data:`Report` for evaluations outside a study (no pruner): every network trains its full budget."""
    return False


def pruned(message: str, *, inheritance: Inheritance | None = None, **metrics: Any) -> optuna.TrialPruned:
    """A :class:`optuna.TrialPruned` carrying what the trial measured before it stopped (cost, epochs),
    which the search loop records with the pruned trial: ``raise pruned("...", seconds=1.2, epochs=3)``."""
    exc = optuna.TrialPruned(message)
    exc.metrics = metrics  # type: ignore[attr-defined]
    exc.inheritance = inheritance  # type: ignore[attr-defined]
    return exc
