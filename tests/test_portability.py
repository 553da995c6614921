"""What must hold off Linux (macOS, Windows) and next to other installs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import nas
from nas.estimators.training import TrainingEstimator, available_cpus

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_affinity(monkeypatch):
    """A platform like macOS or Windows (or Python < 3.13): no affinity mask, only a core count."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)


def test_cpus_without_sched_getaffinity_are_the_core_count(no_affinity, monkeypatch):
    assert available_cpus() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "cannot tell"
    assert available_cpus() == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity mask on this platform")
def test_cpus_follow_the_affinity_mask_where_there_is_one(monkeypatch):
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))


def test_training_estimator_takes_every_core_without_sched_getaffinity(no_affinity, digits_splits):
    TrainingEstimator(space=nas.get_space("mlp"), dataset=digits_splits, device="cpu", threads=None)
    assert torch.get_num_threads() == 3


def test_only_the_helper_asks_for_the_affinity_mask():
    callers = [str(p.relative_to(ROOT)) for folder in ("nas", "search_spaces", "strategies", "experiments")
               for p in (ROOT / folder).rglob("*.py") if "sched_getaffinity(" in p.read_text()]
    assert callers == [str(Path("nas", "estimators", "training.py"))]


def declared_dependencies():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    requirements = pytest.importorskip("packaging.requirements")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    return [requirements.Requirement(d) for d in names]


def pins():
    lines = (line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines())
    return dict(line.split("==") for line in lines if line)


def test_the_package_states_ranges_and_the_pins_lie_in_them():
    for req in declared_dependencies():
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), f"{req} pins a version: pins belong in constraints.txt"
        assert req.name in pins(), f"{req.name} is declared but not pinned in constraints.txt"
        assert req.specifier.contains(pins()[req.name], prereleases=True), f"the pin {req.name}=={pins()[req.name]} is outside {req}"


def test_make_test_oldest_runs_the_oldest_optuna_we_claim():
    oldest = next(line.split(":=")[1].strip() for line in (ROOT / "Makefile").read_text().splitlines()
                  if line.startswith("OPTUNA_OLDEST"))
    version = pytest.importorskip("packaging.version")
    (optuna,) = (req for req in declared_dependencies() if req.name == "optuna")
    (lower,) = (spec for spec in optuna.specifier if spec.operator == ">=")
    assert version.Version(lower.version) == version.Version(oldest), f"pyproject.toml claims {optuna}, make test-oldest runs {oldest}"
