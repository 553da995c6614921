"""Latency of the same networks in PyTorch and through their ONNX export under onnxruntime (one CPU thread).

    .venv/bin/python experiments/onnx_latency.py [--space macro_chain] [--shape 1 8 8] [--count 20] [--repeats 50]

Draws ``--count`` random architectures of the space (seed 0), builds each for ``--shape`` and 10 classes, and
times one input through both runtimes with ``nas.costs.LatencyCost`` (the provider ``costs=[latency]`` uses:
warm-up, repeats, median and interquartile range). Prints a table and the median ratio; run it alone.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="macro_chain")
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 8, 8])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    import torch

    import nas
    from nas.costs import LatencyCost

    torch.set_num_threads(1)
    space = nas.get_space(args.space)
    eager = LatencyCost(warmup=10, repeats=args.repeats, threads=1)
    onnx = LatencyCost(warmup=10, repeats=args.repeats, threads=1, runtime="onnxruntime")
    rng = np.random.default_rng(0)
    rows, ratios, eager_ms, onnx_ms = [], [], [], []
    for i in range(args.count):
        sample = space.sample(rng)
        model = space.build(sample, tuple(args.shape), 10).eval()
        a, b = eager.measure(model, args.shape), onnx.measure(model, args.shape)
        ratios.append(b["latency_ms"] / a["latency_ms"])
        eager_ms.append(a["latency_ms"])
        onnx_ms.append(b["latency_ms"])
        rows.append(f"| {i} | {sum(p.numel() for p in model.parameters()):,} | {a['latency_ms']:.3f} ± {a['latency_ms_spread']:.3f} | "
                    f"{b['latency_ms']:.3f} ± {b['latency_ms_spread']:.3f} | {ratios[-1]:.2f} |")
    print(f"### {args.space}, input {tuple(args.shape)}, batch 1, one thread: latency ms (median ± IQR of {args.repeats})\n")
    print("| network | params | PyTorch | onnxruntime | ratio |\n|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    from scipy.stats import spearmanr

    rho = spearmanr(eager_ms, onnx_ms).statistic
    print(f"\nmedian onnxruntime / PyTorch: {statistics.median(ratios):.2f}; Spearman rank correlation of the two latencies: {rho:.2f}")


if __name__ == "__main__":
    main()
