"""Workers as a SLURM job array, for real: `nas-search -m hydra/launcher=workers_slurm worker=0,1 ...`
submitted by submitit to a Slurm controller, run by slurmd, every job one worker of one study.

    .venv/bin/python experiments/slurm_workers.py [--workers 2] [--trials 12] [--epochs 3] [--start-slurm]

``--start-slurm`` starts a throwaway one-node cluster first (Debian's `slurm-wlm` 22.05 and `munge`:
``apt-get install slurm-wlm munge``): munged, slurmctld and slurmd as this user, configuration, state
and spool in a temporary folder, this machine's cores as the one node, no accounting; stopped and
removed at the end. Without it the script submits to the cluster `sbatch` already reaches.

Then it runs the preset (`configs/hydra/launcher/workers_slurm.yaml`, GPUs off: `gpus_per_node=null`)
on a journal file in a folder every job reaches, and checks: exactly ``--trials`` COMPLETE trials,
none left running, every worker job ran trials, each job ran as its own Slurm job (array task). Prints
the job ids, trials per worker, and seconds; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nas

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import free_port  # noqa: E402  (a free loopback port, as the test servers take)

BIN = Path(sys.executable).parent
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


class OneNodeSlurm:
    """munged + slurmctld + slurmd on this machine, everything under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root, self.procs = root, []
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf"), "PATH": SBIN}

    def start(self) -> None:
        for tool in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo"):
            if shutil.which(tool, path=SBIN) is None:
                sys.exit(f"slurm_workers: {tool} not found (apt-get install slurm-wlm munge)")
        host = socket.gethostname().split(".")[0]
        cpus = os.cpu_count() or 1
        for sub in ("state", "spool", "munge", "log"):
            (self.root / sub).mkdir(parents=True)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = self.root / "munge" / "munge.socket"
        self._spawn(["munged", "--force", "--foreground", f"--key-file={key}", f"--socket={socket_path}",
                     f"--pid-file={self.root / 'munge' / 'munged.pid'}", f"--log-file={self.root / 'log' / 'munged.log'}",
                     f"--seed-file={self.root / 'munge' / 'munged.seed'}"])
        user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
        (self.root / "slurm.conf").write_text(textwrap.dedent(f"""\
            ClusterName=nas
            SlurmctldHost={host}(127.0.0.1)
            SlurmUser={user}
            SlurmdUser={user}
            AuthType=auth/munge
            AuthInfo=socket={socket_path}
            CredType=cred/munge
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            ReturnToService=2
            SchedulerType=sched/backfill
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            MpiDefault=none
            SlurmctldPort={free_port()}
            SlurmdPort={free_port()}
            StateSaveLocation={self.root / 'state'}
            SlurmdSpoolDir={self.root / 'spool'}
            SlurmctldPidFile={self.root / 'slurmctld.pid'}
            SlurmdPidFile={self.root / 'slurmd.pid'}
            SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}
            SlurmdLogFile={self.root / 'log' / 'slurmd.log'}
            NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
            PartitionName=nas Nodes={host} Default=YES MaxTime=INFINITE State=UP
            """))
        time.sleep(0.5)
        self._spawn(["slurmctld", "-D", "-i"])
        time.sleep(1.0)
        self._spawn(["slurmd", "-D"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True).stdout.strip()
            if state in ("idle", "mixed"):
                return
            time.sleep(0.5)
        logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in (self.root / "log").iterdir())
        sys.exit(f"slurm_workers: the one-node cluster did not come up (sinfo: {state!r})\n{logs}")

    def _spawn(self, command: list[str]) -> None:
        self.procs.append(subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))

    def stop(self) -> None:
        """Let the jobs' steps end (submitit has their results before srun exits), cancel what is left,
        then stop the daemons."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and subprocess.run(["squeue", "-h"], env=self.env, capture_output=True, text=True).stdout.strip():
            time.sleep(0.5)
        subprocess.run(["scancel", "--full", "--user", str(os.getuid())], env=self.env, capture_output=True)
        time.sleep(1.0)
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--start-slurm", action="store_true", help="start a throwaway one-node cluster first")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nas-slurm-"))
    cluster = OneNodeSlurm(folder / "slurm") if args.start_slurm else None
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(cluster.env if cluster else {})}
    try:
        if cluster is not None:
            cluster.start()
        storage = f"journal://{folder / 'shared' / 'study.log'}"  # folder is absolute: journal:///tmp/...
        sweep = folder / "sweep"
        command = [str(BIN / "nas-search"), "-m", "hydra/launcher=workers_slurm", f"worker={','.join(map(str, range(args.workers)))}",
                   "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1", f"hydra.launcher.array_parallelism={args.workers}",
                   "hydra.launcher.timeout_min=30", "space=mlp", f"budget.trials={args.trials}", f"estimator.epochs={args.epochs}",
                   "tensorboard=false", f"storage='{storage}'", f"hydra.sweep.dir={sweep}"]
        print("$", " ".join(command[1:]), flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"nas-search failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        jobs = sorted(d.name for d in (sweep / ".submitit").iterdir() if d.is_dir() and "_" in d.name)  # <array>_<task>
        trials = nas.load(next(sweep.glob("0_*"))).trials
        per_worker = collections.Counter(r.worker for r in trials if r.state == "complete")
        complete = sum(r.state == "complete" for r in trials)
        left = [r.number for r in trials if r.state in ("running", "waiting")]
        print(f"Slurm jobs (array tasks): {', '.join(jobs)}")
        print(f"{complete} of {args.trials} trials complete, {len(left)} left running or waiting, {len(trials)} in the study, "
              f"{seconds:.1f} s for the sweep")
        for worker, count in sorted(per_worker.items()):
            print(f"  worker {worker}: {count} trials")
        checks = {"exact budget": complete == args.trials and len(trials) == args.trials, "none left running": not left,
                  "every job a worker": len(per_worker) == args.workers, "one Slurm array task per worker": len(jobs) == args.workers}
        for name, ok in checks.items():
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        if not all(checks.values()):
            sys.exit(1)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
