"""`import nas` bounds torch's two native convolution caches (nas/_native_caches.py), and leaves a
user's own setting alone. The memory this saves is measured by experiments/memory_growth.py."""

from __future__ import annotations

import os
import subprocess
import sys

from nas._native_caches import CAPACITIES, bound_native_caches

SHOW = "import os, nas; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'], os.environ['LRU_CACHE_CAPACITY'])"


def _import_nas(**extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in CAPACITIES} | extra
    return subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True).stdout.split()


def test_import_nas_sets_both_capacities_where_unset():
    assert _import_nas() == ["512", "256"]


def test_a_users_own_capacity_wins():
    assert _import_nas(LRU_CACHE_CAPACITY="1024") == ["512", "1024"]


def test_bound_native_caches_reports_what_is_in_force():
    environ = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"}
    assert bound_native_caches(environ) == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0", "LRU_CACHE_CAPACITY": "256"}
    assert environ["LRU_CACHE_CAPACITY"] == "256"
