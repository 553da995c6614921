"""One trial lifecycle: the loop's callbacks, the time budget, one best trial, typed records and proposals."""

from __future__ import annotations

import io
import re
import time
import warnings

import pytest

import nas
from nas import Callback, ConfigError, Proposal, TrialState
from nas.engine.loop import Budget
from nas.engine.progress import ProgressCallback, remaining
from nas.testing import ToySpace
from strategies import SequenceStrategy


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_search_start(self, search) -> None:
        super().on_search_start(search)
        self.events.append(("start", search.space.name))

    def on_trial_start(self, trial) -> None:
        self.events.append(("trial", trial.number))

    def on_report(self, trial, step, value, scalars) -> None:
        self.events.append(("report", trial.number, step))

    def on_trial_end(self, record, evaluation) -> None:
        self.events.append(("end", record.number, str(record.state), evaluation is not None))

    def on_search_end(self, history) -> None:
        self.events.append(("stop", len(history)))

    def on_message(self, text) -> None:
        self.events.append(("say", text.split(":")[0]))


class Curves(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch, report):
        for step in range(2):
            report(step, 0.1 * (step + 1))
        return nas.Evaluation(score=ToySpace.score(arch.sample))


def test_a_user_callback_sees_every_hook_in_order(tmp_path):
    rec = Recorder()
    nas.search(space=ToySpace(), estimator=Curves(), trials=2, out_dir=tmp_path, progress=False, tensorboard=False, callbacks=[rec])
    assert rec.events == [("say", "nas"), ("start", "toy"),
                          ("trial", 0), ("report", 0, 0), ("report", 0, 1), ("end", 0, "complete", True),
                          ("trial", 1), ("report", 1, 0), ("report", 1, 1), ("end", 1, "complete", True), ("stop", 2)]
    again = Recorder()
    nas.search(space=ToySpace(), estimator=Curves(), trials=3, out_dir=tmp_path, progress=False, tensorboard=False, callbacks=[again])
    assert ("say", f"Resuming study 'nas' in {tmp_path}") in again.events  # the search's messages reach every callback
    assert [e for e in again.events if e[0] == "end"] == [("end", 2, "complete", True)] and again.events[-1] == ("stop", 3)


def test_the_searcher_runs_the_same_loop_and_its_callbacks():
    rec = Recorder()
    searcher = nas.Searcher(ToySpace(), "random", seed=0, callbacks=[rec])
    cand = searcher.ask()
    assert cand.report(0, 0.2) is False
    record = searcher.tell(cand, 0.5, metrics={"test_accuracy": 0.4})
    assert record.curve == (0.2,) and record.metrics["test_accuracy"] == 0.4 and record.cost is not None
    assert rec.events == [("start", "toy"), ("trial", 0), ("report", 0, 0), ("end", 0, "complete", False)]
    bad = searcher.tell(searcher.ask(), float("nan"))
    assert bad.state is TrialState.FAILED and bad.reason == "score is nan" and searcher.best == record
    searcher.close()
    searcher.close()  # once
    assert rec.events[-1] == ("stop", 2) and [e for e in rec.events if e[0] == "stop"] == [("stop", 2)]


def test_a_callback_without_the_base_class_is_refused():
    with pytest.raises(TypeError, match="`callbacks` must hold nas.Callback instances, but got object"):
        nas.Searcher(ToySpace(), "random", callbacks=[object()])


