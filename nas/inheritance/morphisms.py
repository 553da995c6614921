"""Network morphisms: change a network's structure so that the child starts as the parent's function.

Used by search spaces to build a child model from a parent's trained state (Net2Net, Chen et al. 2016;
NASH, Elsken et al. 2017), so the child continues training where the parent stopped instead of from
scratch. Everything here is space-agnostic and works on ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d``
(and their ``BatchNorm1d``/``BatchNorm2d``). Two levels:

- tensor helpers (:func:`wider_mapping`, :func:`replicate_out`, :func:`split_in`, :func:`pad_kernel`,
  :func:`select_weight`, :func:`merge_weight`) for spaces that rebuild a state dict themselves;
- module primitives (:func:`net2wider`, :func:`identity_layer`, :func:`widen_kernel`,
  :func:`add_zero_branch`, :func:`sum_of_ops`) that return *new* modules.

Nothing modifies its inputs except the in-place initialisers, whose names end with ``_``
(:func:`identity_`, :func:`passthrough_bn_`, :func:`zero_output_`) and :func:`inherit_matching`, which
writes into the child it is given. Preservation is exact in eval mode (batch norm on running
statistics); check it with :func:`preservation_error`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.estimators.modes import restoring_modes

__all__ = [
    "Inheritance", "ZeroInitSum", "add_zero_branch", "identity_", "identity_layer", "inherit_matching", "merge_weight",
    "net2wider", "pad_kernel", "parameter_fraction", "passthrough_bn_", "preservation_error", "replicate_out",
    "select_weight", "split_in", "sum_of_ops", "widen_kernel", "wider_mapping", "zero_output_",
]

_CONVS = (nn.Conv1d, nn.Conv2d)
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_Mapping = torch.Tensor | Sequence[int]
# What the checks below narrow an ``nn.Module`` argument to.
_Conv = nn.Conv1d | nn.Conv2d
_Layer = nn.Linear | nn.Conv1d | nn.Conv2d
_BatchNorm = nn.BatchNorm1d | nn.BatchNorm2d


# ---- validation ----------------------------------------------------------------------------------
def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer >= {minimum}, but got {name}={value!r}.")
    return value


def _check_noise(noise: float) -> float:
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
        raise ConfigError(f"`noise >= 0` (finite) must hold, but got noise={noise!r}.")
    return float(noise)


def _as_mapping(mapping: _Mapping, size: int, *, device: torch.device | None = None) -> torch.Tensor:
    """A 1-D long tensor whose entries index ``range(size)``."""
    m = torch.as_tensor(mapping)
    if m.dtype.is_floating_point or m.dtype.is_complex or m.dtype == torch.bool or m.ndim != 1:
        raise ConfigError(f"`mapping` must be a 1-D integer tensor, but got dtype={m.dtype}, shape={tuple(m.shape)}.")
    if m.numel() and (int(m.min()) < 0 or int(m.max()) >= size):
        raise ConfigError(f"`0 <= mapping[j] < {size}` must hold for every j, but got values in "
                          f"[{int(m.min())}, {int(m.max())}].")
    return m.to(device=device, dtype=torch.long)


def _type_name(module: object) -> str:
    return type(module).__name__


def _check_layer(name: str, module: object) -> _Layer:
    """A Linear or a Conv1d/Conv2d with groups=1 (the layers whose channels can be copied or split)."""
    if not isinstance(module, _LAYERS):
        raise ConfigError(f"`{name}` must be an nn.Linear, nn.Conv1d or nn.Conv2d, but got {_type_name(module)}.")
    if isinstance(module, _CONVS) and module.groups != 1:
        raise ConfigError(f"`{name}.groups == 1` must hold (grouped or depthwise convolutions cannot be widened "
                          f"channel by channel), but got groups={module.groups}.")
    return module


def _out_size(layer: _Layer) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _in_size(layer: _Layer) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


# ---- tensor-level helpers ------------------------------------------------------------------------


def wider_mapping(old: int, new: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Which old unit each of ``new`` units copies: ``[0, ..., old-1]`` then ``new - old`` uniform draws.

    Keeping the identity prefix means units keep their index, so only the appended units are copies."""
    _check_int("old", old, minimum=1)
    _check_int("new", new, minimum=1)
    if new < old:
        raise ConfigError(f"`new >= old >= 1` must hold, but got (old={old}, new={new}).")
    device = generator.device if generator is not None else torch.device("cpu")
    extra = torch.randint(0, old, (new - old,), generator=generator, device=device)
    return torch.cat([torch.arange(old, device=device), extra])


