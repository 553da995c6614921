"""Native memory of one long search: torch's convolution caches bounded, freed heap given back.

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

What is left is heap that trials freed and glibc keeps: the resident size wandered by tens of MB
(+41 and +65 MB over 300 trials in two runs) while live allocations grew 2.4 MB.
:func:`give_back_freed_heap` returns it to the system (``malloc_trim``, about 1.5 ms) after a trial,
at most every :data:`TRIM_EVERY` seconds, so a search of lookups pays nothing per trial.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, MutableMapping

CAPACITIES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": 512, "LRU_CACHE_CAPACITY": 256}


def bound_native_caches(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set each cache's capacity in ``environ`` unless already set; returns the values in force."""
    for name, capacity in CAPACITIES.items():
        environ.setdefault(name, str(capacity))
    return {name: environ[name] for name in CAPACITIES}


#: Seconds between two gives-back of freed heap, at most.
TRIM_EVERY = 10.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None


_TRIM = _malloc_trim()
_last_trim = -float("inf")


def give_back_freed_heap(every: float = TRIM_EVERY) -> bool:
    """Return the heap freed since (glibc's ``malloc_trim(0)``) unless it was done less than
    ``every`` seconds ago; whether it was done now."""
    global _last_trim
    now = time.monotonic()
    if _TRIM is None or now - _last_trim < every:
        return False
    _last_trim = now
    _TRIM(0)
    return True
