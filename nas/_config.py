"""The one registry: config groups (YAML in ``configs/``, plus entry points of other packages),
checked instantiation, and Hydra composition that leaves the caller's Hydra state alone.

A separate package adds its own space, strategy, estimator, dataset or pruner under an entry-point
group ``nas.<group>``; the entry point names a config mapping (what a YAML file would hold), a YAML
file's path, or a class or function (then ``_target_`` is it, with ``_partial_: true`` for strategies
and estimators, whose space, seed and data are injected at run time)::

    # pyproject.toml of the package `nas-mystrategies`
    [project.entry-points."nas.strategy"]
    annealing = "mystrategies:SimulatedAnnealing"

after which ``nas-search strategy=annealing strategy.t0=2`` and ``nas.search(strategy="annealing")`` work.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import inspect
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.core.errors import ConfigError, unknown_name_message

GROUPS = ("space", "strategy", "estimator", "dataset", "pruner")
_RESERVED = ("_target_", "_partial_")
ENTRY_POINT_PREFIX = "nas."
_PARTIAL_GROUPS = ("strategy", "estimator")  # built with the space, seed and data injected at run time
_RUNTIME = ("space", "seed", "dataset", "budget")  # injected at run time, never config keys


def config_dir() -> Path:
    """The Hydra config directory: ``nas/configs`` when installed, the repository's ``configs/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError(f"The nas configs must be installed next to the package, but neither {here / 'configs'} nor {here.parent / 'configs'} holds config.yaml.")


def available(group: str, search_dirs: Sequence[Path] = ()) -> list[str]:
    """Names a group offers: its YAML files, those of ``search_dirs`` (a user's config folders, from
    ``hydra.searchpath``) and other packages' entry points, e.g.
    ``available('strategy') -> ['bo', 'bohb', 'evolution', 'gp', 'grid', ...]``."""
    files = {p.stem for folder in (config_dir(), *search_dirs) for p in (Path(folder) / group).glob("*.yaml")}
    return sorted(files | set(plugins(group)))


def search_dirs(overrides: Sequence[str]) -> list[Path]:
    """The local folders a ``hydra.searchpath=[file:///a,/b]`` override adds (``pkg://`` entries are Hydra's to read)."""
    dirs: list[Path] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+") == "hydra.searchpath":
            for entry in value.strip().strip("[]").split(","):
                entry = entry.strip().strip("'\"")
                if entry and "://" not in entry.replace("file://", ""):
                    dirs.append(Path(entry.replace("file://", "")).expanduser())
    return dirs


def group_file_overrides(overrides: Sequence[str]) -> list[str]:
    """``overrides`` with each ``group=path/to/file.yaml`` (also within a sweep's ``a.yaml,b.yaml``) turned
    into a name Hydra can compose: the file is registered in Hydra's ConfigStore under its stem (with a
    digest of its path where a packaged entry has that name), its ``name`` defaulting to the stem."""
    from hydra.core.config_store import ConfigStore

    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        group = key.lstrip("+~")
        if not sep or group not in GROUPS or not any(v.strip().endswith((".yaml", ".yml")) for v in value.split(",")):
            out.append(item)
            continue
        names = []
        for choice in value.split(","):
            choice = choice.strip()
            if not choice.endswith((".yaml", ".yml")):
                names.append(choice)
                continue
            name, cfg = load_group_file(group, choice)
            if group == "space":
                _named_after(cfg, name)
            if name in available(group):
                name = f"{name}-{hashlib.sha1(str(Path(choice).resolve()).encode()).hexdigest()[:8]}"
            ConfigStore.instance().store(group=group, name=name, node=cfg)
            names.append(name)
        out.append(f"{key}={','.join(names)}")
    return out


@functools.lru_cache(maxsize=None)
def plugins(group: str) -> dict[str, dict[str, Any]]:
    """The config nodes other packages register for ``group`` (entry points ``nas.<group>``), by name.

    A YAML entry of the same name wins; a plugin that cannot be loaded is refused with its name."""
    from importlib.metadata import entry_points

    nodes: dict[str, dict[str, Any]] = {}
    for ep in entry_points(group=ENTRY_POINT_PREFIX + group):
        if (config_dir() / group / f"{ep.name}.yaml").is_file():
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not a traceback from importlib
            raise ConfigError(f"{group} '{ep.name}': the entry point {ep.value!r} ({ENTRY_POINT_PREFIX}{group}) must load, "
                              f"but it failed: {type(exc).__name__}: {exc}") from exc
        nodes[ep.name] = _plugin_node(group, ep.name, ep.value, obj)
    return nodes


def _plugin_node(group: str, name: str, value: str, obj: Any) -> dict[str, Any]:
    if isinstance(obj, (str, Path)) and str(obj).endswith((".yaml", ".yml")):
        obj = OmegaConf.to_container(OmegaConf.load(obj), resolve=True)
    if isinstance(obj, Mapping):
        node = dict(obj)
    elif callable(obj):
        node = {"_target_": f"{obj.__module__}.{obj.__qualname__}", **_keyword_defaults(obj)}
        if group in _PARTIAL_GROUPS:
            node["_partial_"] = True
    else:
        raise ConfigError(f"{group} '{name}': the entry point {value!r} must name a config mapping, a YAML file or a class or "
                          f"function, but it is a {type(obj).__name__}.")
    if "_target_" not in node:
        raise ConfigError(f"{group} '{name}': the config of entry point {value!r} must have a `_target_`, but got keys {sorted(node)}.")
    return node