@pytest.mark.slow
def test_the_time_budget_cuts_the_running_trial_and_scores_it_on_its_epochs(tmp_path):
    """A 3 s budget with trials of 200 epochs: one trial, cut at its first epoch end after 3 s and
    scored on the epochs it had (as max_seconds does); no trial budget needed."""
    out = io.StringIO()
    start = time.perf_counter()
    result = nas.search(space="mlp", dataset="digits", trials=None, timeout=3, epochs=200, out_dir=tmp_path, tensorboard=False,
                        callbacks=[ProgressCallback(stream=out)], progress=False, overrides=["estimator.threads=1"])
    wall = time.perf_counter() - start
    (trial,) = result.trials
    assert trial.state == "complete" and trial.metrics["time_limited"] is True and 1 <= trial.metrics["epochs"] < 200
    assert trial.cost < 3 + 2.0 and wall < 3 + 10  # one epoch past the deadline, plus set-up
    assert "Time budget of 3s spent" in out.getvalue()
    left = re.findall(r"left ~0:00:0(\d)", out.getvalue())
    assert left == ["0"]  # the estimate honours the deadline: nothing left once it has passed


def test_the_progress_estimate_is_capped_by_the_time_budget():
    assert remaining(elapsed=10, done_here=1, trials_left=99, time_left=30) == 30   # 990 s at this pace, 30 s of budget
    assert remaining(elapsed=10, done_here=5, trials_left=3, time_left=300) == 6
    assert remaining(elapsed=10, done_here=1, trials_left=None, time_left=None) is None
    assert remaining(elapsed=10, done_here=1, trials_left=None, time_left=-4) == 0


def test_a_budget_must_end_and_is_checked_before_anything_is_written(tmp_path):
    for kwargs, match in (({"overrides": ["budget.trials=null"]}, "both are null"), ({"trials": 0}, "`budget.trials` must be an integer >= 1"),
                          ({"trials": 3, "timeout": -5}, "`budget.timeout` must be a number of seconds > 0 (or null), but got -5")):
        with pytest.raises(ConfigError, match=re.escape(match)):
            nas.search(space=ToySpace(), estimator=Curves(), out_dir=tmp_path / "never", progress=False, **kwargs)
    assert not (tmp_path / "never").exists()
    assert Budget(trials=None, timeout=5).timeout == 5


def test_two_runs_sharing_a_study_agree_on_the_best_trial(tmp_path):
    """nas.load(B).best and B.best_model() never disagree: B's directory holds B's trial only while
    the study ranks it first, and best_model() says where the study's best ran."""
    storage = f"sqlite:///{tmp_path}/shared.db"
    low, high = ({"depth": 1, "l1.op": "a", "lr": 0.0}, {"depth": 3, "l1.op": "c", "l2.op": "c", "l3.op": "c", "lr": 0.1})
    space = ToySpace()

    class Scored(nas.Estimator):
        input_shape, num_classes = (4,), 2

        def evaluate(self, arch, report):
            return nas.Evaluation(score=ToySpace.score(arch.sample), model=space.build(arch.sample, (4,), 2))

    b = nas.search(space=space, strategy=SequenceStrategy(space, samples=[low]), estimator=Scored(), trials=1, storage=storage,
                   out_dir=tmp_path / "b", progress=False, tensorboard=False)
    assert b.best.number == 0 and b.best_model() is not None
    nas.search(space=space, strategy=SequenceStrategy(space, samples=[low, high]), estimator=Scored(), trials=2, storage=storage,
               out_dir=tmp_path / "a", progress=False, tensorboard=False)
    loaded = nas.load(tmp_path / "b", space=space)
    assert loaded.best.number == 1 and loaded.best.value == 1.0  # the study's best, run in a
    with pytest.raises(FileNotFoundError, match=r"best trial is #1 .* holds trial #0"):
        loaded.best_model()
    assert nas.load(tmp_path / "a", space=space).best_model() is not None


def test_states_are_an_enum_that_still_compares_as_text(tmp_path):
    result = nas.search(space=ToySpace(), estimator=Curves(), trials=1, out_dir=tmp_path, progress=False, tensorboard=False)
    (record,) = result.trials
    assert record.state is TrialState.COMPLETE and record.state == "complete" and str(record.state) == "complete"
    with pytest.raises(ValueError, match="`state` must be one of"):
        nas.TrialRecord(number=0, arch=record.arch, state="done")


