"""Typed trial records: what every trial has, as fields; no torch, no Optuna.

A :class:`TrialRecord` is the frozen, storage-independent view of one trial that strategies,
callbacks and users see. What every trial has is a typed field (state, value, curve, cost,
fidelity, inheritance, worker, reason); ``metrics`` holds only what a particular estimator
measured on top (test accuracy, parameters, MACs, epochs, ...).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

from nas.core.architecture import Architecture


class TrialState(str, Enum):
    """How a trial stands. A ``str`` enum: ``record.state == "complete"`` keeps working."""

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Proposal:
    """What :meth:`nas.Strategy.ask` proposes: a sample, and the trial it was bred from (if any).

    A strategy that breeds children from trained parents names the parent; an estimator that
    inherits weights (``TrainingEstimator``) then starts the child from the parent's weights.
    A strategy may also return the bare sample (a mapping); it is read as ``Proposal(sample)``."""

    sample: Mapping[str, Any]
    parent: int | None = None

    def __post_init__(self) -> None:
        if self.parent is not None:
            object.__setattr__(self, "parent", int(self.parent))


class Child(dict):  # type: ignore[type-arg]
    """Deprecated alias of :class:`Proposal` (a sample ``dict`` naming its ``parent``); kept for one release.

    Return ``Proposal(sample, parent=n)`` from ``ask`` instead."""

    def __init__(self, sample: Mapping[str, Any], *, parent: int) -> None:
        warnings.warn("nas.Child is deprecated; return nas.Proposal(sample, parent=...) from Strategy.ask.", DeprecationWarning,
                      stacklevel=2)
        super().__init__(sample)
        self.parent = int(parent)

    def __repr__(self) -> str:
        return f"Child({dict.__repr__(self)}, parent={self.parent})"


#: What :meth:`nas.Strategy.ask` may return.
Asked = Union[Proposal, Mapping[str, Any]]


def as_proposal(asked: Asked) -> Proposal:
    """Read what a strategy's ``ask`` returned as a :class:`Proposal` (a bare sample, a deprecated ``Child``)."""
    if isinstance(asked, Proposal):
        return asked
    if isinstance(asked, Mapping):
        return Proposal(dict(asked), parent=getattr(asked, "parent", None))
    raise TypeError(f"Strategy.ask must return a nas.Proposal or a sample (a mapping of dimension names to values), "
                    f"but got {type(asked).__name__}.")


@dataclass(frozen=True)
class Inheritance:
    """How a child trial started from its parent's trained weights.

    ``morphism`` names the function-preserving morphism applied (``"widen layer2"``), or is ``None``
    when the child took only the tensors whose name and shape match (which changes the function).
    ``fraction`` is the share of the child's parameter elements that came from the parent;
    ``preservation_error`` the relative output difference between parent and child on a probe batch
    before training; ``violated`` is set when a morphism should have preserved the function and did
    not. ``note`` says why nothing was inherited (e.g. the parent's weights were not kept)."""

    parent: int
    morphism: str | None = None
    fraction: float | None = None
    preservation_error: float | None = None
    violated: bool = False
    note: str | None = None

    @property
    def function_preserving(self) -> bool:
        return self.morphism is not None

    @property
    def inherited(self) -> bool:
        return self.fraction is not None

    def describe(self) -> str:
        """``"widen layer2, inherited 100%, error 3.1e-08"``, or the note."""
        if not self.inherited:
            return self.note or "trained from scratch"
        parts = [self.morphism or "inherit by name and shape", f"inherited {100 * float(self.fraction or 0):.0f}%"]
        if self.preservation_error is not None:
            parts.append(f"error {self.preservation_error:.1e}")
        if self.violated:
            parts.append("NOT PRESERVED")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v is not False}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inheritance:
        return cls(parent=int(data["parent"]), morphism=data.get("morphism"), fraction=data.get("fraction"),
                   preservation_error=data.get("preservation_error"), violated=bool(data.get("violated", False)), note=data.get("note"))


@dataclass(frozen=True)
class TrialRecord:
    """One trial: what was tried, how it ended, what it measured and what it cost."""

    number: int
    arch: Architecture
    state: TrialState
    value: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    cost: float | None = None
    parent: int | None = None
    reason: str | None = None
    weights: str | None = None
    worker: str | None = None  # "host:pid" of the process that ran the trial (asked it, in ask/tell)
    curve: tuple[float, ...] = ()
    fidelity: Mapping[str, Any] = field(default_factory=dict)
    inheritance: Inheritance | None = None
    retry_of: int | None = None  # the lost trial (its worker died) this one runs again, same architecture

    def __post_init__(self) -> None:
        if not isinstance(self.state, TrialState):
            try:
                object.__setattr__(self, "state", TrialState(self.state))
            except ValueError:
                raise ValueError(f"`state` must be one of {[s.value for s in TrialState]}, but got {self.state!r}.") from None
        if not isinstance(self.curve, tuple):
            object.__setattr__(self, "curve", tuple(float(v) for v in self.curve))

    @property
    def score(self) -> float | None:
        """The selection value (validation accuracy for the training estimator)."""
        return self.value

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def infeasible(self) -> bool:
        """Refused before training: its costs broke a constraint (failed, its measured costs marked ``infeasible``)."""
        return self.state is TrialState.FAILED and self.metrics.get("infeasible") is True

    @property
    def completed(self) -> bool:
        """Complete with a finite value (what strategies learn from)."""
        return self.state is TrialState.COMPLETE and self.value is not None and math.isfinite(self.value)

    @property
    def eligible(self) -> bool:
        """Completed and within every constraint judged after training (``feasible`` not ``False``): a candidate
        for the best trial, the leaderboard and the Pareto front."""
        return self.completed and self.metrics.get("feasible") is not False


def better(a: TrialRecord, b: TrialRecord | None) -> bool:
    """Whether ``a`` beats ``b`` as the best trial: a higher value, ties to the earlier trial.
    The one rule every 'best' of the project uses (store, result, checkpoint, progress)."""
    if not a.eligible:
        return False
    if b is None or not b.eligible:
        return True
    return (a.value, -a.number) > (b.value, -b.number)  # type: ignore[operator]


def ranked(records: Any) -> list[TrialRecord]:
    """The eligible ``records``, best first, in the order of :func:`better` (leaderboards, top-k)."""
    return sorted((r for r in records if r.eligible), key=lambda r: (-r.value, r.number))  # type: ignore[operator]


def best_of(records: Any) -> TrialRecord | None:
    """The best of ``records`` under :func:`better`, or ``None`` when none completed."""
    best: TrialRecord | None = None
    for record in records:
        if better(record, best):
            best = record
    return best
