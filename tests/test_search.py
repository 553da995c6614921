"""End to end: real training on digits, the SQLite study, the run directory, resume, failures."""

from __future__ import annotations

import json

import optuna
import pytest
import torch

import nas
from nas import Estimator, Evaluation
from nas.core.workers import this_worker
from nas.testing import ToySpace
from strategies import SequenceStrategy



def tiny_search(tmp_path, **kw):
    args = dict(space="mlp", strategy="random", dataset="digits", trials=3, epochs=2, seed=0,
                out_dir=tmp_path / "run", progress=False)
    args.update(kw)
    return nas.search(**args)


def test_search_trains_records_and_saves_everything(tmp_path):
    result = tiny_search(tmp_path)
    run = tmp_path / "run"
    assert len(result.trials) == 3 and all(r.state == "complete" for r in result.trials)
    best = result.best
    assert best.score == max(r.value for r in result.trials)
    assert best.score > 0.5  # two epochs of an MLP on digits: far above chance (0.1)
    for key in ("val_accuracy", "test_accuracy", "params", "macs", "seconds", "epochs"):
        assert key in best.metrics
    assert best.metrics["epochs"] == 2 and best.metrics["params"] > 0 and best.metrics["macs"] > 0
    assert len(best.curve) == 2 and best.curve[-1] == best.score  # validation curve per epoch
    assert len(best.arch.key) == 16 and best.arch.space == "mlp"
    # run directory: storage, config, best weights loadable with weights_only, leaderboard
    assert (run / "study.db").exists() and (run / "config.yaml").exists() and (run / "leaderboard.md").exists()
    state = torch.load(run / "best" / "weights.pt", weights_only=True)
    saved = json.loads((run / "best" / "arch.json").read_text())
    assert saved["key"] == best.arch.key and saved["score"] == pytest.approx(best.score)
    model = result.best_model(preprocess=False)  # the bare network: inputs preprocessed as in training
    assert set(model.state_dict()) == set(state)
    assert set(result.best_model().state_dict()) == {f"net.{k}" for k in state}  # raw inputs: preprocessing in front
    # the saved model reproduces the recorded test accuracy
    from nas.datasets import digits

    data = digits()
    with torch.no_grad():
        acc = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    assert acc == pytest.approx(best.metrics["test_accuracy"], abs=1e-6)
    # the Optuna study holds the params, key and metrics
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{run / 'study.db'}")
    assert len(study.trials) == 3
    assert study.best_trial.user_attrs["nas:trial"]["key"] == best.arch.key


def test_load_rebuilds_the_same_result(tmp_path):
    result = tiny_search(tmp_path)
    loaded = nas.load(tmp_path / "run")
    assert [r.arch.key for r in loaded.trials] == [r.arch.key for r in result.trials]
    assert loaded.best.score == result.best.score
    assert loaded.leaderboard() == result.leaderboard()


def test_same_seed_same_candidates_and_results_on_cpu(tmp_path):
    a = tiny_search(tmp_path / "a")
    b = tiny_search(tmp_path / "b")
    assert [r.arch.sample for r in a.trials] == [r.arch.sample for r in b.trials]
    assert [r.value for r in a.trials] == [r.value for r in b.trials]


def test_rerun_in_same_directory_resumes(tmp_path):
    tiny_search(tmp_path, trials=2)
    result = tiny_search(tmp_path, trials=4)
    assert len(result.trials) == 4
    straight = tiny_search(tmp_path / "straight", trials=4)
    assert [r.arch.sample for r in result.trials] == [r.arch.sample for r in straight.trials]


class ScriptedEstimator(Estimator):
    """Scores the toy space; raises on chosen trials to exercise the failure paths."""

    input_shape, num_classes = (4,), 2

    def __init__(self, fail_on=(), interrupt_on=None):
        self.calls, self.fail_on, self.interrupt_on = 0, set(fail_on), interrupt_on

    def evaluate(self, arch, report):
        call, self.calls = self.calls, self.calls + 1
        if call == self.interrupt_on:
            raise KeyboardInterrupt
        if call in self.fail_on:
            raise ValueError(f"boom on call {call}")
        for epoch in range(3):
            if report(epoch, ToySpace.score(arch.sample) * (epoch + 1) / 3, train_loss=1.0 / (epoch + 1)):
                raise optuna.TrialPruned()
        return Evaluation(score=ToySpace.score(arch.sample), metrics={"test_accuracy": 0.5, "seconds": 0.0},
                          model=ToySpace().build(arch.sample, (4,), 2))