def _keyword_defaults(target: Any) -> dict[str, Any]:
    """A class's or function's keyword defaults that a config can hold (what its YAML would list),
    so that ``strategy.key=value`` overrides them as it overrides a YAML entry's keys."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    primitive = (int, float, str, bool, type(None))
    return {p.name: p.default for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _RUNTIME and p.default is not p.empty
            and (isinstance(p.default, primitive) or (isinstance(p.default, (list, tuple)) and all(isinstance(v, primitive) for v in p.default)))}


def register_resolvers() -> None:
    """``${nas.pid:}`` in configs: this process's id (unique run directories for searches started together)."""
    import os

    OmegaConf.register_new_resolver("nas.pid", os.getpid, replace=True)


def _register_plugins() -> None:
    """Make every plugin composable by name (Hydra's ConfigStore, searched by every compose)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group in GROUPS:
        for name, node in plugins(group).items():
            store.store(group=group, name=name, node=node)


def check_name(group: str, name: str, search_dirs: Sequence[Path] = ()) -> None:
    """Refuse a name ``group`` does not offer, answering with the valid ones and the closest."""
    from hydra.core.config_store import ConfigStore

    if name in available(group, search_dirs):
        return
    if f"{name}.yaml" in ConfigStore.instance().repo.get(group, {}):  # a file registered by `group_file_overrides`
        return
    raise ConfigError(unknown_name_message(group, name, available(group, search_dirs)))


def _import(path: str, kind: str) -> Any:
    module_name, _, attr = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{kind}: `_target_` must name an importable class or function, but got {path!r} ({exc}).") from exc


def as_dict(node: Mapping[str, Any] | DictConfig, *, kind: str) -> dict[str, Any]:
    """A config node as a plain dict, interpolations resolved; its keys must be names (strings)."""
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    if not isinstance(data, dict):
        raise ConfigError(f"{kind}: the config must be a mapping of keys to values, but got {type(data).__name__}.")
    keys = [k for k in data if not isinstance(k, str)]
    if keys:
        raise ConfigError(f"{kind}: every key of the config must be a name (a string), but got {keys!r}.")
    return {str(k): v for k, v in data.items()}


def instantiate(node: Mapping[str, Any] | DictConfig, *, kind: str, **runtime: Any) -> Any:
    """Like ``hydra.utils.instantiate`` for our flat configs, but unknown keys are answered with the
    valid ones before anything is built, and our own errors come through unwrapped.

    ``runtime`` values (the space, the seed, the dataset) are injected where the target accepts them.
    With ``_partial_: true`` a ``functools.partial`` is returned instead of calling the target.
    """
    data = as_dict(node, kind=kind)
    if "_target_" not in data:
        raise ConfigError(f"{kind}: the config must have a `_target_` naming what to build, but got keys {sorted(data)}.")
    target = _import(data["_target_"], kind)
    partial = bool(data.get("_partial_", False))
    kwargs = {k: v for k, v in data.items() if k not in _RESERVED}
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}
    if params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in runtime]
        for key, value in kwargs.items():
            if key in params:
                _check_type(kind, key, value, params[key])
        for key in kwargs:
            if key not in params:
                raise ConfigError(f"{kind}: " + unknown_name_message("key", key, valid).replace("Valid names", "Valid keys"))
        runtime = {k: v for k, v in runtime.items() if k in params}
    kwargs = {**kwargs, **runtime}
    if partial:
        return functools.partial(target, **kwargs)
    return target(**kwargs)


def _check_type(kind: str, key: str, value: Any, param: inspect.Parameter) -> None:
    """A value of a key whose default is a number or a flag must be one too (``estimator.epochs=abc``
    otherwise fails deep inside as a TypeError), unless the key also takes text (``int | str``, e.g.
    ``"auto"``), or null where it is optional (``int | None``); other keys are checked by what they build."""
    default, annotation = param.default, str(param.annotation)
    if default is None or default is inspect.Parameter.empty or isinstance(value, type(default)):
        return
    if "str" in annotation or "Any" in annotation or (value is None and "None" in annotation):
        return
    if isinstance(default, bool):
        raise ConfigError(f"{kind}: `{key}` must be true or false, but got {value!r}.")
    if isinstance(default, (int, float)) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{kind}: `{key}` must be a number (its default is {default!r}), but got {value!r}.")


def target_of(node: Mapping[str, Any] | DictConfig, *, kind: str) -> Any:
    """The class or function a config's ``_target_`` names (imported, not called)."""
    target = node.get("_target_") if isinstance(node, (Mapping, DictConfig)) else None
    if not target:
        raise ConfigError(f"{kind}: the config must have a `_target_` naming what to build, but got {node!r}.")
    return _import(str(target), kind)


