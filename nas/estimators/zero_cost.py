"""Zero-cost proxies: score an untrained network from one minibatch, in milliseconds instead of minutes.

Each proxy is a function ``proxy(model, x, y) -> float`` registered in :data:`PROXIES`; higher means
"expected to train better". :class:`ZeroCostEstimator` puts them behind the estimator contract, so a
search can run on any space with ``estimator="zero_cost"``.

Conventions, following Abdelfattah et al. 2021 ("Zero-cost proxies for lightweight NAS", the
SamsungLabs/zero-cost-nas code that automl/NASLib also uses) unless a line below says otherwise:

- ``grad_norm``, ``snip`` and ``synflow`` sum per-weight scores over the *weights* of convolution and
  linear layers (biases and batch-norm parameters are not counted). The references count only
  ``Conv2d`` and ``Linear``; here every ``_ConvNd`` counts, so 1-D networks are scored too.
  A layer that the forward pass never reaches (a dead cell edge) contributes 0.
- ``grad_norm``: sum over layers of ``||dL/dW||_2``, ``L`` the mean cross-entropy of the minibatch.
- ``snip``: ``sum |W * dL/dW|`` (the reference's ``|dL/d mask|`` at mask = 1 is the same number).
- ``synflow`` (Tanaka et al. 2020): every parameter replaced by its absolute value, in float64, an
  all-ones input of one example, ``R = sum(output)``, score ``sum |W * dR/dW|``. Batch norm is bypassed
  (its output is its input), as the reference's ``bn=False`` copy does: normalising a single all-ones
  example would erase the signal the score measures. May overflow float64 on very deep, wide nets;
  the value is then ``inf`` and the estimator records it as a failed proxy with the reason.
- ``naswot`` (Mellor et al. 2021): binary codes ``c = [pre-activation > 0]`` over every unit of every
  ``nn.ReLU``, kernel ``K[i, j] = N_A - hamming(c_i, c_j)`` (computed as ``C C^T + (1-C)(1-C)^T``),
  score ``log|det K|``. Extension: other pointwise activations (GELU, SiLU, Tanh, ELU, ...; see
  :data:`NASWOT_ACTIVATIONS`) are coded the same way, by the sign of their input, so MLPs without ReLU
  get a score. ``K`` is an integer Gram matrix, so ``det K`` is either 0 or at least 1: a singular
  kernel (all units dead, duplicate codes, no activation at all) scores **0.0**, the lower bound of
  every non-singular score, instead of ``-inf``; negative round-off is clamped to 0 for the same reason.
- ``jacov`` (Mellor et al. v1, the NASLib form): ``J`` = gradient of the summed outputs w.r.t. each
  input, ``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues ``v`` of ``corrcoef(J)``, ``k = 1e-5``.
  ``nan`` when a Jacobian row is constant (its correlation is undefined).
- ``params``: parameter count. ``macs``: multiply-accumulates of one forward pass on one example.

Modes: the data-dependent proxies use batch statistics in batch norm (training mode, as the
references measure freshly built networks) but turn dropout off, so a proxy is a deterministic
function of the weights and the minibatch. ``synflow`` runs in eval mode with batch norm bypassed.

Every proxy leaves the model as it found it: parameters are read through
:func:`torch.func.functional_call` with detached copies (nothing writes to ``.grad`` or to the
weights), batch-norm running statistics update copies, every module's train/eval flag is restored
and temporary hooks are removed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, TrialFailed, unknown_name_message
from nas.estimators.base import Estimator, Evaluation, Report
from nas.estimators.modes import restoring_modes
from nas.core.space import SearchSpace
from nas.estimators.training import arch_seed, count_macs, count_params, resolve_device
from nas.datasets import DataSplits, as_splits

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

#: Layers whose weights the gradient proxies sum over.
_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)
#: Activations whose input sign makes NASWOT's binary code (ReLU in the paper; the rest by extension).
NASWOT_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Tanh, nn.Hardtanh,
)
_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm,)
#: Modules that are random in training mode; proxies run them in eval mode to be deterministic.
_STOCHASTIC = (nn.modules.dropout._DropoutNd, nn.RReLU)
_JACOV_K = 1e-5


# ---- shared machinery ----------------------------------------------------------------------------
@contextmanager
def _measuring(model: nn.Module, *, batch_statistics: bool) -> Iterator[None]:
    """Put the model in the mode a proxy measures in (batch norm on batch statistics or not, dropout
    off) and give every module its own train/eval flag back afterwards, even when the proxy fails."""
    with restoring_modes(model):
        model.train(batch_statistics)
        for m in model.modules():
            if isinstance(m, _STOCHASTIC):
                m.eval()
        yield


def _weight_names(model: nn.Module) -> list[str]:
    """Names (as in ``named_parameters``) of the weights of convolution and linear layers."""
    names = []
    for prefix, module in model.named_modules():
        if isinstance(module, _WEIGHTED) and isinstance(getattr(module, "weight", None), nn.Parameter):
            names.append(f"{prefix}.weight" if prefix else "weight")
    known = dict(model.named_parameters())
    return [n for n in dict.fromkeys(names) if n in known]  # shared layers once


def _call(model: nn.Module, weights: dict[str, torch.Tensor], x: torch.Tensor, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Forward with ``weights`` (every parameter, by name) in place of the model's own, on copies of its buffers (batch norm in
    training mode updates its running statistics in place; those updates must not reach the model)."""
    buffers = {n: (b.to(dtype, copy=True) if dtype is not None and b.is_floating_point() else b.clone()) for n, b in model.named_buffers()}
    return torch.func.functional_call(model, (weights, buffers), (x,))


