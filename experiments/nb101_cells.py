"""Count NAS-Bench-101's cells through the `cell_nb101` space: its grid's distinct keys against the 423,624 the benchmark lists.

    .venv/bin/python experiments/nb101_cells.py            # about 7 minutes on one core

The space's grid walks every valid cell with at most 9 edges, all on input-to-output paths (every key of
the space, as pruning leaves each cell so). The number of distinct keys (NAS-Bench-101's graph hash of the
pruned spec) must equal the benchmark's count of unique models: 423,624 (Ying et al. 2019, section 2.2).
Also prints how often a uniform draw of the 26 dimensions is a valid cell (the rest are redrawn).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import nas

PUBLISHED = 423_624


def main() -> int:
    space = nas.get_space("cell_nb101", network=None)
    rng = np.random.default_rng(0)
    draws = 100_000
    valid = sum(space.is_valid({n: d.sample(rng) for n, d in space.dimensions().items()}) for _ in range(draws))
    print(f"uniform draws that are valid cells: {valid / draws:.1%} of {draws:,}")
    start, points, keys = time.perf_counter(), 0, set()
    for sample in space.grid():
        points += 1
        keys.add(space.key(sample))
        if points % 200_000 == 0:
            print(f"  {points:,} grid points, {len(keys):,} keys, {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    print(f"grid: {points:,} points, {len(keys):,} distinct keys in {seconds:.0f} s; NAS-Bench-101 lists {PUBLISHED:,}: "
          + ("equal" if len(keys) == PUBLISHED else "DIFFERENT"))
    return 0 if len(keys) == PUBLISHED else 1


if __name__ == "__main__":
    sys.exit(main())
