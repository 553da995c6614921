"""``nas.audit(result)``: the top candidates of a finished search and benchmark models, side by side, on one
split: per-class figures, slices, fairness, calibration and robustness. Everything is checked before any
computation; see :mod:`nas.model_audit` for what each part measures."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.model_audit.baselines import baseline_probabilities, check_baselines
from nas.model_audit.errors import autocorrelation, error_table, feature_quartiles
from nas.model_audit.sensitivity import check_features, occlusion, partial_dependence
from nas.model_audit.metrics import calibration, classification, predict_proba
from nas.model_audit.robustness import ATTACKS, check_strengths, random_inputs, robust_accuracy
from nas.model_audit.slices import check_groups, crossed, derived_slices, fairness, slice_table
from nas.core.errors import ConfigError
from nas.core.records import ranked

__all__ = ["AuditSettings", "audit", "run_dataset"]


@dataclass(frozen=True)
class AuditSettings:
    """What an audit computes (``nas-audit ... audit.<key>=...``); checked when made."""

    top_k: int = 3
    trials: tuple[int, ...] = ()  # these trials (numbers) instead of the top_k, e.g. members of a Pareto front
    split: str = "test"
    slices: tuple[str, ...] = ()  # names of the dataset's group arrays (g_test_<name>) audited as slices and groups
    baselines: tuple[str, ...] = ("majority", "logistic", "knn")
    human_level: float | None = None
    attacks: tuple[str, ...] = ATTACKS
    noise: tuple[float, ...] = (0.1, 0.3, 1.0)
    epsilons: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
    pgd_steps: int = 10
    random_inputs: int = 10_000
    features: tuple[int, ...] = ()  # input features (indices, flattened) for partial dependence, ICE and error analysis
    occlusion: bool = True  # image regions / signal windows masked in turn (inputs of shape (C, H, W) or (C, L))
    ordered: bool = False  # the split's order is time: error autocorrelation in stream order
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        def positive_int(key: str, value: Any, low: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"`audit.{key}` must be an integer >= {low}, but got {value!r}.")

        positive_int("top_k", self.top_k, 1)
        positive_int("pgd_steps", self.pgd_steps, 1)
        positive_int("random_inputs", self.random_inputs, 0)
        positive_int("resamples", self.resamples, 10)
        positive_int("seed", self.seed, 0)
        trials = [self.trials] if isinstance(self.trials, int) else list(self.trials)
        if any(isinstance(t, bool) or not isinstance(t, int) for t in trials):
            raise ConfigError(f"`audit.trials` must be a list of trial numbers, but got {self.trials!r}.")
        object.__setattr__(self, "trials", tuple(trials))
        if self.split not in ("test", "val"):
            raise ConfigError(f"`audit.split` must be 'test' or 'val', but got {self.split!r}.")
        object.__setattr__(self, "baselines", check_baselines(list(self.baselines)))
        object.__setattr__(self, "noise", check_strengths("audit.noise", self.noise))
        object.__setattr__(self, "epsilons", check_strengths("audit.epsilons", self.epsilons))
        attacks = [self.attacks] if isinstance(self.attacks, str) else list(self.attacks)
        unknown = [a for a in attacks if a not in ATTACKS]
        if unknown:
            raise ConfigError(f"`audit.attacks` must name some of {', '.join(ATTACKS)}, but got {unknown[0]!r}.")
        object.__setattr__(self, "attacks", tuple(attacks))
        slices = [self.slices] if isinstance(self.slices, str) else list(self.slices)
        if not all(isinstance(s, str) for s in slices):
            raise ConfigError(f"`audit.slices` must name group arrays of the dataset (g_test_<name>), but got {self.slices!r}.")
        object.__setattr__(self, "slices", tuple(slices))
        features = [self.features] if isinstance(self.features, int) else list(self.features)
        if any(isinstance(f, bool) or not isinstance(f, int) or f < 0 for f in features):
            raise ConfigError(f"`audit.features` must be a list of input feature indices (integers >= 0), but got {self.features!r}.")
        object.__setattr__(self, "features", tuple(features))
        for key in ("occlusion", "ordered"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"`audit.{key}` must be true or false, but got {getattr(self, key)!r}.")
        h = self.human_level
        if h is not None and (isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h <= 1):
            raise ConfigError(f"`audit.human_level` must be an accuracy between 0 and 1, but got {h!r}.")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AuditSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"`audit.{unknown[0]}` is not an audit setting; the settings are {', '.join(sorted(known))}.")
        converted: dict[str, Any] = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
        return cls(**converted)


@dataclass
class Candidate:
    """One model the audit measures: a searched network (``trial`` set) or a baseline (``model`` None)."""

    name: str
    kind: str  # "candidate" or "baseline"
    trial: int | None = None
    model: Any = None
    architecture: str = ""
    search_score: float | None = None
    params: int | None = None
    proba: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def run_dataset(result: Any) -> Any:
    """The run's dataset, rebuilt from its resolved ``config.yaml`` as the search saw it (downscaled when the search
    was); refused when the search was given a dataset object, which the config does not describe."""
    from omegaconf import OmegaConf

    from nas._config import instantiate

    run_dir = Path(result.run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise ConfigError(f"`run_dir` must hold config.yaml (written when a search starts), but {str(run_dir)!r} has none; pass dataset=.")
    cfg = OmegaConf.load(config)
    described = dict(result.meta.get("estimator") or {})
    splits = instantiate(cfg.dataset, kind=f"dataset '{cfg.dataset.get('_target_', '?')}'")  # type: ignore[union-attr]
    if described.get("dataset") not in (None, splits.name):
        raise ConfigError(f"the search in {str(run_dir)!r} trained on dataset {described.get('dataset')!r}, given as an object, which "
                          f"its config does not describe (it names {splits.name!r}); pass it: nas.audit(result, dataset=...).")
    scale = described.get("input_scale", 1.0)
    return splits.downscaled(scale) if isinstance(scale, (int, float)) and scale != 1 else splits


def _candidates(result: Any, top_k: int, trials: Sequence[int], notes: list[str]) -> list[Candidate]:
    out: list[Candidate] = []
    order = ranked(result.trials)
    if trials:
        by_number = {r.number: r for r in result.trials}
        missing = [n for n in trials if n not in by_number or not by_number[n].completed]
        if missing:
            raise ConfigError(f"`audit.trials` must name completed trials of the run, but #{missing[0]} is not one.")
        order, top_k = [by_number[n] for n in trials], len(trials)
    for rank, record in enumerate(order, 1):
        if len(out) == top_k:
            break
        try:
            model = result.best_model(trial=record.number, preprocess=False)
        except (ValueError, FileNotFoundError) as exc:
            if trials:
                raise ConfigError(f"`audit.trials`: trial #{record.number} has no kept weights ({exc}).") from None
            notes.append(f"trial #{record.number} (rank {rank}) has no kept weights (a search keeps the best `keep_models` "
                         f"under top/): left out")
            continue
        out.append(Candidate(name=f"trial #{record.number}", kind="candidate", trial=record.number, model=model,
                             architecture=result.space.format(record.arch.sample), search_score=record.value,
                             params=sum(p.numel() for p in model.parameters())))
    if not out:
        raise ConfigError(f"`run_dir` {str(result.run_dir)!r} must hold a trained model (best/ or top/<n>/weights.pt), but none of its "
                          f"{len(result.trials)} trials has one kept.")
    return out


def audit(result: Any, *, slices: Mapping[str, Any] | Sequence[str] | None = None, dataset: Any = None,
          out_dir: str | Path | None = None, tensorboard: bool = True, progress: Callable[[str], None] | None = print,
          settings: AuditSettings | None = None, **options: Any) -> Any:
    """Audit the ``top_k`` candidates of ``result`` (a :class:`nas.SearchResult` or a run directory) and the
    ``baselines`` on ``split``; write ``audit/report.md``, ``audit/report.json``, pictures and TensorBoard
    events (``tb/audit``) in the run directory (or ``out_dir``); return the :class:`~nas.model_audit.report.AuditReport`.

    ``options`` are :class:`AuditSettings` (``top_k=3``, ``baselines=["majority", "logistic"]``,
    ``human_level=0.95``, ``attacks``, ``noise``, ``epsilons``, ...), or pass ``settings``. ``slices``:
    per-example arrays of the split (``{"group": g_test}``) or names of the dataset's group arrays (``["group"]``
    for an npz's ``g_test_group``); each is a slice and a fairness group. ``dataset``: the search's, when it was
    given as an object (else rebuilt from the run's config)."""
    from nas._results import load
    from nas.model_audit.report import AuditReport

    started = time.perf_counter()
    say = progress or (lambda text: None)
    if settings is None:
        named = list(slices) if slices is not None and not isinstance(slices, Mapping) else []
        settings = AuditSettings.from_mapping({**options, **({"slices": named} if named else {})})
    elif options:
        raise ConfigError(f"`settings` and options ({', '.join(sorted(options))}) were both given; give one of them.")
    if not hasattr(result, "trials"):
        result = load(result)
    if result.run_dir is None and out_dir is None:
        raise ConfigError("`out_dir` must be given for a result without a run directory.")
    splits = dataset if dataset is not None else run_dataset(result)
    from nas.datasets import as_splits

    splits = as_splits(splits)
    x, y = getattr(splits, f"x_{settings.split}"), getattr(splits, f"y_{settings.split}")
    labels = y.numpy()
    user = check_groups(slices if isinstance(slices, Mapping) else None, len(labels))
    kept = splits.groups.get(settings.split, {})
    for name in settings.slices:
        if name not in kept:
            raise ConfigError(f"`audit.slices` names {name!r}, but dataset {splits.name!r} has no such group array for its "
                              f"{settings.split} split ({', '.join(sorted(kept)) or 'none'}; an npz file holds them as g_{settings.split}_<name>).")
        user[name] = np.asarray(kept[name])
    check_groups(user, len(labels))
    check_features(settings.features, tuple(x.shape[1:]))
    notes: list[str] = []
    models = _candidates(result, settings.top_k, settings.trials, notes)
    if tuple(models[0].model(x[:2]).shape) != (2, splits.num_classes):
        raise ConfigError(f"the dataset's {settings.split} split (inputs {tuple(x.shape[1:])}, {splits.num_classes} classes) does not "
                          f"match the searched networks (output {tuple(models[0].model(x[:2]).shape[1:])}); pass the search's dataset=.")
    say(f"audit: {len(models)} candidate(s) and {len(settings.baselines)} baseline(s) on the {settings.split} split of "
        f"{splits.name} ({len(labels)} examples)")
    for name in settings.baselines:
        models.append(Candidate(name=name, kind="baseline", proba=baseline_probabilities(name, splits, split=settings.split,
                                                                                            seed=settings.seed)))
    sections = []
    for m in models:
        began = time.perf_counter()
        if m.model is not None:
            m.proba = predict_proba(m.model, x)
        section = _measure(m, splits, x, y, labels, user, settings)
        section["seconds"] = time.perf_counter() - began
        sections.append(section)
        say(f"audit: {m.name}: accuracy {section['classification']['accuracy']:.4f}, ECE {section['calibration']['ece']:.4f} "
            f"({section['seconds']:.1f} s)")
    report = AuditReport(run_dir=str(result.run_dir) if result.run_dir is not None else None, dataset=splits.name,
                         split=settings.split, examples=len(labels), settings=settings, models=sections,
                         human_level=settings.human_level, notes=notes, seconds=time.perf_counter() - started)
    report.networks = {m.name: m.model for m in models if m.model is not None}
    report.inputs = x
    folder = Path(out_dir) if out_dir is not None else Path(result.run_dir) / "audit"
    report.write(folder, tensorboard_dir=(folder.parent / "tb" / "audit") if tensorboard else None)
    say(f"audit: written to {folder}/report.md ({report.seconds:.1f} s)")
    return report


def _measure(m: Candidate, splits: Any, x: Any, y: Any, labels: np.ndarray, user: Mapping[str, np.ndarray],
             settings: AuditSettings) -> dict[str, Any]:
    proba = m.proba
    correct = proba.argmax(axis=1) == labels
    section: dict[str, Any] = {"name": m.name, "kind": m.kind, "trial": m.trial, "architecture": m.architecture,
                               "search_score": m.search_score, "params": m.params,
                               "classification": classification(labels, proba, splits.num_classes, resamples=settings.resamples,
                                                                seed=settings.seed),
                               "calibration": calibration(labels, proba)}
    everything = {**derived_slices(x.numpy(), labels, proba), **user, **crossed(user, labels)}
    section["slices"] = slice_table(correct, everything, resamples=settings.resamples, seed=settings.seed)
    section["fairness"] = {name: fairness(labels, proba, values) for name, values in user.items()}
    tags = {**user, **feature_quartiles(x.numpy(), list(settings.features))}
    section["errors"] = {"tags": error_table(correct, tags, human_level=settings.human_level) if tags else [],
                         "autocorrelation": autocorrelation(correct) if settings.ordered else None}
    if m.model is not None:
        sensitivity: dict[str, Any] = {}
        sample = slice(0, min(len(labels), 200))  # partial dependence and occlusion on the first 200 examples
        if settings.features:
            sensitivity["partial_dependence"] = partial_dependence(m.model, x[sample], splits.x_train, settings.features)
        if settings.occlusion and x.dim() in (3, 4):
            sensitivity["occlusion"] = occlusion(m.model, x[sample], labels[sample])
        section["sensitivity"] = sensitivity
        robustness: dict[str, Any] = {}
        for attack in settings.attacks:
            strengths = settings.noise if attack == "noise" else settings.epsilons
            robustness[attack] = robust_accuracy(m.model, x, y, attack, (0.0, *strengths), steps=settings.pgd_steps, seed=settings.seed)
        if settings.random_inputs:
            robustness["random_inputs"] = random_inputs(m.model, splits.x_train, count=settings.random_inputs, seed=settings.seed)
        section["robustness"] = robustness
    return section