def _loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """``(weight, dL/dweight)`` per conv/linear layer, ``L`` the mean cross-entropy; ``None`` where unused."""
    names = set(_weight_names(model))
    leaves = {n: p.detach().requires_grad_(n in names) for n, p in model.named_parameters()}
    wanted = [n for n in leaves if n in names]
    with _measuring(model, batch_statistics=True):
        loss = F.cross_entropy(_call(model, leaves, x), y)
    if not loss.requires_grad:  # no weight reaches the output
        return [(leaves[n], None) for n in wanted]
    grads = torch.autograd.grad(loss, [leaves[n] for n in wanted], allow_unused=True)
    return [(leaves[n], g) for n, g in zip(wanted, grads)]


# ---- the proxies ---------------------------------------------------------------------------------
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Number of parameters: the baseline every other proxy has to beat."""
    return float(count_params(model))


def macs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Multiply-accumulates of convolutions and linear layers for one example of ``x``'s shape."""
    return float(count_macs(model, tuple(x.shape[1:]), x.device))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of the L2 norm of the loss gradient of the layer's weight."""
    return float(sum(float(g.norm()) for _, g in _loss_gradients(model, x, y) if g is not None))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Connection sensitivity (Lee et al. 2019): ``sum |W * dL/dW|`` over conv/linear weights."""
    return float(sum(float((w.detach() * g).abs().sum()) for w, g in _loss_gradients(model, x, y) if g is not None))


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow: ``sum |W * dR/dW|`` with absolute float64 weights, ``R`` the summed output for an
    all-ones input, batch norm bypassed (see the module docstring)."""
    names = _weight_names(model)
    flow = {n: p.detach().to(torch.float64).abs().requires_grad_(n in names) for n, p in model.named_parameters()}
    handles = [m.register_forward_hook(lambda _m, inputs, _out: inputs[0]) for m in model.modules() if isinstance(m, _BATCH_NORMS)]
    try:
        with _measuring(model, batch_statistics=False):
            ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
            total = _call(model, flow, ones, dtype=torch.float64).sum()
    finally:
        for h in handles:
            h.remove()
    if not total.requires_grad:
        return 0.0
    grads = torch.autograd.grad(total, [flow[n] for n in names], allow_unused=True)
    return float(sum(float((flow[n].detach() * g).abs().sum()) for n, g in zip(names, grads) if g is not None))


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``log|det K|`` of the binary activation-pattern kernel (Mellor et al. 2021); 0.0 when ``K`` is singular."""
    n = len(x)
    kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)

    def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        codes = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T).add_((1.0 - codes) @ (1.0 - codes).T)

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, NASWOT_ACTIVATIONS)]
    try:
        with _measuring(model, batch_statistics=True), torch.no_grad():
            _call(model, {k: p.detach() for k, p in model.named_parameters()}, x)
    finally:
        for h in handles:
            h.remove()
    # K is symmetric positive semi-definite, so its eigenvalues give the log-determinant and a rank test
    # with the usual tolerance (LU's sign is unreliable on numerically singular kernels). K is also an
    # integer matrix, so det K is 0 or >= 1: singular kernels and round-off below 0 both score 0.
    eigenvalues = torch.linalg.eigvalsh(kernel)
    if float(eigenvalues[0]) <= float(eigenvalues[-1]) * n * torch.finfo(torch.float64).eps:
        return 0.0
    return max(float(torch.log(eigenvalues).sum()), 0.0)


def jacov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (Mellor et al. 2020, v1): how decorrelated the input Jacobians of the batch are."""
    inputs = x.detach().clone().requires_grad_(True)
    with _measuring(model, batch_statistics=True):
        out = _call(model, {k: p.detach() for k, p in model.named_parameters()}, inputs)
    if not out.requires_grad:
        return math.nan
    (jacobian,) = torch.autograd.grad(out.sum(), inputs)
    corr = torch.corrcoef(jacobian.reshape(len(x), -1).to(torch.float64))
    if not bool(torch.isfinite(corr).all()):
        return math.nan  # a constant Jacobian row has no correlation
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + _JACOV_K) + 1.0 / (v + _JACOV_K)).sum())


