"""The final phase of a low-fidelity search: the top k retrained at full fidelity, their scores beside the search's,
and best_model() the retrained winner."""

from __future__ import annotations

import json

import pytest

import nas
from nas import ConfigError

LOW = ["estimator.data_fraction=0.25", "estimator.width_multiplier=0.5"]


def test_the_top_k_are_retrained_at_full_fidelity_and_best_model_is_the_retrained_winner(tmp_path):
    result = nas.search(space="macro_chain", trials=6, epochs=2, out_dir=tmp_path / "run", progress=False, tensorboard=False, seed=0,
                        overrides=[*LOW, "final.retrain_top_k=3", "final.epochs=4"])
    rows = result.final
    assert [r["trial"] for r in rows] == [t.number for t in result.top(3)]  # the search's top 3, in its order
    assert [r["search_score"] for r in rows] == [t.value for t in result.top(3)]
    assert all(r["state"] == "complete" and 0 <= r["final_score"] <= 1 for r in rows)
    saved = json.loads((tmp_path / "run" / "final" / "results.json").read_text())
    winner = max(rows, key=lambda r: r["final_score"])["trial"]
    assert saved["winner"] == winner and saved["epochs"] == 4
    arch = json.loads((tmp_path / "run" / "final" / "best" / "arch.json").read_text())
    assert arch["trial"] == winner and arch["fidelity"]["width_multiplier"] == 1.0 and arch["fidelity"]["data_fraction"] == 1.0
    model = result.best_model(preprocess=False)
    full = nas.get_space("macro_chain").build(arch["sample"], (1, 8, 8), 10)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in full.parameters())  # full width, not half
    low = json.loads((tmp_path / "run" / "best" / "arch.json").read_text())
    assert low["fidelity"]["width_multiplier"] == 0.5  # the search's own best checkpoint is untouched
    assert "| rank | trial | search score | full-fidelity score |" in (tmp_path / "run" / "final" / "leaderboard.md").read_text()


def test_without_a_final_phase_nothing_is_retrained(tmp_path):
    result = nas.search(space="macro_chain", trials=2, epochs=1, out_dir=tmp_path / "run", progress=False, tensorboard=False)
    assert result.final == [] and not (tmp_path / "run" / "final").exists()


@pytest.mark.parametrize("override, message", [
    ("final.retrain_top_k=-1", "`final.retrain_top_k` must be an integer >= 0"),
    ("final.epochs=0", "`final.epochs` must be an integer >= 1 or null"),
    ("+final.epoch=3", "`final.epoch` is not a setting; the settings are retrain_top_k, epochs"),
])
def test_bad_final_settings_are_refused_before_the_search(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        nas.search(space="macro_chain", trials=1, epochs=1, out_dir=tmp_path / "run", progress=False, tensorboard=False,
                   overrides=[override])
    assert not (tmp_path / "run").exists()


def test_with_workers_the_final_phase_trains_on_as_many_processes_and_gives_the_same_rows(tmp_path):
    """workers=2: the top 2 retrained at once on 2 spawned processes; each architecture's seed does not depend on the
    order, so the rows are those of the same final phase run one after the other in this process."""
    from omegaconf import OmegaConf

    from nas._final import retrain_top

    said: list[str] = []

    class Listen(nas.Callback):
        def on_message(self, text):
            said.append(text)

    result = nas.search(space="macro_chain", trials=4, epochs=2, out_dir=tmp_path / "run", progress=False, tensorboard=False, seed=0,
                        overrides=[*LOW, "workers=2", "final.retrain_top_k=2", "final.epochs=3"], callbacks=[Listen()])
    parallel = json.loads((tmp_path / "run" / "final" / "results.json").read_text())["trials"]
    assert any("retraining the top 2 at full fidelity" in s and s.endswith("on 2 processes") for s in said)
    said.clear()
    cfg = OmegaConf.load(tmp_path / "run" / "config.yaml")
    serial = retrain_top(cfg, result.space, tmp_path / "serial", result.store.history(), said.append, workers=1)
    assert any("retraining the top 2 at full fidelity" in s for s in said) and not any("processes" in s for s in said)
    key = ("trial", "final_score", "test_accuracy", "state")
    assert [tuple(r[k] for k in key) for r in serial] == [tuple(r[k] for k in key) for r in parallel]
    assert len(parallel) == 2 and all(r["state"] == "complete" for r in parallel)
    assert (tmp_path / "run" / "final" / "best" / "weights.pt").is_file()


def test_final_phase_processes_that_die_give_failed_rows_with_their_reason_not_a_crash(tmp_path):
    from omegaconf import OmegaConf

    from nas._final import _in_parallel

    result = nas.search(space="macro_chain", trials=2, epochs=1, out_dir=tmp_path / "run", progress=False, tensorboard=False, seed=0,
                        overrides=LOW)
    cfg = OmegaConf.load(tmp_path / "run" / "config.yaml")
    OmegaConf.update(cfg, "dataset._target_", "nas.datasets.no_such_loader")  # every child fails to build its dataset
    said: list[str] = []
    (tmp_path / "final").mkdir()
    rows = _in_parallel(cfg, result.space, 1, list(result.store.history()), tmp_path / "final", 2, said.append)
    assert rows is not None and [r["state"] for r in rows] == ["failed", "failed"]
    assert all(r["final_score"] is None and "its process exited with 1" in r["reason"] and "no_such_loader" in r["reason"] for r in rows)
