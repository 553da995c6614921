"""How brittle a classifier is: accuracy under Gaussian noise, under white-box FGSM and PGD attacks on its
own gradients, and what it does with random inputs.

Strengths are in the units of the network's input (the preprocessed, by default standardised, values: a
noise level or an epsilon of 0.1 is a tenth of the training data's standard deviation). FGSM (Goodfellow
et al. 2015) moves each input by ``epsilon * sign(grad of the loss)``; PGD (Madry et al. 2018) takes
``steps`` such moves of ``2.5 * epsilon / steps`` from a random start in the L-infinity ball, projecting
back onto it after each. Random inputs are drawn at volume, uniform over the training data's range and
Gaussian at its mean and spread: any NaN output, any exception, and the share of confident predictions
(top probability above ``confident``) are reported; a network confident on noise will be confident on
out-of-distribution inputs in deployment too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core.errors import ConfigError

__all__ = ["ATTACKS", "check_strengths", "random_inputs", "robust_accuracy"]

ATTACKS = ("noise", "fgsm", "pgd")


def check_strengths(key: str, values: Any) -> tuple[float, ...]:
    """A list of strengths >= 0; anything else is refused naming the key."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"`{key}` must be a list of numbers >= 0, but got {values!r}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ConfigError(f"`{key}` must be a list of numbers >= 0, but got {v!r} in {list(values)!r}.")
    return tuple(float(v) for v in values)


def robust_accuracy(model: Any, x: Any, y: Any, attack: str, strengths: Sequence[float], *, steps: int = 10, seed: int = 0,
                    batch_size: int = 256) -> list[dict[str, float]]:
    """Accuracy of ``model`` on ``(x, y)`` (tensors) under ``attack`` at each strength: ``[{strength, accuracy}]``."""
    import torch

    if attack not in ATTACKS:
        raise ConfigError(f"`attacks` must name some of {', '.join(ATTACKS)}, but got {attack!r}.")
    device = next(iter(model.parameters()), torch.zeros(0)).device
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for strength in strengths:
        hits = 0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            moved = _attacked(model, xb, yb, attack, strength, steps, generator)
            with torch.no_grad():
                hits += int((model(moved).argmax(1) == yb).sum())
        rows.append({"strength": float(strength), "accuracy": hits / max(len(x), 1)})
    return rows


def _attacked(model: Any, x: Any, y: Any, attack: str, epsilon: float, steps: int, generator: Any) -> Any:
    import torch
    import torch.nn.functional as F

    if epsilon == 0:
        return x
    if attack == "noise":
        return x + epsilon * torch.randn(x.shape, generator=generator).to(x.device)

    def gradient_sign(inputs: Any) -> Any:
        inputs = inputs.detach().requires_grad_(True)
        loss = F.cross_entropy(model(inputs), y)
        (grad,) = torch.autograd.grad(loss, inputs)
        return grad.sign()

    if attack == "fgsm":
        return (x + epsilon * gradient_sign(x)).detach()
    step = 2.5 * epsilon / steps
    moved = x + (torch.rand(x.shape, generator=generator).to(x.device) * 2 - 1) * epsilon
    for _ in range(steps):
        moved = moved + step * gradient_sign(moved)
        moved = torch.max(torch.min(moved, x + epsilon), x - epsilon).detach()
    return moved


def random_inputs(model: Any, reference: Any, *, count: int = 10_000, confident: float = 0.9, seed: int = 0,
                  batch_size: int = 1000) -> dict[str, Any]:
    """``model`` on ``count`` random inputs of ``reference``'s shape (half uniform over its value range, half
    Gaussian at its mean and standard deviation): NaN outputs, exceptions, confident predictions, classes."""
    import torch

    device = next(iter(model.parameters()), torch.zeros(0)).device
    generator = torch.Generator().manual_seed(seed)
    low, high = float(reference.min()), float(reference.max())
    mean, std = float(reference.mean()), float(reference.std())
    shape = tuple(reference.shape[1:])
    out: dict[str, Any] = {"count": count, "nan_outputs": 0, "exceptions": 0, "errors": [], "confident": 0, "threshold": confident}
    predicted: list[int] = []
    model.eval()
    for kind in ("uniform", "gaussian"):
        left = count // 2 if kind == "uniform" else count - count // 2
        while left > 0:
            n = min(batch_size, left)
            left -= n
            draws = torch.rand((n, *shape), generator=generator) * (high - low) + low if kind == "uniform" \
                else torch.randn((n, *shape), generator=generator) * std + mean
            try:
                with torch.no_grad():
                    logits = model(draws.to(device)).double()
            except Exception as exc:  # noqa: BLE001 - what the audit reports
                out["exceptions"] += n
                out["errors"] = (out["errors"] + [f"{type(exc).__name__}: {exc}"])[:3]
                continue
            finite = torch.isfinite(logits).all(dim=1)
            out["nan_outputs"] += int((~finite).sum())
            proba = torch.softmax(logits[finite], dim=1)
            out["confident"] += int((proba.max(dim=1).values > confident).sum())
            predicted += proba.argmax(dim=1).cpu().tolist()
    out["confident_share"] = out["confident"] / max(count, 1)
    counts = np.bincount(np.array(predicted, dtype=int)) if predicted else np.zeros(0, dtype=int)
    out["most_predicted"] = {"class": int(counts.argmax()), "share": float(counts.max() / len(predicted))} if predicted else None
    return out
