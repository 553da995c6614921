"""The arrows of DESIGN.md: nas/ knows no space or strategy; spaces and strategies never meet."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"nas": {"search_spaces", "strategies", "experiments"},
             "search_spaces": {"strategies", "experiments"},
             "strategies": {"search_spaces", "experiments"}}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_arrows(package):
    offenders = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN[package])
                 for p in (ROOT / package).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_strategies_never_build_candidate_models():
    """Strategies see dimensions and samples only (a controller may own a torch policy, never a candidate)."""
    calls = {str(p.relative_to(ROOT)) for p in (ROOT / "strategies").rglob("*.py")
             for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "build"}
    assert calls == set()
