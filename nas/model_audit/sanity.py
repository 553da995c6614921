"""The sanity check before a search (``nas-search sanity_check=true``): can the networks of this space learn
this data at all? Karpathy's "overfit one batch": a few architectures of the space are each trained, full
batch, on ``examples`` training examples until their training accuracy reaches ``target`` (or ``steps``
steps pass). A network that cannot memorise 32 examples has a broken loss, labels, input pipeline or
architecture; the search would spend its budget learning nothing.

The architectures are the largest (by parameters) of ``draws`` random candidates and ``architectures - 1``
more drawn at random: the largest must pass (if the space's biggest network cannot overfit 32 examples,
nothing in it will learn the data), and the search is refused with the reason when it does not; the
others are reported, and one that fails is a warning (a space may hold networks too small to memorise
even a batch: a one-layer identity chain with a pooled head has a few hundred parameters).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nas.core.errors import ConfigError

__all__ = ["SanityCheck", "sanity_check"]


class SanityCheck(dict):  # type: ignore[type-arg]
    """What :func:`sanity_check` found: ``architectures`` (one row each) and ``passed``."""


def sanity_check(space: Any, data: Any, *, architectures: int = 3, examples: int = 32, target: float = 0.99, steps: int = 300,
                 lr: float = 0.01, draws: int = 20, seed: int = 0, device: str = "cpu", say: Any = print) -> SanityCheck:
    """Overfit ``examples`` training examples with a few architectures of ``space``; refuse (ConfigError) when the
    largest cannot reach ``target`` training accuracy in ``steps`` full-batch Adam steps."""
    import torch
    import torch.nn.functional as F

    checks = {"architectures": (architectures, 1), "examples": (examples, 2), "steps": (steps, 1), "draws": (draws, 1)}
    for key, (value, low) in checks.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"`sanity_check.{key}` must be an integer >= {low}, but got {value!r}.")
    if not 0 < target <= 1:
        raise ConfigError(f"`sanity_check.target` must be a training accuracy in (0, 1], but got {target!r}.")
    rng = np.random.default_rng(seed)
    x, y = data.x_train[:examples].to(device), data.y_train[:examples].to(device)
    candidates = [space.sample(rng) for _ in range(draws)]
    sizes = [sum(p.numel() for p in space.build(s, data.input_shape, data.num_classes).parameters()) for s in candidates]
    largest = int(np.argmax(sizes))
    chosen = [candidates[largest]] + [candidates[i] for i in rng.permutation(len(candidates)) if i != largest][:architectures - 1]
    rows = []
    for index, sample in enumerate(chosen):
        torch.manual_seed(seed + index)
        model = space.build(sample, data.input_shape, data.num_classes).to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=lr)
        started, accuracy, step, loss = time.perf_counter(), 0.0, 0, float("nan")
        for step in range(1, steps + 1):
            model.train()
            optimiser.zero_grad()
            batch_loss = F.cross_entropy(model(x), y)
            loss = float(batch_loss.detach())
            if not np.isfinite(loss):
                break
            batch_loss.backward()
            optimiser.step()
            model.eval()  # judged as the network predicts: dropout off, batch norm on its running statistics
            with torch.no_grad():
                accuracy = float((model(x).argmax(1) == y).float().mean())
            if accuracy >= target:
                break
        rows.append({"architecture": space.format(sample), "params": sum(p.numel() for p in model.parameters()), "largest": index == 0,
                     "train_accuracy": accuracy, "steps": step, "loss": loss, "passed": accuracy >= target,
                     "seconds": time.perf_counter() - started})
        say(f"sanity check: {'largest' if index == 0 else 'random'} architecture ({rows[-1]['params']:,} params) reached training "
            f"accuracy {accuracy:.3f} on {examples} examples in {step} steps ({'ok' if accuracy >= target else 'FAILED'})")
        if index == 0 and not rows[0]["passed"]:  # the others cannot make up for it
            r = rows[0]
            raise ConfigError(f"sanity check: the largest of {draws} random architectures of space '{space.name}' ({r['params']:,} params) "
                              f"must overfit {examples} training examples to accuracy >= {target:g}, but reached {r['train_accuracy']:.3f} after "
                              f"{r['steps']} full-batch steps (loss {r['loss']:.4g}); check the labels, the inputs and the space "
                              f"before spending the budget (or sanity_check=false).")
    result = SanityCheck(architectures=rows, examples=examples, target=target, passed=True)
    for r in rows[1:]:
        if not r["passed"]:
            say(f"sanity check: WARNING a random architecture of the space ({r['params']:,} params) could not overfit {examples} "
                f"examples ({r['train_accuracy']:.3f}): the space holds networks too small or too constrained to learn this data.")
    return result