def replicate_out(tensor: torch.Tensor, mapping: _Mapping) -> torch.Tensor:
    """Index dim 0 by ``mapping``: the rows of a producer's weight, its bias, a BatchNorm's parameters and
    running statistics. Returns a new tensor."""
    if tensor.ndim == 0:
        raise ConfigError(f"`tensor` must have at least one dimension, but got shape={tuple(tensor.shape)}.")
    m = _as_mapping(mapping, tensor.shape[0], device=tensor.device)
    return tensor.detach().index_select(0, m)


def split_in(tensor: torch.Tensor, mapping: _Mapping, *, dim: int = 1, noise: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Index ``dim`` of a consumer's weight by ``mapping`` and split each source among its copies.

    Column ``j`` is multiplied by ``1/count + eps_j``, ``count`` the number of copies of its source.
    Without noise ``eps = 0``. With ``noise > 0`` the copies differ, so training can move them apart
    (otherwise they receive identical gradients forever): ``eps_j ~ N(0, (noise/count)^2)``, re-centred
    to sum to zero within each group of copies (a group of one gets 0). The factors of a group still sum
    to 1, so the consumer's output is unchanged."""
    if not tensor.is_floating_point():
        raise ConfigError(f"`tensor` must be floating point (a weight), but got dtype={tensor.dtype}.")
    if not -tensor.ndim <= dim < tensor.ndim:
        raise ConfigError(f"`-{tensor.ndim} <= dim < {tensor.ndim}` must hold for a tensor of shape "
                          f"{tuple(tensor.shape)}, but got dim={dim}.")
    noise = _check_noise(noise)
    dim %= tensor.ndim
    size = tensor.shape[dim]
    m = _as_mapping(mapping, size, device=tensor.device)
    counts = torch.bincount(m, minlength=size).to(torch.float64)
    count_j = counts[m]
    factor = 1.0 / count_j
    if noise > 0 and m.numel():
        device = generator.device if generator is not None else torch.device("cpu")
        eps = torch.randn(m.numel(), generator=generator, device=device, dtype=torch.float64).to(tensor.device)
        eps = eps * (noise / count_j)
        group_mean = torch.zeros(size, dtype=torch.float64, device=tensor.device).index_add_(0, m, eps) / counts.clamp(min=1)
        factor = factor + (eps - group_mean[m])
    shape = [1] * tensor.ndim
    shape[dim] = m.numel()
    out = tensor.detach().index_select(dim, m)
    # float64 so that the factors of a group sum to 1 up to the weight's own rounding
    return (out.to(torch.float64) * factor.view(shape)).to(tensor.dtype)


def pad_kernel(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """Zero-pad the spatial dims of a conv weight ``(out, in/groups, k[, k])`` to ``kernel``, centred.

    With the padding grown by ``dilation * (kernel - k) / 2`` the convolution computes the same
    function: the new taps multiply the new padding or real inputs by zero."""
    if weight.ndim not in (3, 4):
        raise ConfigError(f"`weight` must be a Conv1d or Conv2d weight (3 or 4 dims), but got shape={tuple(weight.shape)}.")
    _check_int("kernel", kernel, minimum=1)
    spatial = tuple(weight.shape[2:])
    if kernel % 2 == 0 or any(k % 2 == 0 for k in spatial):
        raise ConfigError(f"`kernel` and the current kernel size must be odd (so the old kernel sits at the centre), "
                          f"but got kernel={kernel}, current={spatial}.")
    if any(kernel < k for k in spatial):
        raise ConfigError(f"`kernel >= current kernel size` must hold, but got kernel={kernel}, current={spatial}.")
    pad: list[int] = []
    for k in reversed(spatial):  # F.pad lists the last dim first
        pad += [(kernel - k) // 2] * 2
    return torch.nn.functional.pad(weight.detach(), pad)


def _check_ndim(ndim: int) -> int:
    if isinstance(ndim, bool) or ndim not in (0, 1, 2):
        raise ConfigError(f"`ndim` must be 0 (Linear), 1 (Conv1d) or 2 (Conv2d), but got ndim={ndim!r}.")
    return ndim


def select_weight(mapping: _Mapping, old: int, ndim: int) -> torch.Tensor:
    """The ``(new, old[, 1[, 1]])`` weight of a projection that copies channel ``mapping[j]`` to ``j``.

    ``ndim`` 0 gives a Linear weight, 1 or 2 a 1x1 Conv1d/Conv2d weight (default dtype, mapping's device)."""
    _check_int("old", old, minimum=1)
    _check_ndim(ndim)
    m = _as_mapping(mapping, old)
    w = torch.zeros(m.numel(), old, device=m.device)
    w[torch.arange(m.numel(), device=m.device), m] = 1.0
    return w.view(*w.shape, *([1] * ndim))


def merge_weight(mapping: _Mapping, old: int, ndim: int) -> torch.Tensor:
    """The ``(old, new[, 1[, 1]])`` weight that averages the copies back: ``1/count(k)`` at ``[k, j]`` for
    ``mapping[j] == k``. ``merge_weight @ select_weight`` is the identity when every old channel is copied
    at least once; a channel never copied gets a zero row."""
    _check_int("old", old, minimum=1)
    _check_ndim(ndim)
    m = _as_mapping(mapping, old)
    counts = torch.bincount(m, minlength=old).to(torch.get_default_dtype())
    w = torch.zeros(old, m.numel(), device=m.device)
    w[m, torch.arange(m.numel(), device=m.device)] = 1.0 / counts[m]
    return w.view(*w.shape, *([1] * ndim))


# ---- in-place initialisers -----------------------------------------------------------------------
def identity_(module: nn.Module) -> nn.Module:
    """Make ``module`` compute its input: a Linear with ``in == out`` becomes the identity matrix; a
    Conv1d/Conv2d with groups 1, ``in == out``, odd kernel, stride 1 and size-keeping padding
    (``dilation * (k - 1) / 2`` or ``'same'``) gets a centre tap of 1 per channel. Bias, if any, is 0.
    Returns the module for chaining."""
    if not isinstance(module, _LAYERS):
        raise ConfigError(f"`module` must be an nn.Linear, nn.Conv1d or nn.Conv2d, but got {_type_name(module)}.")
    if _in_size(module) != _out_size(module):
        raise ConfigError(f"`in == out` must hold for an identity, but got in={_in_size(module)}, out={_out_size(module)}.")
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            module.weight.copy_(torch.eye(module.out_features, dtype=module.weight.dtype, device=module.weight.device))
        else:
            if module.groups != 1:
                raise ConfigError(f"`module.groups == 1` must hold for identity_, but got groups={module.groups}.")
            kernel, dilation = module.kernel_size, module.dilation
            if any(k % 2 == 0 for k in kernel):
                raise ConfigError(f"`kernel_size` must be odd for a centre-tap identity, but got kernel_size={kernel}.")
            if any(s != 1 for s in module.stride):
                raise ConfigError(f"`stride == 1` must hold for an identity, but got stride={module.stride}.")
            keeping = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
            padding = module.padding
            if not (padding == "same" or padding == keeping or (padding == "valid" and all(k == 1 for k in kernel))):
                raise ConfigError(f"`padding == dilation * (kernel_size - 1) // 2` must hold so the size is kept, "
                                  f"but got padding={padding}, expected {keeping}.")
            module.weight.zero_()
            channels = torch.arange(module.out_channels, device=module.weight.device)
            centre = tuple(k // 2 for k in kernel)
            index: tuple[torch.Tensor | int, ...] = (channels, channels, *centre)
            module.weight[index] = 1.0
        if module.bias is not None:
            module.bias.zero_()
    return module


def passthrough_bn_(bn: nn.Module) -> nn.Module:
    """Make a BatchNorm the identity in eval mode: running_mean 0, running_var 1, weight
    ``sqrt(1 + eps)``, bias 0 (num_batches_tracked kept). Without affine parameters running_var is set to
    ``1 - eps`` instead. In training mode it still normalises by batch statistics."""
    if not isinstance(bn, _BATCH_NORMS):
        raise ConfigError(f"`bn` must be an nn.BatchNorm1d or nn.BatchNorm2d, but got {_type_name(bn)}.")
    if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        raise ConfigError("`bn.track_running_stats` must be True (eval mode must use running statistics), "
                          "but got track_running_stats=False.")
    with torch.no_grad():
        bn.running_mean.zero_()
        if bn.affine:
            bn.running_var.fill_(1.0)
            bn.weight.fill_(math.sqrt(1.0 + bn.eps))
            bn.bias.zero_()
        else:
            if not bn.eps < 1:
                raise ConfigError(f"`bn.eps < 1` must hold for a BatchNorm without affine, but got eps={bn.eps}.")
            bn.running_var.fill_(1.0 - bn.eps)
    return bn


def zero_output_(module: nn.Module) -> nn.Module:
    """Make ``module`` output zeros by zeroing its last layer (last in registration order).

    If that layer is a BatchNorm, its affine weight and bias are zeroed (the layers before it keep their
    weights, so gradients reach the whole module once the BatchNorm moves away from zero); if it is a
    Linear/Conv, its weight and bias. Whatever follows must map 0 to 0 (ReLU, pooling, dropout, identity)."""
    last: _BatchNorm | nn.Linear | nn.modules.conv._ConvNd | None = None
    for sub in module.modules():
        if isinstance(sub, (*_BATCH_NORMS, nn.Linear, nn.modules.conv._ConvNd)):
            last = sub
    if last is None:
        raise ConfigError(f"`module` must contain a BatchNorm, Linear or Conv layer to zero, but got {_type_name(module)} "
                          f"with none.")
    if isinstance(last, _BATCH_NORMS) and not last.affine:
        raise ConfigError("`affine=True` must hold for the last BatchNorm of `module` (its output is then zeroed "
                          "through weight and bias), but got affine=False.")
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    return module


# ---- module-level primitives ---------------------------------------------------------------------
def _fresh_parameter(value: torch.Tensor, like: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value.detach().clone(), requires_grad=like.requires_grad)


def _conv_like(conv: _Conv, *, in_channels: int | None = None, out_channels: int | None = None,
               kernel: int | None = None, padding: str | tuple[int, ...] | None = None) -> _Conv:
    """A new Conv1d/Conv2d with ``conv``'s settings except those given (weights left at their init)."""
    cls = nn.Conv2d if isinstance(conv, nn.Conv2d) else nn.Conv1d
    # torch annotates a conv's kernel_size, stride, padding and dilation as tuple[int, ...] but the
    # constructors' as int | tuple[int] (Conv1d) or int | tuple[int, int] (Conv2d), so a conv's own
    # settings, of exactly the right length, do not type-check as the arguments that made it.
    new = cls(in_channels if in_channels is not None else conv.in_channels,
              out_channels if out_channels is not None else conv.out_channels,
              kernel if kernel is not None else conv.kernel_size,  # type: ignore[arg-type]
              stride=conv.stride, padding=padding if padding is not None else conv.padding, dilation=conv.dilation,  # type: ignore[arg-type]
              groups=conv.groups, bias=conv.bias is not None, padding_mode=conv.padding_mode,
              device=conv.weight.device, dtype=conv.weight.dtype)
    return new.train(conv.training)


def _resized(layer: _Layer, *, inputs: int | None = None, outputs: int | None = None) -> _Layer:
    if isinstance(layer, nn.Linear):
        new = nn.Linear(inputs if inputs is not None else layer.in_features,
                        outputs if outputs is not None else layer.out_features,
                        bias=layer.bias is not None, device=layer.weight.device, dtype=layer.weight.dtype)
        return new.train(layer.training)
    return _conv_like(layer, in_channels=inputs, out_channels=outputs)


def net2wider(layer: nn.Module, consumer: nn.Module, *, width: int, bn: nn.Module | None = None, noise: float = 0.0,
              generator: torch.Generator | None = None) -> tuple[nn.Module, nn.Module | None, nn.Module]:
    """Net2WiderNet: widen ``layer`` to ``width`` outputs without changing the function.

    New units copy random old ones (:func:`wider_mapping`); ``bn`` (a BatchNorm right after ``layer``,
    before the activation) is copied along, parameters and running statistics; ``consumer`` (the next
    Conv with groups 1 or Linear, reading ``layer``'s outputs, possibly after an elementwise activation
    or a global pool) divides each copied input among its copies (:func:`split_in`, with ``noise`` to
    break the symmetry). Returns new ``(layer, bn, consumer)``; the inputs are untouched."""
    layer = _check_layer("layer", layer)
    consumer = _check_layer("consumer", consumer)
    old = _out_size(layer)
    _check_int("width", width, minimum=1)
    if width < old:
        raise ConfigError(f"`width >= {'out_features' if isinstance(layer, nn.Linear) else 'out_channels'}` must hold "
                          f"(net2wider only widens), but got width={width}, current={old}.")
    if _in_size(consumer) != old:
        raise ConfigError(f"`consumer`'s inputs must be `layer`'s outputs (in == {old}), but got in={_in_size(consumer)} "
                          f"on {_type_name(consumer)}.")
    if bn is not None:
        if not isinstance(bn, _BATCH_NORMS):
            raise ConfigError(f"`bn` must be an nn.BatchNorm1d or nn.BatchNorm2d or None, but got {_type_name(bn)}.")
        if bn.num_features != old:
            raise ConfigError(f"`bn.num_features == {old}` (layer's outputs) must hold, but got num_features={bn.num_features}.")
    noise = _check_noise(noise)
    mapping = wider_mapping(old, width, generator=generator)

    new_layer = _resized(layer, outputs=width)
    new_layer.weight = _fresh_parameter(replicate_out(layer.weight, mapping), layer.weight)
    if layer.bias is not None:
        new_layer.bias = _fresh_parameter(replicate_out(layer.bias, mapping), layer.bias)

    new_bn: nn.Module | None = None
    if bn is not None:
        new_bn = type(bn)(width, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                          track_running_stats=bn.track_running_stats,
                          device=layer.weight.device, dtype=layer.weight.dtype).train(bn.training)
        if bn.affine:
            new_bn.weight = _fresh_parameter(replicate_out(bn.weight, mapping), bn.weight)
            new_bn.bias = _fresh_parameter(replicate_out(bn.bias, mapping), bn.bias)
        if bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None and bn.num_batches_tracked is not None:
            new_bn.running_mean = replicate_out(bn.running_mean, mapping).clone()
            new_bn.running_var = replicate_out(bn.running_var, mapping).clone()
            new_bn.num_batches_tracked = bn.num_batches_tracked.detach().clone()

    new_consumer = _resized(consumer, inputs=width)
    new_consumer.weight = _fresh_parameter(split_in(consumer.weight, mapping, dim=1, noise=noise, generator=generator),
                                           consumer.weight)
    if consumer.bias is not None:
        new_consumer.bias = _fresh_parameter(consumer.bias, consumer.bias)
    return new_layer, new_bn, new_consumer


def identity_layer(channels: int, *, ndim: int, kernel: int = 3, batch_norm: bool = True,
                   activation: bool = True) -> nn.Sequential:
    """Net2DeeperNet: a new layer that computes the identity, to insert anywhere in a network.

    ``ndim`` 0 gives Linear(+BatchNorm1d)(+ReLU); 1 or 2 gives Conv(bias=False with batch norm)(+BN)(+ReLU)
    with size-keeping padding. The BatchNorm is a pass-through in eval mode (:func:`passthrough_bn_`).
    With ``activation=True`` the layer is the identity on NON-NEGATIVE inputs only, because ReLU drops the
    rest: insert it after a ReLU. With ``activation=False`` it is the identity on every input."""
    _check_int("channels", channels, minimum=1)
    _check_ndim(ndim)
    _check_int("kernel", kernel, minimum=1)
    if kernel % 2 == 0:
        raise ConfigError(f"`kernel` must be odd (a centre tap keeps the size), but got kernel={kernel}.")
    layers: list[nn.Module] = []
    if ndim == 0:
        layers.append(identity_(nn.Linear(channels, channels, bias=not batch_norm)))
    else:
        conv = nn.Conv2d if ndim == 2 else nn.Conv1d
        layers.append(identity_(conv(channels, channels, kernel, padding=kernel // 2, bias=not batch_norm)))
    if batch_norm:
        layers.append(passthrough_bn_(nn.BatchNorm2d(channels) if ndim == 2 else nn.BatchNorm1d(channels)))
    if activation:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def widen_kernel(conv: nn.Module, kernel: int) -> nn.Module:
    """A new conv with a larger odd ``kernel``, same function: the weight is zero-padded around the old
    one (:func:`pad_kernel`) and the padding grows by ``dilation * (kernel - k) / 2``, which for a
    size-keeping conv is ``dilation * (kernel - 1) // 2``. Same stride, dilation, groups (depthwise
    convs too), bias and padding mode."""
    if not isinstance(conv, _CONVS):
        raise ConfigError(f"`conv` must be an nn.Conv1d or nn.Conv2d, but got {_type_name(conv)}.")
    weight = pad_kernel(conv.weight, kernel)  # validates kernel against the current size
    padding: str | tuple[int, ...]
    if conv.padding == "same":
        padding = "same"
    else:
        old = (0,) * len(conv.kernel_size) if isinstance(conv.padding, str) else conv.padding  # str: 'valid'
        padding = tuple(p + d * (kernel - k) // 2 for p, d, k in zip(old, conv.dilation, conv.kernel_size))
    new = _conv_like(conv, kernel=kernel, padding=padding)
    new.weight = _fresh_parameter(weight, conv.weight)
    if conv.bias is not None:
        new.bias = _fresh_parameter(conv.bias, conv.bias)
    return new


class ZeroInitSum(nn.Module):
    """``forward(x) = main(x) + branch(x)``, built so that ``branch`` starts with a zero output.

    Made by :func:`add_zero_branch` (a new skip or branch) and :func:`sum_of_ops` (an op replaced by a
    sum of ops in a cell)."""

    def __init__(self, main: nn.Module, branch: nn.Module) -> None:
        super().__init__()
        self.main = main
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.branch(x)


def add_zero_branch(main: nn.Module, branch: nn.Module) -> ZeroInitSum:
    """Add a skip or a branch whose contribution starts at zero: ``main(x) + branch(x)`` with the
    branch's last layer zeroed (:func:`zero_output_`). Both are deep-copied; the inputs are untouched."""
    branch_copy = copy.deepcopy(branch)
    zero_output_(branch_copy)
    return ZeroInitSum(copy.deepcopy(main), branch_copy)


def sum_of_ops(old: nn.Module, new: nn.Module) -> ZeroInitSum:
    """Replace an op by a sum of ops that starts as the old op: ``old(x) + new(x)`` with ``new`` starting
    at zero (cells). Same mechanics as :func:`add_zero_branch`."""
    return add_zero_branch(old, new)


def preservation_error(before: nn.Module, after: nn.Module, inputs: torch.Tensor) -> float:
    """``max|a - b| / max(max|a|, 1e-12)`` between the outputs of ``before`` and ``after`` on ``inputs``.

    Both run in eval mode without gradients; every submodule's own training flag is restored."""
    with restoring_modes(before, after), torch.no_grad():
        before.eval()
        after.eval()
        a = before(inputs)
        b = after(inputs)
    if a.shape != b.shape:
        raise ConfigError(f"`before` and `after` must give outputs of the same shape, but got {tuple(a.shape)} "
                          f"and {tuple(b.shape)}.")
    a64, b64 = a.double(), b.double()
    return float((a64 - b64).abs().max() / max(float(a64.abs().max()), 1e-12)) if a.numel() else 0.0


# ---- weight inheritance by name ------------------------------------------------------------------
@dataclass(frozen=True)
class Inheritance:
    """What :func:`inherit_matching` copied. ``fraction``: inherited parameter elements over all the
    child's parameter elements (buffers not counted)."""

    copied: tuple[str, ...]
    fresh: tuple[str, ...]
    fraction: float


def parameter_fraction(child: nn.Module, names: Sequence[str] | set[str]) -> float:
    """Share of ``child``'s parameter elements held by the parameters named in ``names`` (other names,
    e.g. buffers, are ignored). A child without parameters gives 1.0: nothing in it starts fresh."""
    wanted = set(names)
    total = inherited = 0
    for name, p in child.named_parameters():
        total += p.numel()
        if name in wanted:
            inherited += p.numel()
    return inherited / total if total else 1.0


def inherit_matching(child: nn.Module, parent_state: Mapping[str, torch.Tensor]) -> Inheritance:
    """Copy, in place into ``child``, every parameter and buffer whose name and shape match one in
    ``parent_state`` (Real et al. 2017's weight inheritance). Unlike a morphism this changes the
    function; it only saves the tensors that still fit."""
    if not isinstance(parent_state, Mapping):
        raise ConfigError(f"`parent_state` must be a mapping of names to tensors (a state dict), but got "
                          f"{_type_name(parent_state)}.")
    copied: list[str] = []
    fresh: list[str] = []
    with torch.no_grad():
        for name, target in child.state_dict(keep_vars=True).items():
            if not isinstance(target, torch.Tensor):
                continue  # extra state objects are not tensors to inherit
            source = parent_state.get(name)
            if isinstance(source, torch.Tensor) and source.shape == target.shape:
                target.copy_(source.detach())
                copied.append(name)
            else:
                fresh.append(name)
    return Inheritance(copied=tuple(copied), fresh=tuple(fresh), fraction=parameter_fraction(child, copied))
