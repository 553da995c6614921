"""Command-line entry points: ``nas-search`` (Hydra app), ``nas-leaderboard RUN_DIR`` and ``nas-dashboard RUN_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nas._config import config_dir
from nas.core.errors import ConfigError, NASError


def _search_app(cfg) -> float | None:  # type: ignore[no-untyped-def]
    from hydra.core.hydra_config import HydraConfig

    from nas._api import run_from_config
    from nas._config import name_space

    name_space(cfg, HydraConfig.get().runtime.choices.get("space"))
    run_dir = Path(cfg.run_dir) if cfg.get("run_dir") else Path(HydraConfig.get().runtime.output_dir)
    existed = (run_dir / "run.json").exists()
    try:
        result = run_from_config(cfg, run_dir)
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not existed:
            _remove_if_only_hydra(run_dir)  # a run refused before it started leaves nothing behind
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Finished trials are kept in {run_dir}; run the same command with "
              f"hydra.run.dir={run_dir} to resume.", file=sys.stderr)
        sys.exit(130)
    if cfg.get("workers", 1) == 0:  # prepared for workers started elsewhere: nothing ran yet
        return None
    print()
    print(result.leaderboard())
    print()
    print(f"Run directory: {run_dir}")
    if cfg.get("tensorboard", True):
        print(f"Review it:     tensorboard --logdir {run_dir / 'tb'}")
    print(f"Leaderboard:   nas-leaderboard {run_dir}")
    best = result.best
    return best.value if best is not None else None


def _remove_if_only_hydra(run_dir: Path) -> None:
    """Remove ``run_dir`` if it holds nothing but what Hydra writes before the app runs (``.hydra/``, a log)."""
    import shutil

    if not run_dir.is_dir():
        return
    if all(p.name == ".hydra" or (p.suffix == ".log" and p.is_file()) for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)


def check_overrides(argv: list[str]) -> None:
    """Group choices on the command line (``strategy=randm``, a sweep's ``strategy=random,grdi``) are
    answered as in Python (the valid names, the closest one) before Hydra says it found no file."""
    from nas._config import GROUPS, check_name, search_dirs

    folders = search_dirs(argv)
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in GROUPS or "(" in value:
            continue
        for choice in value.split(","):
            check_name(key, choice.strip(), folders)


def search_main() -> None:
    """``nas-search [overrides...]``: a Hydra app over ``configs/``; ``-m`` sweeps."""
    import hydra

    from nas._config import _register_plugins, group_file_overrides, register_resolvers

    register_resolvers()
    try:
        _register_plugins()  # other packages' spaces, strategies, ... composable by name
        sys.argv[1:] = group_file_overrides(sys.argv[1:])  # space=path/to/my_space.yaml
        check_overrides(sys.argv[1:])
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(_search_app)()


def leaderboard_main(argv: list[str] | None = None) -> None:
    """``nas-leaderboard RUN_DIR [--top K]``: print the leaderboard of an existing run directory."""
    from nas._results import load

    parser = _run_dir_parser("nas-leaderboard", "Print the leaderboard of a run directory (finished or cut short): the best "
                             "trials, their scores and architectures.")
    parser.add_argument("--top", type=int, default=10, help="how many trials to list (default: 10)")
    parser.add_argument("--pareto", action="store_true", help="list the Pareto front of the search's objectives alone, best "
                        "first by the first objective")
    args = parser.parse_args(argv)
    print(_or_exit(load, args.run_dir).leaderboard(args.top, pareto=args.pareto))


def _run_dir_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("run_dir", type=Path, help="a run directory of nas-search or nas.search (it holds run.json)")
    return parser


def _or_exit(function: Any, *args: Any) -> Any:
    """``function(*args)``; a NASError is printed as one line and exits with status 2."""
    try:
        return function(*args)
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def dashboard_app(run_dir: str | Path) -> Any:
    """optuna-dashboard's WSGI app on a run directory's study, opened as nas opens it (a journal file
    under the workers' own lock, so the dashboard's writes, notes for instance, never interleave with
    theirs; Optuna's stock ``optuna-dashboard study.log`` takes another lock)."""
    import importlib

    from nas._results import run_file
    from nas.core.errors import ConfigError
    from nas.store import open_storage

    try:
        optuna_dashboard = importlib.import_module("optuna_dashboard")  # an optional extra
    except ImportError:
        raise ConfigError("nas-dashboard needs optuna-dashboard: pip install \"nas[dashboard]\"") from None
    _, storage = open_storage(run_file(Path(run_dir))["storage"], Path(run_dir))
    return optuna_dashboard.wsgi(storage)


def dashboard_main(argv: list[str] | None = None) -> None:
    """``nas-dashboard RUN_DIR [--host H] [--port P]``: optuna-dashboard on a run's study, live."""
    parser = _run_dir_parser("nas-dashboard", "Serve optuna-dashboard on a run directory's study (safe while its workers "
                             "write: the journal file is opened under their lock).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    args = parser.parse_args(argv)
    app = _or_exit(dashboard_app, args.run_dir)
    from wsgiref.simple_server import make_server

    print(f"nas-dashboard: http://{args.host}:{args.port}/dashboard/ on {args.run_dir} (Ctrl-C stops it)", flush=True)
    with make_server(args.host, args.port, app) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    search_main()



def audit_main(argv: list[str] | None = None) -> None:
    """``nas-audit RUN_DIR [audit.KEY=VALUE ...]``: audit the top candidates of a run directory."""
    parser = _run_dir_parser("nas-audit", "Audit the top candidates of a finished search against baselines on its test split: "
                             "per-class figures, slices, fairness, calibration, robustness. Writes RUN_DIR/audit/report.md, "
                             "report.json, pictures, and TensorBoard events under RUN_DIR/tb/audit.")
    parser.add_argument("overrides", nargs="*", help="audit settings, e.g. audit.top_k=3 audit.slices=group "
                        "audit.attacks=[noise,fgsm,pgd] audit.epsilons=[0.01,0.1] audit.human_level=0.95")
    args = parser.parse_args(argv)
    _or_exit(_audit, args.run_dir, args.overrides)


def _audit(run_dir: Path, overrides: list[str]) -> None:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from nas.model_audit.run import AuditSettings, audit

    for item in overrides:
        if not item.startswith("audit.") or "=" not in item:
            raise ConfigError(f"nas-audit: each setting must read audit.KEY=VALUE, but got {item!r}.")
    try:
        given = OmegaConf.to_container(OmegaConf.from_dotlist(overrides)).get("audit", {})  # type: ignore[union-attr]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"nas-audit: the settings must read audit.KEY=VALUE, but {overrides} does not parse ({exc}).") from None
    audit(run_dir, settings=AuditSettings.from_mapping(given))  # type: ignore[arg-type]


def monitor_main(argv: list[str] | None = None) -> None:
    """``nas-monitor RUN_DIR STREAM.npz [monitor.KEY=VALUE ...]``: replay a stream through the deployed model."""
    parser = _run_dir_parser("nas-monitor", "Replay a stream of later data (an .npz file: x, the raw inputs, and y, the labels "
                             "where known, -1 elsewhere) through the run's best model and run drift detectors on it. Writes "
                             "RUN_DIR/monitor/report.md, report.json, a picture per detector, TensorBoard events under RUN_DIR/tb/monitor.")
    parser.add_argument("stream", type=Path, help="the stream: an .npz file with x (and y)")
    parser.add_argument("overrides", nargs="*", help="monitor.detectors=[ddm,adwin,hdddm] monitor.window=250; on_drift=research "
                        "(a new search on the labelled data since the drift, warm-started from this run) with "
                        "monitor.research=[budget.trials=10] for its config")
    args = parser.parse_args(argv)
    _or_exit(_monitor, args.run_dir, args.stream, args.overrides)


def _monitor(run_dir: Path, stream: Path, overrides: list[str]) -> None:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from nas.model_audit.monitor import monitor

    overrides = [f"monitor.{item}" if item.startswith("on_drift=") else item for item in overrides]  # the shorthand
    for item in overrides:
        if not item.startswith("monitor.") or "=" not in item:
            raise ConfigError(f"nas-monitor: each setting must read monitor.KEY=VALUE, but got {item!r}.")
    try:
        given = dict(OmegaConf.to_container(OmegaConf.from_dotlist(overrides)).get("monitor", {}))  # type: ignore[union-attr]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"nas-monitor: the settings must read monitor.KEY=VALUE, but {overrides} does not parse ({exc}).") from None
    unknown = sorted(set(given) - {"detectors", "window", "on_drift", "research"})
    if unknown:
        raise ConfigError(f"`monitor.{unknown[0]}` is not a setting; the settings are detectors, window, on_drift, research.")
    monitor(run_dir, stream, **given)
