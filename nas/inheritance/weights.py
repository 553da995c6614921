"""Trained weights of trials in Optuna's artifact store, so that a child can inherit them from any worker.

One file per completed trial (its ``state_dict``), written before the trial is finished; the
trial's record names the artifact (``TrialRecord.weights``). The store is a
file-system folder (``artifacts/`` in the run directory by default); point ``weights.store`` at a
folder every worker can reach to share weights across machines, as the study is shared through its
storage URL. A retention rule bounds disk use: the ``keep_top`` best trials and every trial the
strategy may still breed from (:meth:`nas.Strategy.alive`) keep their weights; the others are removed.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound

from nas.core.errors import ConfigError
from nas.core.records import TrialRecord

KEEP_CHOICES = ("auto", True, False)


class WeightStore:
    """Saves, loads and prunes trials' trained weights in a :class:`optuna.artifacts.FileSystemArtifactStore`."""

    def __init__(self, root: str | Path, *, keep_top: int = 5) -> None:
        if isinstance(keep_top, bool) or not isinstance(keep_top, int) or keep_top < 1:
            raise ConfigError(f"weights: `keep_top >= 1` must hold (the best trials whose weights are kept), but got keep_top={keep_top!r}.")
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"weights: `store` must be a folder that can be created and written, but {str(root)!r} failed: {exc}") from exc
        self.store = FileSystemArtifactStore(str(self.root))
        self.keep_top = keep_top
        self._gone: set[str] = set()  # artifacts this process removed or found missing

    def save(self, number: int, model: Any) -> str:
        """Write ``model``'s state dict (trial ``number``) to the artifact store; returns the artifact id."""
        import torch

        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
        buffer.seek(0)
        artifact_id = f"trial-{number:05d}-{uuid.uuid4().hex[:12]}"
        self.store.write(artifact_id, buffer)
        return artifact_id

    def load(self, record: TrialRecord) -> dict[str, Any] | None:
        """The state dict saved for ``record``, or ``None`` when none was saved or it has been removed."""
        import torch

        if not record.weights or record.weights in self._gone:
            return None
        try:
            with self.store.open_reader(record.weights) as reader:
                return dict(torch.load(io.BytesIO(reader.read()), map_location="cpu", weights_only=True))
        except (ArtifactNotFound, FileNotFoundError):  # removed by another worker's retention, or lost
            self._gone.add(record.weights)
            return None

    def retain(self, history: Iterable[TrialRecord], alive: Iterable[int]) -> list[int]:
        """Remove the weights of every trial that is neither among the ``keep_top`` best completed ones
        nor ``alive``; returns the numbers of the trials whose weights were removed now."""
        saved = [r for r in history if r.weights and r.weights not in self._gone]
        ranked = sorted((r for r in saved if r.value is not None), key=lambda r: -r.value)  # type: ignore[operator]
        keep = {r.number for r in ranked[:self.keep_top]} | set(alive)
        removed = []
        for r in saved:
            if r.number in keep:
                continue
            self._gone.add(r.weights)  # type: ignore[arg-type]
            try:
                self.store.remove(r.weights)  # type: ignore[arg-type]
                removed.append(r.number)
            except (ArtifactNotFound, FileNotFoundError):
                pass  # already removed by another worker
        return removed


def check_weight_config(spec: Mapping[str, Any] | None) -> None:
    """Refuse a malformed ``weights`` config (``keep``, ``store``, ``keep_top``) before anything is written."""
    spec = dict(spec or {})
    unknown = sorted(set(spec) - {"keep", "store", "keep_top"})
    if unknown:
        raise ConfigError(f"weights: unknown key {unknown[0]!r}; valid keys are keep, store, keep_top.")
    keep = spec.get("keep", "auto")
    if keep not in KEEP_CHOICES or (isinstance(keep, int) and not isinstance(keep, bool)):
        raise ConfigError(f"weights: `keep` must be auto, true or false, but got keep={keep!r}.")
    keep_top = spec.get("keep_top", 5)
    if isinstance(keep_top, bool) or not isinstance(keep_top, int) or keep_top < 1:
        raise ConfigError(f"weights: `keep_top >= 1` must hold (the best trials whose weights are kept), but got keep_top={keep_top!r}.")


def make_weight_store(spec: Mapping[str, Any] | None, *, run_dir: Path, needed: bool) -> WeightStore | None:
    """The run's weight store from the ``weights`` config (``keep``, ``store``, ``keep_top``), or ``None``.

    ``keep: auto`` keeps weights when ``needed`` (a strategy that breeds children from trained parents
    and an estimator that can start from them)."""
    check_weight_config(spec)
    spec = dict(spec or {})
    keep = spec.get("keep", "auto")
    if keep is False or (keep == "auto" and not needed):
        return None
    store = spec.get("store")
    root = Path(str(store).replace("{run_dir}", str(run_dir))) if store else run_dir / "artifacts"
    return WeightStore(root, keep_top=spec.get("keep_top", 5))
