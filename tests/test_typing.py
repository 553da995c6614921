"""The modules that are mypy-clean stay so (``mypy`` with the settings of pyproject.toml)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Grows as modules become clean; at the end this is all of nas/ (`mypy` with no arguments).
CLEAN = ["nas/_config.py", "nas/_training.py", "nas/curves.py", "nas/fidelity.py", "nas/morphisms.py"]


def test_clean_modules_have_no_mypy_errors(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy comes with the `test` extra")
    try:
        metadata.version("scipy-stubs")
    except metadata.PackageNotFoundError:
        pytest.skip("scipy's types (scipy-stubs, the `test` extra on Python 3.11+) are not installed")
    monkeypatch.chdir(ROOT)  # pyproject.toml's [tool.mypy] and the cache next to it
    # Errors of the modules they import are another module's business: silent, so only these are judged.
    stdout, stderr, status = api.run(["--follow-imports=silent", *CLEAN])
    assert status == 0, stdout + stderr
