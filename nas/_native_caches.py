"""Bounds on the two native caches behind torch's CPU convolutions, so one long search stays flat.

Every new convolution shape (a new architecture, a new width) adds entries to two caches that torch
keeps for the life of the process: oneDNN's primitive cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``,
1024 entries by default) and ideep's LRU cache of convolution set-ups (``LRU_CACHE_CAPACITY``, 1024).
A search builds hundreds of networks of different shapes, so both fill for hundreds of trials:
300 one-epoch trials of ``macro_chain`` grew a process by 89.8 MB (``experiments/memory_growth.py``),
all of it in live native allocations (``mallinfo2``) while Python objects stayed flat. Bounded at
512 and 256 entries, live allocations stay flat after a few dozen trials. Tighter bounds cost time:
with 256 and 64, ``experiments/overhead.py`` measured 50.1 ms a trial outside training (torch's
defaults 45.3 ms, these 43.1 ms, on a drifting machine); a trial's own convolutions must stay cached.

Both libraries read their variable when the first convolution runs, so ``import nas`` sets them
(only where unset: a value of the user's own wins), and a convolution run before that keeps torch's
defaults. Worker processes inherit them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

CAPACITIES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": 512, "LRU_CACHE_CAPACITY": 256}


def bound_native_caches(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set each cache's capacity in ``environ`` unless already set; returns the values in force."""
    for name, capacity in CAPACITIES.items():
        environ.setdefault(name, str(capacity))
    return {name: environ[name] for name in CAPACITIES}
