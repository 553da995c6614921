"""Framework overhead: the same 20 architectures trained by `nas.search` and by a plain PyTorch loop.

    .venv/bin/python experiments/overhead.py [--trials 20] [--epochs 20] [--repeats 3]

What it measures, on the default space (macro_chain) and dataset (digits):
- wall-time ratio nas.search / plain loop over the same candidates (target <= 1.05);
- per-trial time spent outside training inside the search loop (from the first trial's start to the
  last trial's end, minus the training time the estimator measured; the one-off setup of config,
  storage and data is reported apart): Optuna ask/tell on SQLite, key and
  text form, MAC counting, test evaluation, TensorBoard files, best-weights saving (target < 50 ms).
The plain loop is what a user would write by hand: build, Adam + cosine, same batches, same epochs,
validation each epoch, test once. Both sides run the same seeds, so they do the same arithmetic.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import nas
from nas._training import arch_seed
from nas.datasets import digits
from strategies import SequenceStrategy


def plain_loop(space, samples, data, *, epochs: int, lr: float, batch_size: int, weight_decay: float, label_smoothing: float,
               seed: int) -> list[float]:
    """A hand-written training loop: no framework, no logging, no storage."""
    accs = []
    n = len(data.y_train)
    for sample in samples:
        key = space.key(sample)
        torch.manual_seed(arch_seed(seed, key))
        model = space.build(sample, data.input_shape, data.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        total, step = math.ceil(n / batch_size) * epochs, 0
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(n, generator=gen).split(batch_size):
                if len(idx) < 2:
                    continue
                for g in opt.param_groups:
                    g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
                loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx], label_smoothing=label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            model.eval()
            with torch.no_grad():
                val = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
        with torch.no_grad():
            (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
        accs.append(val)
    return accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)  # the default estimator setting
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = nas.get_space("macro_chain")
    rng = np.random.default_rng(args.seed)
    samples, seen = [], set()
    while len(samples) < args.trials:  # distinct keys, so both sides train the same 20 networks
        s = space.sample(rng)
        if space.key(s) not in seen:
            seen.add(space.key(s))
            samples.append(s)
    data = digits()
    cfg = nas._config.compose().estimator
    hp = dict(epochs=args.epochs, lr=cfg.lr, batch_size=cfg.batch_size, weight_decay=cfg.weight_decay,
              label_smoothing=cfg.label_smoothing, seed=args.seed)
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))

    plain_times, nas_times, outside, setup = [], [], [], []
    for rep in range(args.repeats):
        # alternate which side runs first, so warm caches and machine noise favour neither
        for side in (("plain", "nas") if rep % 2 == 0 else ("nas", "plain")):
            if side == "plain":
                t = time.perf_counter()
                plain_acc = plain_loop(space, samples, data, **hp)
                plain_times.append(time.perf_counter() - t)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                result = nas.search(space=space, strategy=SequenceStrategy(space, samples=samples), dataset=data,
                                    trials=args.trials, epochs=args.epochs, seed=args.seed, out_dir=Path(tmp) / "run", progress=False)
                nas_times.append(time.perf_counter() - t)
                trials = result.trials
                starts, ends = zip(*_trial_spans(result))
                loop_span = max(ends) - min(starts)  # first trial created .. last trial told
                train_seconds = sum(r.metrics["seconds"] for r in trials)
                outside.append((loop_span - train_seconds) / len(trials))
                setup.append(nas_times[-1] - loop_span)
                nas_acc = [r.value for r in trials]
        same = np.allclose(plain_acc, nas_acc)
        print(f"repeat {rep}: plain {plain_times[-1]:.2f}s  nas.search {nas_times[-1]:.2f}s  "
              f"ratio {nas_times[-1] / plain_times[-1]:.3f}  outside training {1000 * outside[-1]:.1f} ms/trial  "
              f"one-off setup {setup[-1]:.2f}s  same accuracies: {same}")

    ratio = min(nas_times) / min(plain_times)
    print(f"\n{args.trials} architectures x {args.epochs} epochs on digits, best of {args.repeats}:")
    print(f"| plain loop | nas.search | ratio | outside training per trial | one-off setup |\n|---:|---:|---:|---:|---:|\n"
          f"| {min(plain_times):.2f} s | {min(nas_times):.2f} s | {ratio:.3f} | {1000 * min(outside):.1f} ms | {min(setup):.2f} s |")
    print(f"targets: ratio <= 1.05 -> {'met' if ratio <= 1.05 else 'MISSED'}; "
          f"outside training < 50 ms -> {'met' if min(outside) < 0.05 else 'MISSED'}")


def _trial_spans(result):
    for t in result.study.get_trials(deepcopy=False):
        if t.datetime_start and t.datetime_complete:
            yield t.datetime_start.timestamp(), t.datetime_complete.timestamp()


if __name__ == "__main__":
    main()
