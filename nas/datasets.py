"""Datasets, all offline: scikit-learn's digits, mnist1d (generated locally), user .npz files, callables.

Every loader returns :class:`DataSplits`: train / validation / test tensors. Selection uses the
validation split only; the test split is evaluated and reported, never used to choose.

Each :class:`DataSplits` carries its :class:`Preprocessing`, the steps from the raw arrays to those
tensors (the loaders build the tensors by applying it), and the runner keeps it with the best
model (:func:`save_preprocessing`), so the exported model takes raw inputs:

- ``digits``: raw ``load_digits().images`` ``(N, 8, 8)``, values 0..16: add a channel axis, divide by
  16, standardise with the training split's mean and std (one of each for all pixels).
- ``mnist1d``: raw signals ``(N, 40)``: add a channel axis, standardise (global).
- ``npz``: the file's arrays; ``(N, H, H)`` images get a channel axis; standardised (global) unless
  ``standardize=False`` (``standardize="feature"``: one mean and std per input position).
- a mapping of arrays (from a user callable) and :func:`from_arrays`: standardised (global) by default.
- a ``DataSplits`` built by hand: ``preprocessing`` as given, identity by default.
- the training estimator's ``input_scale`` appends a ``Downscale`` step (:meth:`DataSplits.downscaled`);
  ``data_fraction`` (:meth:`DataSplits.train_subset`) changes nothing: the statistics stay those of
  the whole training split.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from nas.core.errors import ConfigError
from nas._preprocessing import (
    PREPROCESSING_FILE,
    AddChannelAxis,
    Divide,
    Downscale,
    Preprocessing,
    PreprocessingModule,
    Standardize,
    Step,
)

__all__ = [
    "NPZ_KEYS", "PREPROCESSING_FILE", "AddChannelAxis", "DataSplits", "Divide", "Downscale", "HasData", "Preprocessing",
    "PreprocessingModule", "Standardize", "Step", "as_splits", "cache_dir", "digits", "from_arrays", "load_preprocessing",
    "mnist1d", "npz", "save_preprocessing",
]


@dataclass(frozen=True)
class DataSplits:
    """Tensors for one classification task; ``x_*`` are float32 ``(N, *input_shape)``, ``y_*`` int64.

    ``preprocessing`` is what turns the user's raw arrays into ``x_*`` (identity unless given); where
    its raw shape is known it must lead to ``input_shape``. ``groups`` holds per-example arrays of the
    validation and test splits (``{"test": {"group": array}}``: a sensitive attribute, a tag, a source) for
    the audit's slices and fairness figures.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    groups: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.preprocessing, Preprocessing):
            raise ConfigError(f"dataset '{self.name}': `preprocessing` must be a nas.datasets.Preprocessing, "
                              f"but got {type(self.preprocessing).__name__}.")
        for split, arrays in self.groups.items():
            if split not in ("val", "test"):
                raise ConfigError(f"dataset '{self.name}': `groups` must be keyed by split, 'val' or 'test', but got {split!r}.")
            size = len(self.y_val if split == "val" else self.y_test)
            for key, values in arrays.items():
                if len(values) != size:
                    raise ConfigError(f"dataset '{self.name}': group `{key}` of the {split} split must have one value per "
                                      f"example ({size}), but has {len(values)}.")
        out = self.preprocessing.output_shape
        if out is not None and out != self.input_shape:
            raise ConfigError(f"dataset '{self.name}': the preprocessing must lead to the input shape {self.input_shape}, "
                              f"but it maps raw {self.preprocessing.raw_shape} to {out}.")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def train_subset(self, fraction: float, *, seed: int = 0) -> DataSplits:
        """A stratified ``fraction`` of the training split (every class keeps its share, at least one
        example); validation and test are unchanged, so scores stay comparable across fractions."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ConfigError(f"estimator: `0 < data_fraction <= 1` must hold, but got data_fraction={fraction!r}.")
        if fraction == 1:
            return self
        generator = torch.Generator().manual_seed(seed)
        keep = []
        for label in torch.unique(self.y_train):
            members = torch.nonzero(self.y_train == label).flatten()
            count = max(1, round(len(members) * fraction))
            keep.append(members[torch.randperm(len(members), generator=generator)[:count]])
        index = torch.sort(torch.cat(keep)).values
        return replace(self, x_train=self.x_train[index], y_train=self.y_train[index])

    def downscaled(self, scale: float) -> DataSplits:
        """Every split with its spatial sizes times ``scale`` (area averaging): 8x8 -> 4x4 at 0.5."""
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise ConfigError(f"estimator: `0 < input_scale <= 1` must hold, but got input_scale={scale!r}.")
        if scale == 1:
            return self
        spatial = self.input_shape[1:]
        if not 1 <= len(spatial) <= 2:
            raise ConfigError(f"estimator: `input_scale` needs inputs of shape (C, L) or (C, H, W), but dataset "
                              f"'{self.name}' has input shape {self.input_shape}; keep input_scale=1.")
        step = Downscale(tuple(max(1, round(d * scale)) for d in spatial))
        pool = step.module()
        before = self.preprocessing
        if before.raw_shape is None and before.is_identity:  # hand-built splits: the raw inputs are these
            before = replace(before, raw_shape=self.input_shape)
        with torch.no_grad():
            x = {k: pool(getattr(self, k)) for k in ("x_train", "x_val", "x_test")}
        return replace(self, x_train=x["x_train"], x_val=x["x_val"], x_test=x["x_test"], preprocessing=before.then(step))

    def __repr__(self) -> str:
        return (f"DataSplits({self.name!r}, input_shape={self.input_shape}, classes={self.num_classes}, "
                f"train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)})")


def _check_xy(name: str, key: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim < 2:
        raise ConfigError(f"dataset '{name}': `x_{key}` must have shape (N, features...) with N >= 1, but got shape {x.shape}.")
    if len(x) != len(y):
        raise ConfigError(f"dataset '{name}': `x_{key}` and `y_{key}` must have the same length, but got {len(x)} and {len(y)}.")
    if len(x) == 0:
        raise ConfigError(f"dataset '{name}': `x_{key}` must hold at least one example, but it is empty.")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"dataset '{name}': `y_{key}` must be a 1-D array of non-negative integer labels, but got dtype {y.dtype}, shape {y.shape}.")
    if y.min() < 0:
        at = int(np.argmax(y < 0))
        raise ConfigError(f"dataset '{name}': `y_{key}` must hold non-negative integer labels, but y_{key}[{at}] = {int(y[at])} "
                          f"({int((y < 0).sum())} negative of {len(y)}).")
    if not np.isfinite(x).all():
        raise ConfigError(f"dataset '{name}': `x_{key}` must hold finite numbers, but it contains NaN or inf.")


def from_arrays(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    val_fraction: float = 0.15,
    split_seed: int = 0,
    standardize: bool | str = True,
    transform: Sequence[Step] = (),
    groups: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> DataSplits:
    """Build splits from raw arrays; without ``x_val`` a stratified validation split is carved from train.

    ``groups`` (``{"train": {"group": g_train}, "test": {"group": g_test}}``, also ``"val"``): per-example
    arrays that follow the examples; a ``train`` array is split with the training data into its validation part.

    ``transform`` steps (e.g. ``[AddChannelAxis()]``) are applied first; then ``standardize``:
    ``True``/``"global"`` subtracts the training split's mean and divides by its std (one of each
    over all values), ``"feature"`` one per input position, ``False``/``"none"`` neither. The result's
    ``preprocessing`` records all of it, from these raw arrays on.
    """
    modes = {True: "global", False: "none", "global": "global", "feature": "feature", "none": "none"}
    if not isinstance(standardize, (bool, str)) or standardize not in modes:
        raise ConfigError(f"dataset '{name}': `standardize` must be true, false, 'global', 'feature' or 'none', but got {standardize!r}.")
    mode = modes[standardize]
    x_train, x_test = np.asarray(x_train, dtype=np.float32), np.asarray(x_test, dtype=np.float32)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    _check_xy(name, "train", x_train, y_train)
    _check_xy(name, "test", x_test, y_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ConfigError(f"dataset '{name}': `x_train` and `x_test` must have the same example shape, but got {x_train.shape[1:]} and {x_test.shape[1:]}.")
    try:
        pre = Preprocessing(steps=tuple(transform), raw_shape=tuple(x_train.shape[1:]))
    except ConfigError as exc:
        raise ConfigError(f"dataset '{name}': {exc}") from exc
    tags = {split: {k: np.asarray(v) for k, v in arrays.items()} for split, arrays in (groups or {}).items()}
    for split, arrays in tags.items():
        expected = {"train": len(y_train), "test": len(y_test), "val": None if y_val is None else len(y_val)}
        if split not in expected or expected[split] is None:
            raise ConfigError(f"dataset '{name}': `groups` must be keyed by 'train', 'val' (with x_val) or 'test', but got {split!r}.")
        for key, values in arrays.items():
            if values.ndim != 1 or len(values) != expected[split]:
                raise ConfigError(f"dataset '{name}': group `{key}` of the {split} split must be one value per example, shape "
                                  f"({expected[split]},), but got shape {values.shape}.")
    if x_val is None:
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"dataset '{name}': `0 < val_fraction < 1` must hold, but got val_fraction={val_fraction}.")
        from sklearn.model_selection import train_test_split

        classes, counts = np.unique(y_train, return_counts=True)
        stratify = y_train if counts.min() >= 2 else None
        carried = list(tags.get("train", {}).items())
        parts = train_test_split(x_train, y_train, *(v for _, v in carried), test_size=val_fraction, random_state=split_seed,
                                 stratify=stratify)
        x_train, x_val, y_train, y_val = parts[:4]
        tags["val"] = {key: parts[5 + 2 * i] for i, (key, _) in enumerate(carried)}
    else:
        x_val, y_val = np.asarray(x_val, dtype=np.float32), np.asarray(y_val)
        _check_xy(name, "val", x_val, y_val)
        if x_val.shape[1:] != x_train.shape[1:]:
            raise ConfigError(f"dataset '{name}': `x_train` and `x_val` must have the same example shape, but got {x_train.shape[1:]} and {x_val.shape[1:]}.")
    seen = set(np.unique(y_train).tolist())
    if len(seen) < 2:
        raise ConfigError(f"dataset '{name}': the training split must hold at least two classes, but every label of `y_train` is "
                          f"{int(y_train[0])} ({len(y_train)} examples).")
    for key, y in (("val", y_val), ("test", y_test)):
        unseen = sorted(set(np.unique(y).tolist()) - seen)
        if unseen:
            raise ConfigError(f"dataset '{name}': every label of `y_{key}` must occur in training, but {unseen[:10]} "
                              f"({int(np.isin(y, unseen).sum())} of {len(y)} examples) never does; training has labels "
                              f"{sorted(seen)[:10]}{'...' if len(seen) > 10 else ''}.")
    num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    # The tensors are made by applying the recorded preprocessing itself: what is saved is what the network saw.
    x_train, x_val, x_test = (pre(a) for a in (x_train, x_val, x_test))
    if mode != "none":
        if mode == "global":
            stats = Standardize(mean=(float(x_train.mean()),), std=(float(x_train.std()) or 1.0,))
        else:
            std = x_train.std(axis=0)
            stats = Standardize(mean=tuple(x_train.mean(axis=0).ravel().tolist()), std=tuple(np.where(std > 0, std, 1.0).ravel().tolist()),
                                shape=tuple(x_train.shape[1:]))
        standardized = Preprocessing(steps=(stats,))
        x_train, x_val, x_test = (standardized(a) for a in (x_train, x_val, x_test))
        pre = pre.then(stats)

    def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    kept = {split: arrays for split, arrays in tags.items() if split in ("val", "test") and arrays}
    return DataSplits(name, t(x_train, torch.float32), t(y_train, torch.int64), t(x_val, torch.float32),
                      t(y_val, torch.int64), t(x_test, torch.float32), t(y_test, torch.int64), num_classes, preprocessing=pre,
                      groups=kept)


def digits(*, val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 0) -> DataSplits:
    """scikit-learn's 1,797 8x8 handwritten digits as (1, 8, 8) images, stratified train/val/test.

    Raw inputs are ``load_digits().images`` (``(N, 8, 8)``, values 0..16): a channel axis is added,
    values are divided by 16 and standardised (the training split's mean and std)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"dataset 'digits': `0 < test_fraction < 1` must hold, but got test_fraction={test_fraction}.")
    data = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        data.images.astype(np.float32), data.target, test_size=test_fraction, random_state=split_seed, stratify=data.target)
    return from_arrays("digits", x_train, y_train, x_test, y_test, val_fraction=val_fraction, split_seed=split_seed,
                       transform=(AddChannelAxis(), Divide(16.0)))


