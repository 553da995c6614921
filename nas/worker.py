"""``nas-worker RUN_DIR`` (``python -m nas.worker RUN_DIR``): one more worker on a run directory's study.

Reads the run directory's resolved ``config.yaml`` and searches its study until the budget is spent,
beside the workers already there (on this machine: the budget is exact; see :mod:`nas.engine.pool`).
``nas-search workers=N`` is worker 0 and starts N-1 of these itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.core.errors import NASError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas-worker", description="Attach one more worker to a run directory's search: it "
                                     "reads the run's config.yaml and trains trials of the same study until the budget is spent.")
    parser.add_argument("run_dir", type=Path, help="a run directory of nas-search or nas.search (it holds config.yaml and run.json)")
    parser.add_argument("--index", type=int, default=None, help="this worker's number (shown in its lines; default: none)")
    parser.add_argument("--replaces", default=None, metavar="HOST:PID", help="a dead worker this one replaces: its running trials are "
                        "failed and re-queued at once (without waiting for the heartbeat's grace)")
    args = parser.parse_args(argv)
    from nas._api import run_worker

    try:
        run_worker(args.run_dir, index=args.index, replaces=args.replaces)
    except NASError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def console_main() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    console_main()