def test_a_proposal_names_its_parent_and_child_is_a_deprecated_alias():
    space = ToySpace()
    sample = dict(space.sample(__import__("numpy").random.default_rng(0)))

    class Breeder(nas.Strategy):
        def ask(self, history):
            return Proposal(sample, parent=0) if history else sample

    searcher = nas.Searcher(space, Breeder(space, seed=0))
    searcher.tell(searcher.ask(), 0.1)
    child = searcher.ask()
    assert child.parent is not None and child.parent.number == 0
    assert searcher.tell(child, 0.2).parent == 0
    with pytest.warns(DeprecationWarning, match="nas.Child is deprecated"):
        old = nas.Child(sample, parent=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nas.core.records.as_proposal(old) == Proposal(sample, parent=0)


def test_defaults_are_chosen_for_the_budget_and_said_at_the_start(tmp_path, capsys):
    from nas._api import make_strategy
    from nas._config import compose

    space = ToySpace()

    def build(name, budget, *overrides):
        return make_strategy(compose([f"strategy={name}", *overrides]).strategy, space, 0, budget=budget)

    evo = build("evolution", 30)
    assert (evo.population_size, evo.tournament_size) == (6, 2)
    assert evo.budget_notes(30) == ["population_size=auto -> 6, tournament_size=auto -> 2 for 30 trials"]
    assert (build("evolution", None).population_size, build("evolution", None).tournament_size) == (20, 5)  # no trial budget
    assert (build("evolution", 1000).population_size, build("evolution", 8).population_size) == (20, 4)
    tpe = build("tpe", 10)
    assert tpe._factory.keywords["n_startup_trials"] == 2 and tpe.budget_notes(10) == ["n_startup_trials=auto -> 2 for 10 trials"]
    assert build("bo", 50).n_initial == 5 and build("gp", None)._factory.keywords["n_startup_trials"] == 10
    # settings given by hand that leave the strategy random throughout are said, not silently run
    assert build("evolution", 10, "strategy.population_size=20").budget_notes(10)[-1].startswith(
        "WARNING population_size=20 >= budget.trials=10: every trial is a random sample")
    assert build("tpe", 10, "strategy.n_startup_trials=10").budget_notes(10) == [
        "WARNING n_startup_trials=10 >= budget.trials=10: every trial is a random sample; lower strategy.n_startup_trials or "
        "raise budget.trials."]
    assert build("random", 10).budget_notes(10) == []
    nas.search(space=space, strategy="evolution", estimator=Curves(), trials=12, out_dir=tmp_path, tensorboard=False)
    out = capsys.readouterr().out
    assert "strategy 'evolution': population_size=auto -> 4, tournament_size=auto -> 2 for 12 trials" in out
    with pytest.raises(ConfigError, match="strategy 'evolution': `population_size` must be an integer or 'auto', but got 'many'"):
        build("evolution", 10, "strategy.population_size=many")


def test_the_progress_line_and_leaderboard_of_a_lookup_say_what_was_measured(tmp_path):
    """No `0 params 0.0s` for a table lookup; the leaderboard shows every architecture whole."""
    space = nas.get_space("cell_nb201")
    samples = [space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
               space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")]
    out = io.StringIO()
    result = nas.search(space=space, strategy=SequenceStrategy(space, samples=samples), estimator=nas.TableEstimator(
        lambda arch: 90.0 + len(arch.key) % 3, space=space), trials=2, out_dir=tmp_path, progress=False, tensorboard=False,
        callbacks=[ProgressCallback(stream=out)])
    lines = [line for line in out.getvalue().splitlines() if line.startswith("trial")]
    assert len(lines) == 2 and all("params" not in line and " 0.0s" not in line for line in lines)
    board = result.leaderboard()
    assert all(f"`{space.format(s)}`" in board for s in samples)  # the two differ only in their last edge