def cache_dir() -> Path:
    """The user's cache directory for generated data (``$NAS_CACHE`` or ``$XDG_CACHE_HOME/nas``)."""
    root = os.environ.get("NAS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nas"
    return Path(root)


def mnist1d(*, val_fraction: float = 0.1, split_seed: int = 0, seed: int | None = None) -> DataSplits:
    """mnist1d (4,000 train / 1,000 test signals of length 40), generated locally and cached.

    Uses ``mnist1d.data.make_dataset(get_dataset_args())``, which synthesises the data; it never
    downloads. ``seed`` overrides the generator's default seed. Raw inputs are the ``(N, 40)``
    signals: a channel axis is added and values are standardised (the training split's mean and std).
    """
    path = cache_dir() / f"mnist1d{'' if seed is None else f'-seed{seed}'}.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        if seed is not None:
            args.seed = seed
        raw = make_dataset(args)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, x_train=raw["x"], y_train=raw["y"], x_test=raw["x_test"], y_test=raw["y_test"])
        os.replace(tmp, path)
    with np.load(path) as d:
        return from_arrays("mnist1d", d["x_train"], d["y_train"], d["x_test"], d["y_test"],
                           val_fraction=val_fraction, split_seed=split_seed, transform=(AddChannelAxis(),))


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def npz(*, path: str, val_fraction: float = 0.15, split_seed: int = 0, standardize: bool | str = True) -> DataSplits:
    """A user file holding ``x_train``, ``y_train``, ``x_test``, ``y_test`` (optionally ``x_val``, ``y_val``).

    Images should be ``(N, C, H, W)`` (square ``(N, H, H)`` gets a channel axis), signals ``(N, C, L)``
    (a non-square ``(N, H, W)`` is read as ``H`` channels of length ``W``, with a warning), vectors ``(N, D)``. Inputs are standardised by default: minus the training split's mean, divided
    by its std, one of each over all values; ``standardize=False`` keeps them as they are,
    ``"feature"`` uses one mean and std per input position (see :func:`from_arrays`). The splits'
    ``preprocessing`` records these steps, so the searched model takes the file's raw arrays.
    Group arrays ``g_test`` / ``g_test_<name>`` (and ``g_train...``, ``g_val...``), one value per example, are kept
    for the audit (:func:`npz_groups`); a ``g_train`` array is split with the training data.
    """
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise ConfigError(f"dataset 'npz': `path` must name an existing .npz file, but got {str(path)!r}.")
    try:
        loaded = np.load(file, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"dataset 'npz': `path` must name a .npz file written by numpy.savez, but {str(path)!r} is not one "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).") from None
    if not hasattr(loaded, "files"):  # a single .npy array
        raise ConfigError(f"dataset 'npz': `path` must name a .npz archive of named arrays {list(NPZ_KEYS)}, but {str(path)!r} holds "
                          f"one array of shape {loaded.shape}.")
    with loaded as d:
        missing = [k for k in NPZ_KEYS if k not in d.files]
        if missing:
            raise ConfigError(f"dataset 'npz': the file must hold arrays {list(NPZ_KEYS)}, but {str(file)!r} lacks {missing} (it has {sorted(d.files)}).")
        arrays = {k: d[k] for k in d.files}
    x = arrays["x_train"]
    square_images = x.ndim == 3 and x.shape[1] == x.shape[2]
    if x.ndim == 3 and not square_images:
        import warnings

        warnings.warn(f"dataset 'npz': x_train has shape {x.shape}: read as {x.shape[1]} channels of signals of length {x.shape[2]} "
                      f"(Conv1d models); square (N, H, H) arrays are read as one-channel images. For a non-square image, save it as "
                      f"(N, 1, H, W).", UserWarning, stacklevel=2)
    return from_arrays(file.stem, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                       x_val=arrays.get("x_val"), y_val=arrays.get("y_val"), val_fraction=val_fraction, split_seed=split_seed,
                       standardize=standardize, transform=(AddChannelAxis(),) if square_images else (), groups=npz_groups(arrays))