def test_failing_trial_is_recorded_and_search_goes_on(tmp_path):
    result = nas.search(space=ToySpace(), strategy="random", estimator=ScriptedEstimator(fail_on={1}),
                        trials=4, out_dir=tmp_path, progress=False)
    states = [r.state for r in result.trials]
    assert states == ["complete", "failed", "complete", "complete"]
    assert "ValueError: boom on call 1" in result.trials[1].reason


def test_nan_loss_fails_the_trial_with_reason(tmp_path):
    result = tiny_search(tmp_path, trials=2, overrides=["estimator.lr=1e12", "estimator.optimizer=sgd"])
    assert [r.state for r in result.trials] == ["failed", "failed"]
    assert all("loss became nan" in r.reason.lower() for r in result.trials)
    assert result.best is None


def test_ctrl_c_keeps_finished_trials_and_resume_completes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        nas.search(space=ToySpace(), strategy="random", estimator=ScriptedEstimator(interrupt_on=2),
                   trials=5, out_dir=tmp_path, progress=False)
    loaded = nas.load(tmp_path, space=ToySpace())
    # The interrupted trial is failed (nothing left running) and queued to run again, as a lost one is.
    assert [r.state for r in loaded.trials] == ["complete", "complete", "failed", "waiting"]
    assert "interrupted" in loaded.trials[2].reason
    assert loaded.trials[3].retry_of == 2 and loaded.trials[3].arch.key == loaded.trials[2].arch.key
    assert (tmp_path / "leaderboard.md").exists() and (tmp_path / "best" / "weights.pt").exists()
    resumed = nas.search(space=ToySpace(), strategy="random", estimator=ScriptedEstimator(), trials=5,
                         out_dir=tmp_path, progress=False)
    # Resuming runs it first, and the budget counts the re-run instead: 5 complete, the interrupted one besides.
    assert [r.state for r in resumed.trials] == ["complete", "complete", "failed"] + ["complete"] * 3
    assert resumed.trials[3].retry_of == 2


def test_pruner_stops_trials_through_report(tmp_path):
    pruner = optuna.pruners.ThresholdPruner(lower=0.99)  # every toy curve starts below it
    result = nas.search(space=ToySpace(), strategy="random", estimator=ScriptedEstimator(), trials=3,
                        out_dir=tmp_path, progress=False, pruner=pruner)
    assert [r.state for r in result.trials] == ["pruned"] * 3


def test_grid_exhaustion_stops_cleanly(tmp_path, capsys):
    space = ToySpace(max_depth=1, with_float=False)
    result = nas.search(space=space, strategy="grid", estimator=ScriptedEstimator(), trials=10, out_dir=tmp_path)
    assert len(result.trials) == 3
    assert "exhausted" in capsys.readouterr().out


def test_sequence_strategy_and_tensorboard_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    space = ToySpace(max_depth=1, with_float=False)
    strategy = SequenceStrategy(space, samples=[{"depth": 1, "l1.op": "c"}, {"depth": 1, "l1.op": "a"}])
    nas.search(space=space, strategy=strategy, estimator=ScriptedEstimator(), trials=2, out_dir=tmp_path, progress=False)
    trial_run = EventAccumulator(str(tmp_path / "tb" / "trial_0000")).Reload()
    assert [e.step for e in trial_run.Scalars("val/accuracy")] == [0, 1, 2]
    assert "train/loss" in trial_run.Tags()["scalars"]
    assert "architecture/text_summary" in trial_run.Tags()["tensors"]
    hparams = EventAccumulator(str(tmp_path / "tb" / "trial_0000")).Reload().PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams and b"l1.op" in hparams["_hparams_/session_start_info"]
    search_run = EventAccumulator(str(tmp_path / "tb" / "search")).Reload()
    best = search_run.Scalars("search/best_val_accuracy")
    assert [e.step for e in best] == [0, 1] and best[0].value == best[1].value == pytest.approx(0.25)  # the first is the best


