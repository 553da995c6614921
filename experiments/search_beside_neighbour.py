"""A fresh clone's `make search`, alone and beside another training process: how much does sharing cost?

    .venv/bin/python experiments/search_beside_neighbour.py [--repo .] [--args "budget.trials=30"]

Clones ``--repo`` (its committed HEAD) into a temporary folder twice and times ``make search`` in
each, set-up included (virtual environment, pinned install, the default search): once on the
machine as it is, once while a neighbour trains without pause (``experiments/cpu_threads.py``'s
neighbour: torch's defaults, every core, spinning OpenMP threads; the worst kind of co-tenant).
Prints both wall times, their ratio (target: at most 2) and each run's best trial; the search part
is read from the progress line's elapsed time.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_search(repo: Path, args: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="nas-fresh-") as tmp:
        clone = Path(tmp) / "nas"
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        start = time.perf_counter()
        cmd = ["make", "search"] + ([f"ARGS={args}"] if args else [])
        done = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"make search failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("trial ")]
        elapsed = re.search(r"elapsed (\d+):(\d+):(\d+)", lines[-1]) if lines else None
        search_s = (int(elapsed[1]) * 3600 + int(elapsed[2]) * 60 + int(elapsed[3])) if elapsed else float("nan")
        best = re.search(r"best ([0-9.]+) \(#(\d+)\)", lines[-1]) if lines else None
        return {"seconds": seconds, "search_s": search_s, "best": f"{best[1]} (#{best[2]})" if best else "?", "last": lines[-1] if lines else ""}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repo", default=str(HERE.parent))
    p.add_argument("--args", default="", help="ARGS passed to make search (Hydra overrides)")
    args = p.parse_args()
    repo = Path(args.repo).resolve()

    alone = make_search(repo, args.args)
    print(f"alone:              make search {alone['seconds']:6.1f} s (search {alone['search_s']} s), best {alone['best']}\n    {alone['last']}",
          flush=True)
    neighbour = subprocess.Popen([sys.executable, str(HERE / "cpu_threads.py"), "--child", "--forever", "--threads", "0", "--epochs", "5",
                                  "--archs", "3"], env={k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
                                 stdout=subprocess.DEVNULL)
    try:
        time.sleep(5)
        shared = make_search(repo, args.args)
    finally:
        neighbour.kill()
        neighbour.wait()
    print(f"beside a neighbour: make search {shared['seconds']:6.1f} s (search {shared['search_s']} s), best {shared['best']}\n    {shared['last']}")
    print(f"ratio beside / alone: {shared['seconds'] / alone['seconds']:.2f} (target <= 2); search part "
          f"{shared['search_s'] / alone['search_s']:.2f}; ARGS {shlex.quote(args.args) if args.args else '(none)'}")


if __name__ == "__main__":
    main()
