"""Framework overhead: the same 20 architectures trained by `nas.search` and by a plain PyTorch loop.

    .venv/bin/python experiments/overhead.py [--trials 20] [--epochs 20] [--repeats 3]

What it measures, on the default space (macro_chain) and dataset (digits):
- wall-time ratio nas.search / plain loop over the same candidates (target <= 1.05);
- per-trial time nas.search spends outside training: its wall time from the first ask on (Optuna
  trial creation and tell on SQLite, keys, MAC counting, test evaluation, TensorBoard files,
  best-weights saving) minus the training time its estimator measured, divided by the trials
  (target < 50 ms); the one-off setup before the first ask (config, data, study) and the one-off
  end after the last trial (TensorBoard's pictures of the best and the best's graph, the
  leaderboard) are shown apart; the wall-time ratio includes both.
The plain loop is what a user would write by hand: build, Adam + cosine, same batches, same epochs,
validation each epoch, test once. Both sides run the same seeds, so they do the same arithmetic.

Interleaved, to beat machine noise: this shared 2-core machine drifts by 10% over minutes, more
than the overhead being measured. So each architecture is trained by the plain loop right next
to its nas.search trial (inside the strategy's ask, or its tell on alternate repeats), and the
plain loop's time is taken out of nas.search's wall time. Both sides see the same machine state.
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
from nas.estimators.training import arch_seed, available_cpus
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


class InterleavedSequence(SequenceStrategy):
    """Replays ``samples``; trains each one with the plain loop just before (or just after) its trial."""

    def __init__(self, space, *, samples, plain_kwargs, data, plain_first: bool) -> None:
        super().__init__(space, samples=samples)
        self.plain_kwargs, self.data, self.plain_first = plain_kwargs, data, plain_first
        self.plain_seconds, self.plain_accs = 0.0, []

    def _plain(self, sample) -> None:
        t = time.perf_counter()
        self.plain_accs += plain_loop(self.space, [sample], self.data, **self.plain_kwargs)
        self.plain_seconds += time.perf_counter() - t

    def ask(self, history):
        if not history:
            self.first_ask_at = time.perf_counter()  # the one-off setup (config, data, study) ends here
        sample = super().ask(history)
        if self.plain_first:
            self._plain(sample)
        return sample

    def tell(self, record) -> None:
        if not self.plain_first:
            self._plain(record.arch.sample)


class LastTrialEnd(nas.Callback):
    """When the last trial's callbacks are done (this one runs after the built-in ones): what follows
    is the search's one-off end (pictures of the best, the best's graph, the leaderboard)."""

    def __init__(self) -> None:
        self.at = 0.0

    def on_trial_end(self, record, evaluation) -> None:  # type: ignore[no-untyped-def]
        self.at = time.perf_counter()


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
    torch.set_num_threads(available_cpus())

    # warm-up, untimed: first-call costs (imports, allocator, kernel selection) would favour one side
    plain_loop(space, samples[:2], data, **{**hp, "epochs": 1})
    with tempfile.TemporaryDirectory() as tmp:
        nas.search(space=space, strategy=SequenceStrategy(space, samples=samples[:2]), dataset=data, trials=2, epochs=1,
                   seed=args.seed, out_dir=Path(tmp) / "run", progress=False)

    rows = []
    for rep in range(args.repeats):
        strategy = InterleavedSequence(space, samples=samples, plain_kwargs=hp, data=data, plain_first=rep % 2 == 0)
        last = LastTrialEnd()
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            result = nas.search(space=space, strategy=strategy, dataset=data, trials=args.trials, epochs=args.epochs,
                                seed=args.seed, out_dir=Path(tmp) / "run", progress=False, callbacks=[last])
            done = time.perf_counter()
            nas_seconds = done - t - strategy.plain_seconds
        trials = result.trials
        setup, end = strategy.first_ask_at - t, done - last.at
        outside = (nas_seconds - setup - end - sum(r.metrics["seconds"] for r in trials)) / len(trials)
        same = np.allclose(strategy.plain_accs, [r.value for r in trials])
        rows.append((strategy.plain_seconds, nas_seconds, outside))
        print(f"repeat {rep} (plain loop {'before' if rep % 2 == 0 else 'after'} each trial): plain {strategy.plain_seconds:.2f}s  "
              f"nas.search {nas_seconds:.2f}s  ratio {nas_seconds / strategy.plain_seconds:.3f}  "
              f"outside training {1000 * outside:.1f} ms/trial  one-off setup {setup:.2f}s  one-off end {end:.2f}s  same accuracies: {same}",
              flush=True)

    plain, nas_s, outside = (np.array(c) for c in zip(*rows))
    ratio = float(nas_s.sum() / plain.sum())
    print(f"\n{args.trials} architectures x {args.epochs} epochs on digits, {args.repeats} interleaved repeats "
          f"(per-repeat ratios {', '.join(f'{r:.3f}' for r in nas_s / plain)}):")
    print(f"| plain loop (mean) | nas.search (mean) | ratio (totals) | outside training per trial (mean) |\n|---:|---:|---:|---:|\n"
          f"| {plain.mean():.2f} s | {nas_s.mean():.2f} s | {ratio:.3f} | {1000 * outside.mean():.1f} ms |")
    print(f"targets: ratio <= 1.05 -> {'met' if ratio <= 1.05 else 'MISSED'}; "
          f"outside training < 50 ms -> {'met' if outside.mean() < 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
