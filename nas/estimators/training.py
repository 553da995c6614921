"""The training estimator: trains each candidate for real and reports validation accuracy per epoch."""

from __future__ import annotations

import math
import os
import time
import zlib
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, TrialFailed, unknown_name_message
from nas.estimators.base import Estimator, Evaluation, ParentWeights, Report, deadline_passed, pruned, resume_state, save_state, score_now
from nas.estimators.modes import restoring_modes
from nas.core.space import SearchSpace
from nas.core.records import Inheritance
from nas.datasets import DataSplits, as_splits

OPTIMIZERS = ("adam", "adamw", "sgd")
#: Relative output difference above which a morphism that should preserve the function is reported as broken.
PRESERVATION_TOLERANCE = 1e-4
PROBE_SIZE = 256
SCHEDULES = ("cosine", "constant", "step")


def available_cpus() -> int:
    """CPU cores this process may run on: its affinity mask where the platform has one, else all cores.

    ``os.process_cpu_count`` (Python 3.13+) is that already, and honours ``PYTHON_CPU_COUNT``;
    ``os.sched_getaffinity`` exists only on some Unixes (not macOS, not Windows); ``os.cpu_count`` may
    answer None when it cannot tell, and then one core is assumed.
    """
    process_cpu_count = getattr(os, "process_cpu_count", None)
    if process_cpu_count is not None:
        count = process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(1, int(count or 1))


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, otherwise CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"estimator: `device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', but got {device!r}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"estimator: `device` is {device!r} but CUDA is not available on this machine; use device=auto or cpu.")
    return dev


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """Multiply-accumulates of convolutions and linear layers in one forward pass on one example.

    Forward hooks see only the modules that actually run (a cell's `none` edges cost nothing);
    much cheaper per trial than torch's FlopCounterMode, which dispatches every op in Python.
    """
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, nn.modules.conv._ConvNd):
            total += output.numel() * (module.in_channels // module.groups * math.prod(module.kernel_size))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    try:
        with restoring_modes(model), torch.no_grad():
            model.eval()
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def arch_seed(seed: int, key: str) -> int:
    """Per-architecture seed: the same architecture starts from the same weights in any order."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31)


class TrainingEstimator(Estimator):
    """Trains the built model on ``dataset`` and scores it by final validation accuracy.

    Every knob is declared in config (``configs/estimator/train.yaml``). On CPU the same seed gives the
    same results for the same ``threads``: torch splits float sums across its threads, so another
    thread count may change the last digits, and then an accuracy or a ranking. The default, one
    thread, gives the same results on any machine and stays fast beside other busy processes
    (``experiments/cpu_threads.py``); ``threads=None`` takes every core this process may use.
    The count is recorded in ``run.json`` (``estimator.threads``). On CUDA it trains under mixed
    precision (bfloat16 autocast where supported).
    Fidelity knobs (``epochs``, ``data_fraction``, ``width_multiplier``, ``depth_multiplier``,
    ``input_scale``, ``max_seconds``) make the estimate cheaper; :meth:`fidelity` reports them and
    the runner records them with every trial.

    Weight inheritance: given ``parent=`` (a :class:`~nas.estimators.base.ParentWeights`), the child is built
    by :meth:`SearchSpace.inherit` from the parent's trained state (a function-preserving morphism
    where the space has one, else every tensor whose name and shape match) and trained for
    ``inherited_epochs`` (default ``epochs``) on a fresh cosine schedule from ``inherited_lr`` (default
    ``lr``), a warm restart; a lower restart rate keeps more of what the parent learnt. Before
    training, the parent and the child are run on a probe batch of validation inputs; the relative
    output difference is recorded in the trial's :class:`~nas.Inheritance` (``preservation_error``,
    with the ``morphism`` applied and the ``fraction`` inherited), and ``violated`` is set when a
    morphism should have preserved the function and did not.

    The search's time budget: when ``report`` says stop because it is spent, the running trial is
    scored on the epochs it had, as ``max_seconds`` does (``time_limited`` in its metrics).
    """

    inherits_weights = True

    def __init__(
        self,
        *,
        space: SearchSpace,
        dataset: DataSplits | Any,
        epochs: int = 10,
        batch_size: int = 64,
        optimizer: str = "adam",
        lr: float = 3e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        schedule: str = "cosine",
        label_smoothing: float = 0.0,
        device: str = "auto",
        threads: int | None = 1,
        seed: int | None = 0,
        max_seconds: float | None = None,
        data_fraction: float = 1.0,
        width_multiplier: float = 1.0,
        depth_multiplier: float = 1.0,
        input_scale: float = 1.0,
        eval_batch_size: int = 1024,
        inherited_epochs: int | None = None,
        inherited_lr: float | None = None,
        test_curve: bool = False,
    ) -> None:
        checks = [
            (epochs >= 1, f"`epochs >= 1` must hold, but got epochs={epochs}."),
            (batch_size >= 1, f"`batch_size >= 1` must hold, but got batch_size={batch_size}."),
            (lr > 0, f"`lr > 0` must hold, but got lr={lr}."),
            (weight_decay >= 0, f"`weight_decay >= 0` must hold, but got weight_decay={weight_decay}."),
            (0 <= label_smoothing < 1, f"`0 <= label_smoothing < 1` must hold, but got label_smoothing={label_smoothing}."),
            (max_seconds is None or max_seconds > 0, f"`max_seconds > 0` (or null) must hold, but got max_seconds={max_seconds}."),
            (inherited_lr is None or inherited_lr > 0, f"`inherited_lr > 0` (or null) must hold, but got inherited_lr={inherited_lr}."),
            (inherited_epochs is None or inherited_epochs >= 1,
             f"`inherited_epochs >= 1` (or null) must hold, but got inherited_epochs={inherited_epochs}."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"estimator 'train': {message}")
        if optimizer not in OPTIMIZERS:
            raise ConfigError("estimator 'train': " + unknown_name_message("optimizer", optimizer, OPTIMIZERS))
        if schedule not in SCHEDULES:
            raise ConfigError("estimator 'train': " + unknown_name_message("schedule", schedule, SCHEDULES))
        self.space = space
        # Low fidelity: a narrower/shallower build of the same architectures, on less and smaller data.
        self.build_space = space.reduced(width=width_multiplier, depth=depth_multiplier)
        self.seed = 0 if seed is None else int(seed)
        self.data = as_splits(dataset).train_subset(data_fraction, seed=self.seed).downscaled(input_scale)
        self.data_fraction, self.width_multiplier, self.depth_multiplier, self.input_scale = (
            data_fraction, width_multiplier, depth_multiplier, input_scale)
        self.epochs, self.batch_size, self.optimizer, self.lr = epochs, batch_size, optimizer, lr
        self.momentum, self.weight_decay, self.schedule = momentum, weight_decay, schedule
        self.label_smoothing, self.max_seconds, self.eval_batch_size = label_smoothing, max_seconds, eval_batch_size
        self.inherited_epochs, self.inherited_lr = inherited_epochs, inherited_lr
        self.test_curve = bool(test_curve)
        self.device = resolve_device(device)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"estimator 'train': `threads` must be an integer >= 1 or null (every core), but got {threads!r}.")
        if self.device.type == "cpu":
            torch.set_num_threads(threads or available_cpus())
        self.input_shape = self.data.input_shape
        self.num_classes = self.data.num_classes
        self._tensors = {k: getattr(self.data, k).to(self.device) for k in
                         ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        # The first torch.optim optimizer of a process imports torch._dynamo (about 1-2 s): pay it here,
        # not in the first trial's recorded cost, which fidelity checks and cost-aware pruning compare.
        self._make_optimizer(nn.Linear(1, 1))

    score_metric = "val_accuracy"

    def recorded_metrics(self) -> frozenset[str]:
        return frozenset({"val_accuracy", "test_accuracy", "train_loss", "params", "macs", "seconds", "epochs"})

    def describe(self) -> dict[str, Any]:
        threads = {"threads": torch.get_num_threads()} if self.device.type == "cpu" else {}
        return {"dataset": self.data.name, "epochs": self.epochs, "batch_size": self.batch_size, "optimizer": self.optimizer,
                "lr": self.lr, "schedule": self.schedule, "device": str(self.device), **threads,
                **{k: v for k, v in self.fidelity().items() if k != "epochs"}}

    def fidelity(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "data_fraction": self.data_fraction, "train_examples": len(self.data.y_train),
                "width_multiplier": self.width_multiplier, "depth_multiplier": self.depth_multiplier,
                "input_scale": self.input_scale, "input_shape": "x".join(map(str, self.input_shape)), "max_seconds": self.max_seconds}

    # ---- pieces --------------------------------------------------------------------------------
    def _make_optimizer(self, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        params, lr = model.parameters(), lr or self.lr
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        cls = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=lr, weight_decay=self.weight_decay)

    def _lr_factor(self, step: int, total: int) -> float:
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * step / total))
        if self.schedule == "step":
            return 0.1 ** (3 * step // total)
        return 1.0

    def _autocast(self) -> Any:
        if self.device.type != "cuda":
            return nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def device_label(self) -> str:
        """Where a trial trained, as recorded with it: ``cpu``, or ``cuda:0`` with the physical GPU a
        worker was given (``CUDA_VISIBLE_DEVICES``, set per worker by ``workers=N``), e.g. ``cuda:0 (GPU 3)``."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if self.device.type != "cuda" or not visible:
            return str(self.device)
        index = self.device.index or 0
        gpus = [g.strip() for g in visible.split(",") if g.strip()]
        return f"{self.device.type}:{index}" + (f" (GPU {gpus[index]})" if index < len(gpus) else "")

    @torch.no_grad()
    def accuracy(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        correct = 0
        with self._autocast():
            for i in range(0, len(y), self.eval_batch_size):
                correct += int((model(x[i:i + self.eval_batch_size]).argmax(1) == y[i:i + self.eval_batch_size]).sum())
        return correct / len(y)

    # ---- the contract --------------------------------------------------------------------------
    def evaluate(self, arch: Architecture, report: Report, parent: ParentWeights | None = None) -> Evaluation:
        torch.manual_seed(arch_seed(self.seed, arch.key))
        inherited: Inheritance | None = None
        if parent is None:
            model = self.build_space.build(arch.sample, self.input_shape, self.num_classes)
        else:
            model, inherited = self._inherit(arch, parent)
        model = model.to(self.device)
        params = count_params(model)
        macs = count_macs(model, self.input_shape, self.device)
        epochs = (self.inherited_epochs or self.epochs) if parent is not None else self.epochs
        lr = (self.inherited_lr or self.lr) if parent is not None else self.lr
        try:
            return self._train(model, report, params, macs, epochs, lr, inherited)
        except torch.cuda.OutOfMemoryError as exc:
            del model
            torch.cuda.empty_cache()
            raise TrialFailed(f"out of memory on {self.device}: {exc}".splitlines()[0]) from exc

    def _inherit(self, arch: Architecture, parent: ParentWeights) -> tuple[nn.Module, Inheritance]:
        """The child built from the parent's state, and what was inherited, measured on a probe batch."""
        from nas.inheritance.morphisms import preservation_error

        generator = torch.Generator().manual_seed(arch_seed(self.seed, arch.key))
        child = self.build_space.inherit(parent.sample, parent.state, arch.sample, self.input_shape, self.num_classes, generator=generator)
        before = self.build_space.build(parent.sample, self.input_shape, self.num_classes)
        before.load_state_dict(parent.state)
        probe = self.data.x_val[:PROBE_SIZE]
        error = preservation_error(before, child.model, probe)
        morph = str(child.morph) if child.morph is not None else None
        return child.model, Inheritance(parent=parent.number, morphism=morph, fraction=child.fraction, preservation_error=error,
                                        violated=child.morph is not None and not error <= PRESERVATION_TOLERANCE)

    def _after_step(self, model: nn.Module, epochs_done: float) -> None:
        """Called after every optimizer step with the model (in train mode; leave it so) and the epochs
        done so far, fractional. Does nothing; a subclass may watch training finer than per epoch."""

    def _train(self, model: nn.Module, report: Report, params: int, macs: int, epochs: int, lr: float,
               inherited: Inheritance | None) -> Evaluation:
        t = self._tensors
        n = len(t["y_train"])
        steps_per_epoch = max(1, math.ceil(n / self.batch_size))
        total = steps_per_epoch * epochs
        optimizer = self._make_optimizer(model, lr)
        needs_scaling = self.device.type == "cuda" and not torch.cuda.is_bf16_supported()
        scaler = torch.amp.GradScaler("cuda") if needs_scaling else None
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        start = time.perf_counter()
        step, epochs_run, train_loss, val_acc, test_acc, time_limited = 0, 0, float("nan"), 0.0, 0.0, False
        saved = resume_state(report)  # a re-run of a lost trial: continue where it stopped, as if never stopped
        if saved is not None:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            if scaler is not None and saved.get("scaler") is not None:
                scaler.load_state_dict(saved["scaler"])
            step, epochs_run, train_loss, val_acc = saved["step"], saved["epochs_run"], saved["train_loss"], saved["val_acc"]
        for epoch in range(epochs_run, epochs):
            model.train()
            order = torch.randperm(n, generator=generator).to(self.device)
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device, dtype=torch.long)
            step_lr = lr
            for i in range(0, n, self.batch_size):
                step_lr = lr * self._lr_factor(step, total)
                for group in optimizer.param_groups:
                    group["lr"] = step_lr
                idx = order[i:i + self.batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on a single example
                    continue
                with self._autocast():
                    logits = model(t["x_train"][idx])
                    loss = F.cross_entropy(logits, t["y_train"][idx], label_smoothing=self.label_smoothing)
                correct += (logits.detach().argmax(1) == t["y_train"][idx]).sum()
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:  # float16 autocast needs loss scaling; bfloat16 and float32 do not
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                loss_sum += loss.detach() * len(idx)
                step += 1
                self._after_step(model, step / steps_per_epoch)
            train_loss = float(loss_sum) / n
            epochs_run = epoch + 1
            if not math.isfinite(train_loss):
                raise TrialFailed(f"training loss became {train_loss} in epoch {epochs_run}")
            val_acc = self.accuracy(model, t["x_val"], t["y_val"])
            curves = {"train_loss": train_loss, "train_accuracy": int(correct) / n, "train_lr": step_lr}
            if self.test_curve:  # for TensorBoard only: the score is validation accuracy, never this
                test_acc = curves["test_accuracy"] = self.accuracy(model, t["x_test"], t["y_test"])
            if report(epoch, val_acc, **curves):
                if score_now(report):  # the time budget is spent, or the pruner accepted it: scored on the epochs it had
                    time_limited = deadline_passed(report) and epochs_run < epochs
                    break
                raise pruned(f"pruned after epoch {epochs_run} at validation accuracy {val_acc:.4f}", params=params, macs=macs,
                             seconds=time.perf_counter() - start, epochs=epochs_run, train_loss=train_loss, inheritance=inherited)
            if self.max_seconds is not None and time.perf_counter() - start > self.max_seconds and epochs_run < epochs:
                time_limited = True  # scored on the epochs it had: a fidelity, recorded with the trial
                break
            if epochs_run < epochs:  # after the last epoch the trial ends: nothing to resume
                save_state(report, epoch, lambda: {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(), "scaler": scaler.state_dict() if scaler is not None else None,
                    "step": step, "epochs_run": epochs_run, "train_loss": train_loss, "val_acc": val_acc})
        seconds = time.perf_counter() - start
        if not self.test_curve:
            test_acc = self.accuracy(model, t["x_test"], t["y_test"])
        metrics = {"val_accuracy": val_acc, "test_accuracy": test_acc, "train_loss": train_loss, "params": params,
                   "macs": macs, "seconds": seconds, "epochs": epochs_run, "time_limited": time_limited, "device": self.device_label()}
        return Evaluation(score=val_acc, metrics=metrics, model=model, inheritance=inherited)
