"""CPU thread settings side by side: the same trials, alone and beside another training process.

    .venv/bin/python experiments/cpu_threads.py [--epochs 5] [--archs 2] [--repeats 2] [--out runs/cpu_threads.json]

Each setting runs in a fresh process (OpenMP reads its environment once, when torch loads):
- ``threads=all``: torch on every core this process may use, OpenMP's default wait policy
  (worker threads spin on a core after each parallel region), what ``estimator.threads`` gave before;
- ``threads=all, OMP_WAIT_POLICY=PASSIVE``: every core, worker threads sleep instead of spinning;
- ``threads=1``: one intra-op thread, no OpenMP team at all (the wait policy cannot matter);
- ``threads=1, interop=1``: also one inter-op thread (torch's pool for ``torch.jit.fork`` and the like).

Each process trains the same ``--archs`` architectures of the default search (macro_chain on
digits, the default estimator but ``--epochs`` epochs) and prints seconds and validation accuracy
per trial. "Alone" is the machine as it is; "beside a neighbour" starts another process that
trains the same way with torch's defaults (every core, spinning threads) for the whole measurement,
the situation of a shared workstation or a second search. Settings alternate within each repeat,
so drift of the machine hits them alike. Figures: median seconds per trial for each setting and
condition, and the accuracies (they must agree for settings with the same thread count).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "threads=all": {"threads": 0, "env": {}},
    "threads=all, OMP_WAIT_POLICY=PASSIVE": {"threads": 0, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "threads=1": {"threads": 1, "env": {}},
    "threads=1, interop=1": {"threads": 1, "interop": 1, "env": {}},
}
CLEARED = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def child(threads: int, interop: int | None, epochs: int, archs: int, forever: bool) -> None:
    import numpy as np
    import torch

    if interop:
        torch.set_num_interop_threads(interop)
    import nas
    from nas.core.architecture import Architecture
    from nas.datasets import digits

    space = nas.get_space("macro_chain")
    estimator = nas.TrainingEstimator(space=space, dataset=digits(), epochs=epochs, threads=threads or None, device="cpu",
                                      weight_decay=1e-4, label_smoothing=0.1)
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(archs)]
    while True:
        for sample in samples:
            arch = Architecture(space=space.name, sample=sample, key=space.key(sample))
            start = time.perf_counter()
            result = estimator.evaluate(arch, lambda step, value, **_: False)
            if not forever:
                print(json.dumps({"seconds": time.perf_counter() - start, "val_accuracy": result.score,
                                  "threads": torch.get_num_threads()}), flush=True)
        if not forever:
            return


def run_setting(name: str, args: argparse.Namespace) -> list[dict]:
    setting = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | setting["env"]
    cmd = [sys.executable, __file__, "--child", "--threads", str(setting["threads"]), "--epochs", str(args.epochs),
           "--archs", str(args.archs)]
    if setting.get("interop"):
        cmd += ["--interop", str(setting["interop"])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def start_neighbour(args: argparse.Namespace) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return subprocess.Popen([sys.executable, __file__, "--child", "--forever", "--threads", "0", "--epochs", "5", "--archs", "3"],
                            env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--archs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="runs/cpu_threads.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--forever", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--interop", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.threads, args.interop, args.epochs, args.archs, args.forever)
        return

    results: dict[str, dict[str, list[dict]]] = {"alone": {n: [] for n in SETTINGS}, "beside a neighbour": {n: [] for n in SETTINGS}}
    for condition in results:
        neighbour = start_neighbour(args) if condition != "alone" else None
        try:
            if neighbour is not None:
                time.sleep(5)  # let it import torch and start training
            for repeat in range(args.repeats):
                order = list(SETTINGS) if repeat % 2 == 0 else list(reversed(SETTINGS))
                for name in order:
                    rows = run_setting(name, args)
                    results[condition][name] += rows
                    print(f"{condition:>18} | {name:<38} | " + "  ".join(f"{r['seconds']:6.2f}s acc {r['val_accuracy']:.4f}" for r in rows),
                          flush=True)
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()

    print(f"\nmedian seconds per {args.epochs}-epoch trial ({os.cpu_count()} cores; {args.archs} architectures x {args.repeats} repeats)")
    print(f"{'setting':<40}{'alone':>10}{'beside a neighbour':>22}{'slow-down':>12}  accuracies")
    summary = {}
    for name in SETTINGS:
        alone = statistics.median(r["seconds"] for r in results["alone"][name])
        shared = statistics.median(r["seconds"] for r in results["beside a neighbour"][name])
        accs = sorted({round(r["val_accuracy"], 4) for c in results.values() for r in c[name]})
        summary[name] = {"alone_s": alone, "neighbour_s": shared, "slowdown": shared / alone, "accuracies": accs}
        print(f"{name:<40}{alone:>9.2f}s{shared:>21.2f}s{shared / alone:>11.1f}x  {accs}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "trials": results, "epochs": args.epochs}, indent=1))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
