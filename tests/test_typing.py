"""``nas/`` stays mypy-clean (``mypy`` with the settings of pyproject.toml: ``files = ["nas"]``)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_nas_has_no_mypy_errors(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy comes with the `test` extra")
    try:
        metadata.version("scipy-stubs")
    except metadata.PackageNotFoundError:
        pytest.skip("scipy's types (scipy-stubs, the `test` extra on Python 3.11+) are not installed")
    monkeypatch.chdir(ROOT)  # pyproject.toml's [tool.mypy] and the cache next to it
    stdout, stderr, status = api.run([])  # no arguments: the files pyproject.toml names, all of nas/
    assert status == 0 and "Success: no issues found" in stdout, stdout + stderr
