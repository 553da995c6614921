"""The arrows of DESIGN.md, checked by parsing imports with ``ast``:

- ``nas/`` knows no space or strategy; spaces and strategies never meet;
- ``nas.core`` imports neither torch nor Optuna nor anything of nas outside ``nas.core``;
- nothing outside ``nas.contrib`` imports it (the deprecated module aliases excepted);
- only ``nas.store`` touches Optuna's storages and studies (``import optuna`` elsewhere is for
  pruners, samplers and ``TrialPruned``, never a study of its own);
- strategies see only ``nas.core``: dimensions, flat samples, the contracts and the records.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"nas": {"search_spaces", "strategies", "experiments"},
             "search_spaces": {"strategies", "experiments"},
             "strategies": {"search_spaces", "experiments"}}
ALIASES = {"nas/benchmarks.py", "nas/curves.py", "nas/fidelity.py", "nas/morphisms.py", "nas/zero_cost.py"}  # deprecated paths, one release


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module ``path`` imports (absolute imports; function-level ones too unless ``top_level_only``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_arrows(package):
    offenders = {rel(p): sorted(roots(imports(p)) & FORBIDDEN[package]) for p in files(package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_core_imports_no_torch_no_optuna_and_nothing_of_ours_outside_it():
    """Module level: the core loads with numpy alone. (``SearchSpace.inherit``'s default imports the
    morphism primitives when called: building a torch model is a space's job, not the core's.)"""
    offenders = {}
    for p in files("nas/core"):
        bad = {n for n in imports(p, top_level_only=True) if n.split(".")[0] in ("torch", "optuna")
               or (n.startswith("nas") and not n.startswith("nas.core"))}
        lazy = {n for n in imports(p) - imports(p, top_level_only=True) if n.startswith("nas") and n != "nas.inheritance.morphisms"
                and not n.startswith("nas.core")}
        if bad | lazy:
            offenders[rel(p)] = sorted(bad | lazy)
    assert offenders == {}


def test_nothing_outside_contrib_imports_it():
    offenders = {rel(p): sorted(n for n in imports(p) if n.startswith("nas.contrib"))
                 for p in files("nas") if "contrib" not in p.parts and rel(p) not in ALIASES and p.name != "__init__.py"}
    assert {k: v for k, v in offenders.items() if v} == {}
    init = imports(ROOT / "nas" / "__init__.py", top_level_only=True)
    assert not {n for n in init if n.startswith("nas.contrib")}  # `import nas` loads no contrib (LearningCurvePruner is lazy)


def test_only_the_store_opens_optuna_studies_and_storages():
    calls = {"create_study", "load_study", "RDBStorage", "JournalStorage", "InMemoryStorage", "get_storage"}
    offenders = {}
    for p in files("nas"):
        if "store" in p.parts or rel(p) == "nas/testing.py":  # the contract checks the sampler adapter in a user's own study
            continue
        used = {node.attr for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.Attribute) and node.attr in calls}
        if used:
            offenders[rel(p)] = sorted(used)
    assert offenders == {}


def test_strategies_see_only_the_core():
    offenders = {rel(p): sorted(n for n in imports(p) if n.split(".")[0] == "nas" and not n.startswith("nas.core"))
                 for p in files("strategies")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_strategies_never_build_candidate_models():
    """Strategies see dimensions and samples only (a controller may own a torch policy, never a candidate)."""
    calls = {rel(p) for p in files("strategies")
             for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "build"}
    assert calls == set()


def test_the_rules_reject_what_they_forbid(tmp_path):
    """The checks bite: a core module importing torch, and a strategy importing nas.engine, are found."""
    bad_core = tmp_path / "core.py"
    bad_core.write_text("import torch\nfrom nas.engine.loop import SearchLoop\n")
    assert {"torch", "nas.engine.loop"} <= imports(bad_core, top_level_only=True)
    bad_strategy = tmp_path / "strategy.py"
    bad_strategy.write_text("def f():\n    from nas.store import open_store\n")
    assert "nas.store" in imports(bad_strategy) and "nas.store" not in imports(bad_strategy, top_level_only=True)