def test_ask_tell_searcher(tmp_path):
    searcher = nas.Searcher(ToySpace(), "random", seed=0, storage=f"sqlite:///{tmp_path / 's.db'}")
    scores = []
    for _ in range(5):
        cand = searcher.ask()
        assert isinstance(cand.build((4,), 2), torch.nn.Module)
        score = ToySpace.score(cand.arch.sample)
        scores.append(score)
        searcher.tell(cand, score, metrics={"test_accuracy": 0.3})
    bad = searcher.ask()
    searcher.tell(bad, failed="diverged")
    assert searcher.best.value == max(scores)
    assert searcher.history()[-1].state == "failed" and searcher.history()[-1].reason == "diverged"
    again = nas.Searcher(ToySpace(), "random", seed=0, storage=f"sqlite:///{tmp_path / 's.db'}")
    assert len(again.history()) == 6  # the study persists in the storage
    assert {r.worker for r in again.history()} == {this_worker()}  # who asked each candidate


def test_optuna_sampler_instance_runs_through_the_same_loop(tmp_path):
    import optuna as _optuna

    result = nas.search(space=ToySpace(), strategy=_optuna.samplers.RandomSampler(seed=0), estimator=ScriptedEstimator(),
                        trials=3, out_dir=tmp_path, progress=False)
    assert [r.state for r in result.trials] == ["complete"] * 3
    assert all(r.arch.key for r in result.trials)


def test_runner_asks_the_strategy_once_per_trial(tmp_path):
    from strategies import RandomSearch

    class Counting(RandomSearch):
        asks = 0

        def ask(self, history):
            Counting.asks += 1
            return super().ask(history)

    space = ToySpace()
    nas.search(space=space, strategy=Counting(space, seed=0), estimator=ScriptedEstimator(), trials=4, out_dir=tmp_path, progress=False)
    assert Counting.asks == 4


def test_pruned_trial_keeps_the_cost_and_curve_it_spent(tmp_path):
    table = {"depth=1 l1.op=\"c\"": {"score": 0.9, "curve": [0.1, 0.2, 0.9], "seconds": 30.0}}
    space = ToySpace(max_depth=1, with_float=False)
    strategy = SequenceStrategy(space, samples=[{"depth": 1, "l1.op": "c"}])
    pruner = optuna.pruners.ThresholdPruner(lower=0.15)
    result = nas.search(space=space, strategy=strategy, estimator=nas.TableEstimator(table, space=space), trials=1,
                        out_dir=tmp_path, progress=False, pruner=pruner)
    (record,) = result.trials
    assert record.state == "pruned" and record.curve == (0.1,)
    assert record.metrics["seconds"] == pytest.approx(10.0) and record.cost == pytest.approx(10.0)


def test_resuming_with_a_config_of_another_search_is_refused_before_anything_is_written(tmp_path):
    """dataset, space, epochs or seed differ: the run directory is left as it was; budget may change;
    resume=force or a new study name are the ways out."""
    tiny_search(tmp_path, trials=1, epochs=1)
    run = tmp_path / "run"
    before = (run / "run.json").read_bytes()
    for kw, what in (({"dataset": "mnist1d"}, "dataset._target_: 'nas.datasets.digits' -> 'nas.datasets.mnist1d'"),
                     ({"space": "macro_chain"}, "space._target_: 'search_spaces.mlp.MLPSpace' -> 'search_spaces.macro_chain.MacroChainSpace'"),
                     ({"epochs": 2}, "estimator.epochs: 1 -> 2"), ({"seed": 1}, "seed: 0 -> 1")):
        args = {"trials": 2, "epochs": 1, **kw}
        with pytest.raises(nas.ConfigError, match="holds study 'nas' of another search") as caught:
            tiny_search(tmp_path, **args)
        assert what in str(caught.value) and "resume=force" in str(caught.value)
        assert (run / "run.json").read_bytes() == before and len(nas.load(run).trials) == 1
    assert len(tiny_search(tmp_path, trials=2, epochs=1).trials) == 2  # a larger budget continues it
    forced = tiny_search(tmp_path, trials=3, epochs=2, overrides=["resume=force"])
    assert len(forced.trials) == 3
    other = tiny_search(tmp_path, trials=1, epochs=3, overrides=["study_name=longer"])
    assert len(other.trials) == 1 and other.study.study_name == "longer"
