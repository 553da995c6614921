"""`import nas` bounds torch's two native convolution caches (nas/_native_memory.py), and leaves a
user's own setting alone; the heap a trial freed is given back to the system, at most every 10 s.
The memory this saves is measured by experiments/memory_growth.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from nas import _native_memory
from nas._native_memory import CAPACITIES, bound_native_caches, give_back_freed_heap

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


def test_freed_heap_is_given_back_at_most_every_interval(monkeypatch):
    calls, now = [], [1000.0]
    monkeypatch.setattr(_native_memory, "_TRIM", calls.append)
    monkeypatch.setattr(_native_memory, "_last_trim", -float("inf"))
    monkeypatch.setattr(_native_memory.time, "monotonic", lambda: now[0])
    assert give_back_freed_heap(every=10) and calls == [0]
    now[0] += 9
    assert not give_back_freed_heap(every=10) and calls == [0]  # a trial of lookups pays nothing
    now[0] += 2
    assert give_back_freed_heap(every=10) and calls == [0, 0]


FRAGMENTED = textwrap.dedent("""
    from nas._native_memory import give_back_freed_heap
    def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    blocks = [bytes(1000) + bytes([i % 251]) for i in range(200_000)]  # 200 MB in 1-kB blocks of the C heap
    kept = blocks[::50]; del blocks  # one in 50 stays: freed heap glibc keeps between them
    before = rss(); done = give_back_freed_heap(every=0); after = rss()
    print(done, before, after)
""")


@pytest.mark.skipif(_native_memory._TRIM is None, reason="needs glibc's malloc_trim")
def test_the_heap_freed_between_live_blocks_goes_back_to_the_system():
    done, before, after = subprocess.run([sys.executable, "-c", FRAGMENTED], capture_output=True, text=True, check=True).stdout.split()
    assert done == "True" and float(before) - float(after) > 100, (before, after)  # MB
