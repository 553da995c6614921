"""Bounds on the two native caches behind torch's CPU convolutions, so one long search stays flat.

Every new convolution shape (a new architecture, a new width) adds entries to two caches that torch
keeps for the life of the process: oneDNN's primitive cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``,
1024 entries by default) and ideep's LRU cache of convolution set-ups (``LRU_CACHE_CAPACITY``, 1024).
A search builds hundreds of networks of different shapes, so both fill for hundreds of trials:
300 one-epoch trials of ``macro_chain`` grew a process by 89.8 MB (``experiments/memory_growth.py``),
all of it in live native allocations (``mallinfo2``) while Python objects stayed flat. One trial
needs a few dozen entries, so smaller bounds cost nothing measurable (12 trials of ``cell_nb201``:
10.4-10.5 s against 10.8-10.9 s with the defaults).

Both libraries read their variable when the first convolution runs, so ``import nas`` sets them
(only where unset: a value of the user's own wins), and a convolution run before that keeps torch's
defaults. Worker processes inherit them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

CAPACITIES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": 256, "LRU_CACHE_CAPACITY": 64}


def bound_native_caches(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set each cache's capacity in ``environ`` unless already set; returns the values in force."""
    for name, capacity in CAPACITIES.items():
        environ.setdefault(name, str(capacity))
    return {name: environ[name] for name in CAPACITIES}