#: Name -> proxy. Insertion order is the order reports list them.
PROXIES: dict[str, Proxy] = {
    "params": params,
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
    "jacov": jacov,
    "macs": macs,
}
#: Proxies that read only the shape of the minibatch, so averaging over minibatches would repeat them.
DATA_FREE = frozenset({"params", "synflow", "macs"})


def compute(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, float]:
    """Every proxy in ``names`` (default: all of :data:`PROXIES`) for ``model`` on the minibatch ``(x, y)``."""
    chosen = list(PROXIES) if names is None else list(names)
    for name in chosen:
        if name not in PROXIES:
            raise ConfigError(unknown_name_message("proxy", name, PROXIES))
    return {name: PROXIES[name](model, x, y) for name in chosen}


# ---- the estimator -------------------------------------------------------------------------------
class ZeroCostEstimator(Estimator):
    """Scores each architecture by a zero-cost proxy of its freshly initialised network; no training.

    The minibatches are drawn once, seeded, from the training split and are the same for every
    candidate, so scores compare architectures and nothing else. The network is built under
    ``torch.manual_seed(arch_seed(seed, key))``, the same initial weights the training estimator
    starts from. ``metrics`` hold every proxy in ``proxies`` as ``"<name>"`` with its cost as
    ``"<name>_seconds"`` (and ``"<name>_error"`` when it gave no finite value), plus ``seconds`` for the
    whole evaluation. A non-finite *score* fails the trial with the reason; other proxies never do.

    The untrained model is handed back, so the run directory keeps the best architecture
    (``best/arch.json``) and ``best_model()`` rebuilds it at its initial weights, ready to train.

        nas.search(space="cell_nb201", dataset="mnist1d", estimator="zero_cost", trials=500,
                   overrides=["estimator.proxy=naswot"])
    """

    cheap = True
    trains = False  # the model handed back keeps its initial weights

    def __init__(
        self,
        *,
        space: SearchSpace,
        dataset: DataSplits | Any,
        proxy: str = "synflow",
        proxies: Sequence[str] | None = None,
        batch_size: int = 64,
        batches: int = 1,
        device: str = "auto",
        seed: int | None = 0,
    ) -> None:
        where = "estimator 'zero_cost': "
        if proxy not in PROXIES:
            raise ConfigError(where + unknown_name_message("proxy", proxy, PROXIES))
        if proxies is not None and (isinstance(proxies, str) or not isinstance(proxies, Sequence)):
            raise ConfigError(where + f"`proxies` must be a list of proxy names or null (all), but got {proxies!r}.")
        for name in proxies or ():
            if name not in PROXIES:
                raise ConfigError(where + unknown_name_message("proxy", name, PROXIES))
        for key, value, low in (("batch_size", batch_size, 2), ("batches", batches, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                why = " (NASWOT's kernel and batch norm need several examples)" if key == "batch_size" else ""
                raise ConfigError(where + f"`{key} >= {low}` must hold{why}, but got {key}={value!r}.")
        self.space = space
        self.data = as_splits(dataset)
        n = len(self.data.y_train)
        if batch_size * batches > n:
            raise ConfigError(where + f"`batch_size * batches <= training examples` must hold (minibatches do not overlap), "
                                      f"but got batch_size={batch_size}, batches={batches} for {n} examples of '{self.data.name}'.")
        chosen = list(PROXIES) if proxies is None else list(proxies)
        self.proxy = self.score_metric = proxy
        self.proxies = [name for name in PROXIES if name == proxy or name in chosen]  # the score is always measured
        self.batch_size, self.batches = batch_size, batches
        self.seed = 0 if seed is None else int(seed)
        self.device = resolve_device(device)
        self.input_shape = self.data.input_shape
        self.num_classes = self.data.num_classes
        order = np.random.default_rng(self.seed).permutation(n)[:batch_size * batches].reshape(batches, batch_size)
        index = torch.as_tensor(order)
        self._minibatches = [(self.data.x_train[i].to(self.device), self.data.y_train[i].to(self.device)) for i in index]

    def describe(self) -> dict[str, Any]:
        return {"estimator": "zero_cost", "dataset": self.data.name, "proxy": self.proxy, "proxies": list(self.proxies),
                "batch_size": self.batch_size, "batches": self.batches, "device": str(self.device), "seed": self.seed}

    def measure(self, model: nn.Module, name: str) -> float:
        """Proxy ``name`` of ``model``, averaged over the minibatches (data-free proxies are measured once)."""
        batches = self._minibatches[:1] if name in DATA_FREE else self._minibatches
        return float(np.mean([PROXIES[name](model, x, y) for x, y in batches]))

    def recorded_metrics(self) -> frozenset[str]:
        return frozenset([*self.proxies, *(f"{name}_seconds" for name in self.proxies), "seconds"])

    def evaluate(self, arch: Architecture, report: Report) -> Evaluation:
        start = time.perf_counter()
        torch.manual_seed(arch_seed(self.seed, arch.key))
        model = self.space.build(arch.sample, self.input_shape, self.num_classes).to(self.device)
        metrics: dict[str, Any] = {}
        for name in self.proxies:
            began = time.perf_counter()
            try:
                value = self.measure(model, name)
                error = None if math.isfinite(value) else f"{name} is {value} (non-finite)"
            except Exception as exc:  # noqa: BLE001 - one failing proxy must not hide the others; the score's is raised below
                value, error = math.nan, f"{type(exc).__name__}: {exc}".splitlines()[0]
            metrics[name] = value
            metrics[f"{name}_seconds"] = time.perf_counter() - began
            if error is not None:
                metrics[f"{name}_error"] = error
        metrics["seconds"] = time.perf_counter() - start
        if f"{self.proxy}_error" in metrics:
            raise TrialFailed(f"zero-cost proxy '{self.proxy}' gave no score: {metrics[f'{self.proxy}_error']}")
        return Evaluation(score=float(metrics[self.proxy]), metrics=metrics, model=model)