def function_of(spec: Any, *, key: str, kind: str, what: str) -> tuple[Any, dict[str, Any]]:
    """The function a ``{_target_: pkg.module.function, **kwargs}`` option names (a bare string is the
    target) and its extra keys; ``(None, {})`` for ``None``. Errors name ``kind``'s ``key`` and say ``what``
    the function must do."""
    if spec is None:
        return None, {}
    if isinstance(spec, str):
        spec = {"_target_": spec}
    if not isinstance(spec, (Mapping, DictConfig)) or "_target_" not in spec:
        raise ConfigError(f"{kind}: `{key}` must be null or a mapping with `_target_` naming a function {what}, but got {spec!r}.")
    function = target_of(spec, kind=f"{kind}: {key}")
    if not callable(function):
        raise ConfigError(f"{kind}: `{key}._target_` must name a function, but {spec['_target_']!r} is a {type(function).__name__}.")
    return function, {str(k): v for k, v in spec.items() if k != "_target_"}


def _named_after(node: DictConfig, name: str) -> None:
    """``node.name = name`` where the node names nothing and its class takes a name (what run
    directories and leaderboards call the space); otherwise the node is left as it is."""
    from omegaconf import open_dict

    if "name" in node or "_target_" not in node:
        return
    try:
        accepts = "name" in inspect.signature(target_of(node, kind="space")).parameters
    except (ConfigError, TypeError, ValueError):
        return  # refused with its reason where the space is built
    if accepts:
        with open_dict(node):
            node.name = name


def load_group_file(group: str, name_or_path: str) -> tuple[str, DictConfig]:
    """A group's YAML by registry name or by file path; returns (name, config)."""
    path = Path(str(name_or_path)).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{group}: the YAML file {str(path)!r} does not exist.")
        name = path.stem
    else:
        check_name(group, str(name_or_path))
        name, path = str(name_or_path), config_dir() / group / f"{name_or_path}.yaml"
        if not path.is_file():  # another package's entry point
            return name, OmegaConf.create(plugins(group)[name])
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{group} '{name}': the YAML must be a mapping of keys to values, but got {type(cfg).__name__}.")
    if "defaults" in cfg and path.parent == config_dir() / group:  # built on another entry (strategy=bohb on tpe): let Hydra merge
        return name, compose([f"{group}={name}"])[group]
    cfg = DictConfig({k: v for k, v in cfg.items() if k != "defaults"})
    return name, cfg


def space_from_config(cfg: Mapping[str, Any] | DictConfig) -> Any:
    """Build a space from its declaration; the registry name is injected when the YAML omits it."""
    data = as_dict(cfg, kind="space")
    name = data.get("name", "space")
    return instantiate(data, kind=f"space '{name}'")


def name_space(cfg: DictConfig, choice: str | None) -> DictConfig:
    """Give ``cfg.space`` the name it was chosen by (``space=NAME``, a file of a user's config folder)
    where its YAML names none and its class takes one."""
    node = cfg.get("space")
    if choice and isinstance(node, DictConfig):
        _named_after(node, choice.rsplit("/", 1)[-1])
    return cfg


def get_space(name_or_path: str, **overrides: Any) -> Any:
    """A declared space by registry name (``configs/space/NAME.yaml``) or YAML path, with overrides."""
    name, cfg = load_group_file("space", name_or_path)
    data = as_dict(cfg, kind=f"space '{name}'")
    data.setdefault("name", name)
    data.update(overrides)
    return space_from_config(data)


@contextlib.contextmanager
def _hydra_of_our_own() -> Iterator[None]:
    """Hydra's process-wide state, set aside while we compose and put back afterwards, also on errors.

    Our composition needs Hydra initialised on our config directory, but the caller may be a Hydra
    app (``nas-search`` itself, or a user's ``hydra.main`` / ``initialize``) whose own state must
    survive us: whether it was initialised, its config search path, its version base and job name.
    Hydra's ``initialize*`` restore only ``GlobalHydra``, and refuse to start while one is initialised,
    so the caller's singletons are taken out (not cleared: the caller keeps its objects) and put back.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobRuntime
    from hydra.version import VersionBase

    kinds: tuple[type, ...] = (GlobalHydra, VersionBase, JobRuntime)
    saved = {kind: Singleton._instances.pop(kind) for kind in kinds if kind in Singleton._instances}
    try:
        yield
    finally:
        for kind in kinds:
            Singleton._instances.pop(kind, None)
        Singleton._instances.update(saved)


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The full config as ``nas-search`` would see it, from Hydra's compose API.

    Safe inside a running Hydra app: the caller's Hydra state is left as it was (see
    :func:`_hydra_of_our_own`).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    _register_plugins()
    overrides = group_file_overrides(overrides)
    folders = search_dirs(overrides)
    for item in overrides:
        group, sep, value = item.partition("=")
        if sep and group in GROUPS:
            check_name(group, value, folders)
    register_resolvers()
    with _hydra_of_our_own(), initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    chosen = [value for item in overrides for key, sep, value in [item.partition("=")] if sep and key.lstrip("+~") == "space"]
    return name_space(cfg, chosen[-1] if chosen else None)
