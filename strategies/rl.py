"""REINFORCE controller (Zoph & Le 2017, as in the NAS-Bench-201 baselines): an LSTM policy emits one dimension at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from nas.core import ConfigError, SearchSpace, Strategy, TrialRecord
from nas.core.dimensions import Primitive
from nas.core.space import Sample

# What identifies a finished record for the policy: a changed value or state means a different history.
_Signature = tuple[int, str, str, float | None]


class _Policy(nn.Module):
    """An LSTM cell stepping through the dimensions; each dimension has its own input embedding and softmax head.

    The per-dimension embeddings and heads are slices of padded tensors (choices beyond a dimension's
    own are masked out), so a trajectory costs one LSTM step per dimension and a handful of other ops.
    """

    def __init__(self, sizes: Sequence[int], hidden: int, temperature: float) -> None:
        super().__init__()
        dims, width = len(sizes), max(sizes)
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        self.embed = nn.Parameter(torch.zeros(dims, width, hidden))  # input of the step after dimension d chose c
        self.weight = nn.Parameter(torch.zeros(dims, hidden, width))  # head of dimension d
        self.bias = nn.Parameter(torch.zeros(dims, width))
        mask = torch.full((dims, width), -1e9)
        for d, n in enumerate(sizes):
            mask[d, :n] = 0.0
        self.register_buffer("mask", mask)
        self.hidden, self.temperature = hidden, temperature

    def logits(self, h: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Row ``t`` of ``h`` through the head of dimension ``positions[t]``: ``(T, width)``, padding at -1e9."""
        out = torch.bmm(h.unsqueeze(1), self.weight[positions]).squeeze(1) + self.bias[positions]
        return out / self.temperature + self.mask[positions]

    def trajectory(self, positions: torch.Tensor, choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of emitting ``choices`` at ``positions`` (teacher forcing) and the summed step entropies."""
        inputs = torch.cat([self.start, self.embed[positions[:-1], choices[:-1]]])
        state = None
        hs = []
        for t in range(len(positions)):
            state = self.cell(inputs[t : t + 1], state)
            hs.append(state[0])
        logp = torch.log_softmax(self.logits(torch.cat(hs), positions), dim=-1)
        log_prob = logp.gather(1, choices.unsqueeze(1)).sum()
        entropy = -(logp.exp() * logp).sum()
        return log_prob, entropy


class _Adam:
    """Adam (Kingma & Ba 2015, as ``torch.optim.Adam`` computes it) for a few small tensors.

    Hand-written because ``torch.optim`` imports ``torch._dynamo`` when the first optimizer is built
    (over a second per process) and spends about a millisecond of bookkeeping per step on tensors this small.
    """

    def __init__(self, params: Sequence[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def step(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        self.steps += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.steps, 1 - b2**self.steps
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if g is None:
                g = torch.zeros_like(p)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / math.sqrt(correction2)).add_(self.eps), value=-self.lr / correction1)


class ReinforceController(Strategy):
    """An autoregressive LSTM policy over the space's dimensions, trained by REINFORCE.

    The policy walks :meth:`SearchSpace.dimensions` in order and emits only the active ones
    (``space.is_active(name, partial)`` on what it has emitted so far); each dimension has its own
    embedding (the input of the next step) and softmax head over its choices. Integer and Float
    dimensions are treated as categorical over their ``grid()`` values (a recorded float off the
    grid counts as its nearest grid point).

    Training: one Adam step per finished record, in trial-number order, on
    ``-advantage * log p(sample) - entropy_weight * entropy``. The advantage is the reward minus
    an exponential moving-average baseline (``baseline_decay``), divided by a moving estimate of
    the reward's spread when ``normalize`` is set and clipped to ``[-advantage_clip, advantage_clip]``.
    Complete records reward their value; failed ones the lowest value seen so far (skipped before
    any); pruned and running ones, and complete ones without a finite value, train nothing.

    State and resume: the policy is a deterministic function of the seed and the finished records
    in trial-number order. The instance keeps the trained policy and the records it was trained
    on; each :meth:`ask` trains on the finished records not yet used, or, when the history is not
    an extension of those (a fresh process, another history, an earlier trial that finished late),
    rebuilds the policy from the seed and replays every finished record. Samples are then drawn
    with a ``torch.Generator`` seeded by :meth:`Strategy.rng`, so the same seed and history give the
    same ask, also in a fresh process.

    Knobs: ``hidden_size`` (LSTM width), ``lr`` (Adam), ``baseline_decay``, ``entropy_weight``,
    ``temperature`` (logits are divided by it, when sampling and training), ``normalize`` and
    ``advantage_clip`` (reward shaping), ``skip_duplicates`` with ``max_resamples`` (policy draws
    tried for an unseen canonical key before falling back to uniform draws, as many again).
    """

    name = "rl"

    def __init__(self, space: SearchSpace, *, seed: int | None = None, skip_duplicates: bool = True, hidden_size: int = 32,
                 lr: float = 0.05, baseline_decay: float = 0.8, entropy_weight: float = 0.02, temperature: float = 1.0,
                 normalize: bool = True, advantage_clip: float = 3.0, max_resamples: int = 100) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        checks = [
            (isinstance(hidden_size, int) and hidden_size >= 1, "hidden_size", "an integer >= 1", hidden_size),
            (lr > 0, "lr", "> 0", lr),
            (0.0 <= baseline_decay < 1.0, "baseline_decay", "in [0, 1)", baseline_decay),
            (entropy_weight >= 0, "entropy_weight", ">= 0", entropy_weight),
            (temperature > 0, "temperature", "> 0", temperature),
            (advantage_clip > 0, "advantage_clip", "> 0", advantage_clip),
            (isinstance(max_resamples, int) and max_resamples >= 0, "max_resamples", "an integer >= 0", max_resamples),
        ]
        for ok, key, rule, got in checks:
            if not ok:
                raise ConfigError(f"strategy 'rl': `{key}` must be {rule}, but got {got!r}.")
        self.hidden_size, self.lr, self.baseline_decay = int(hidden_size), float(lr), float(baseline_decay)
        self.entropy_weight, self.temperature = float(entropy_weight), float(temperature)
        self.normalize, self.advantage_clip, self.max_resamples = bool(normalize), float(advantage_clip), int(max_resamples)
        self._names = list(space.dimensions())
        self._choices: list[list[Primitive]] = [list(dim.grid()) for dim in space.dimensions().values()]
        self._reset()

    # ---- state ---------------------------------------------------------------------------------
    def _reset(self) -> None:
        """A fresh policy from the seed: small uniform weights, so the first samples are near uniform."""
        generator = torch.Generator().manual_seed(self.seed % (2**63))
        self.policy = _Policy([len(c) for c in self._choices], self.hidden_size, self.temperature)
        with torch.no_grad():
            for p in self.policy.parameters():
                p.uniform_(-0.1, 0.1, generator=generator)
        self.optimizer = _Adam(list(self.policy.parameters()), lr=self.lr)
        self._used: list[_Signature] = []
        self._baseline: float | None = None
        self._spread: float | None = None
        self._lowest: float | None = None

    def _catch_up(self, history: Sequence[TrialRecord]) -> None:
        """Train on the finished records not used yet; rebuild first if the history is not an extension."""
        finished = sorted((r for r in history if r.finished), key=lambda r: r.number)
        signatures = [(r.number, r.arch.key, r.state, r.value) for r in finished]
        if signatures[: len(self._used)] != self._used:
            self._reset()
        for record, signature in zip(finished[len(self._used):], signatures[len(self._used):]):
            self._learn(record)
            self._used.append(signature)

    def _learn(self, record: TrialRecord) -> None:
        if record.state == "complete" and record.value is not None and math.isfinite(record.value):
            reward = float(record.value)
            self._lowest = reward if self._lowest is None else min(self._lowest, reward)
        elif record.state == "failed" and self._lowest is not None:
            reward = self._lowest
        else:
            return
        if self._baseline is None:  # the first reward sets the baseline: no signal yet
            self._baseline = reward
            return
        deviation = reward - self._baseline
        advantage = deviation
        if self.normalize:
            spread = abs(deviation) if self._spread is None else self._spread
            advantage = deviation / max(spread, 1e-8)
            self._spread = self.baseline_decay * spread + (1 - self.baseline_decay) * abs(deviation)
        advantage = max(-self.advantage_clip, min(self.advantage_clip, advantage))
        self._baseline = self.baseline_decay * self._baseline + (1 - self.baseline_decay) * reward
        indices = self._indices(record.arch.sample)
        if indices is None:
            return
        log_prob, entropy = self.policy.trajectory(*indices)
        loss = -advantage * log_prob - self.entropy_weight * entropy
        self.optimizer.step(loss)

    def _indices(self, sample: Sample) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Positions of the active dimensions of ``sample`` and the index of each one's value."""
        active = self.space.active(sample)
        positions, choices = [], []
        for position, name in enumerate(self._names):
            if name in active:
                index = _index(self._choices[position], active[name])
                if index is None:
                    return None
                positions.append(position)
                choices.append(index)
        if not positions:
            return None
        return torch.tensor(positions), torch.tensor(choices)

    # ---- sampling ------------------------------------------------------------------------------
    @torch.no_grad()
    def _draw(self, count: int, generator: torch.Generator) -> list[Sample]:
        """``count`` samples from the policy, in one batched pass; rows skip their inactive dimensions."""
        policy = self.policy
        partials: list[Sample] = [{} for _ in range(count)]
        x = policy.start.expand(count, -1)
        h = torch.zeros(count, policy.hidden)
        c = torch.zeros(count, policy.hidden)
        for position, name in enumerate(self._names):
            active = [self.space.is_active(name, p) for p in partials]
            if not any(active):
                continue
            h_new, c_new = policy.cell(x, (h, c))
            probs = torch.softmax(policy.logits(h_new, torch.full((count,), position)), dim=-1)
            # Inverse-CDF draws: cheaper than torch.multinomial for a handful of tiny rows.
            cumulative = probs.cumsum(1)
            uniform = torch.rand(count, 1, generator=generator) * cumulative[:, -1:]
            picks = (cumulative < uniform).sum(1).clamp_(max=len(self._choices[position]) - 1)
            choices = self._choices[position]
            for row, (on, pick) in enumerate(zip(active, picks.tolist())):
                if on:
                    partials[row][name] = choices[pick]
            mask = torch.tensor(active).unsqueeze(1)
            h, c = torch.where(mask, h_new, h), torch.where(mask, c_new, c)
            x = torch.where(mask, policy.embed[position][picks], x)
        return partials

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        self._catch_up(history)
        rng = self.rng(history)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        if not self.skip_duplicates and not self.space.constrained:
            return self._draw(1, generator)[0]
        seen = self.seen_keys(history) if self.skip_duplicates else set()
        drawn = 0
        batch = 16  # a batch costs about what one draw does; doubling keeps a collapsed policy cheap
        while drawn <= self.max_resamples:
            for sample in self._draw(min(batch, self.max_resamples + 1 - drawn), generator):
                # the policy draws dimension by dimension: a constrained space's invalid cell is redrawn
                if (not self.space.constrained or self.space.is_valid(sample)) and self.space.key(sample) not in seen:
                    return sample
            drawn += batch
            batch *= 2
        sample = self.space.sample(rng)  # the policy has collapsed onto seen keys (or invalid cells): uniform draws
        for _ in range(self.max_resamples):
            if self.space.key(sample) not in seen:
                break
            sample = self.space.sample(rng)
        return sample


def _index(choices: list[Primitive], value: Primitive) -> int | None:
    """Position of ``value`` among ``choices``; a number off the grid maps to the nearest grid point."""
    for i, choice in enumerate(choices):
        if value == choice and type(value) is type(choice):
            return i
    for i, choice in enumerate(choices):
        if value == choice:
            return i
    numeric = [(i, c) for i, c in enumerate(choices) if isinstance(c, (int, float)) and not isinstance(c, bool)]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and numeric:
        return min(numeric, key=lambda ic: abs(float(ic[1]) - float(value)))[0]  # type: ignore[arg-type]
    return None