def npz_groups(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The group arrays of an npz file: ``g_<split>`` (named ``group``) and ``g_<split>_<name>``, split one of
    train, val, test (``g_train_sex``, ``g_test_sex``: the group ``sex`` of each example)."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, values in arrays.items():
        if not key.startswith("g_"):
            continue
        split, _, name = key[2:].partition("_")
        if split not in ("train", "val", "test"):
            raise ConfigError(f"dataset 'npz': a group array must be named g_<split> or g_<split>_<name> with split train, val or "
                              f"test, but got {key!r}.")
        groups.setdefault(split, {})[name or "group"] = values
    return groups


def as_splits(obj: Any, *, name: str = "custom") -> DataSplits:
    """Coerce what a user callable returned: DataSplits, or a mapping with the ``NPZ_KEYS`` arrays."""
    if isinstance(obj, DataSplits):
        return obj
    if isinstance(obj, Mapping):
        missing = [k for k in NPZ_KEYS if k not in obj]
        if missing:
            raise ConfigError(f"dataset '{name}': a dataset callable must return DataSplits or a mapping with {list(NPZ_KEYS)}, but the mapping lacks {missing}.")
        extra = {k: obj[k] for k in ("x_val", "y_val") if k in obj}
        return from_arrays(name, *(np.asarray(obj[k]) for k in NPZ_KEYS), **extra)
    raise ConfigError(f"dataset '{name}': a dataset callable must return DataSplits or a mapping of arrays, but got {type(obj).__name__}.")


@runtime_checkable
class HasData(Protocol):
    """An estimator that trains or scores on a dataset (the training and zero-cost estimators)."""

    data: DataSplits


def save_preprocessing(estimator: object, best_dir: str | Path) -> Path | None:
    """Write the estimator's preprocessing to ``best_dir/preprocessing.json``, next to the best weights.

    The runner calls it whenever it saves the best trial. An estimator without a dataset (a table
    lookup) saves nothing, and a file an earlier estimator left there is removed: no file means
    identity when the run is loaded. Returns the path written, or None.
    """
    path = Path(best_dir) / PREPROCESSING_FILE
    data = estimator.data if isinstance(estimator, HasData) else None
    if not isinstance(data, DataSplits):
        path.unlink(missing_ok=True)
        return None
    return data.preprocessing.save(path)


def load_preprocessing(best_dir: str | Path) -> Preprocessing:
    """The preprocessing saved in ``best_dir``; identity when there is none (an estimator without
    data, or a run directory written before preprocessing was saved)."""
    path = Path(best_dir) / PREPROCESSING_FILE
    if not path.exists():
        return Preprocessing()
    try:
        return Preprocessing.load(path)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"`{path}` must hold a preprocessing written by nas, but reading it failed: {exc}") from exc
