"""Every strategy with two workers on one study: each worker's strategy asks while the other's trial
runs (it sees that trial RUNNING in the shared history), results come back out of order, and the
budget is exact. Two loops on one journal file, interleaved in this process (the processes of
`workers=2` do the same through the file)."""

from __future__ import annotations

from collections import Counter

import pytest

from nas._api import make_strategy
from nas._config import compose
from nas.core.records import TrialState
from nas.engine.loop import Budget, SearchLoop
from nas.store import open_store
from nas.testing import ToySpace

import nas

STRATEGIES = ["random", "grid", "evolution", "local", "bo", "rl", "tpe", "gp", "bohb"]  # nash needs morphs: the toy space has none
TRIALS = 14


class Quick(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch, report):
        return nas.Evaluation(score=ToySpace.score(arch.sample))


@pytest.mark.parametrize("name", STRATEGIES)
def test_two_workers_of_every_strategy_share_one_study(tmp_path, name):
    space = ToySpace()
    node = compose([f"strategy={name}"]).strategy
    url = f"journal:///{tmp_path / 'study.log'}"
    loops = [SearchLoop(space=space, strategy=make_strategy(node, space, seed, budget=TRIALS), estimator=Quick(),
                        store=open_store(url, run_dir=tmp_path, space=space)[1], budget=Budget(trials=TRIALS))
             for seed in (0, 1)]
    for loop in loops:
        loop.open()
    running = []
    while True:  # worker 0 asks, worker 1 asks (seeing 0's trial running), then both finish, the later first
        for loop in loops:
            history = loop.store.history()
            if loop.store.in_budget() >= TRIALS or loop.strategy.is_exhausted(history):
                continue
            running.append((loop, loop.ask(history)))
        if not running:
            break
        seen = loops[1].store.history()
        assert sum(r.state is TrialState.RUNNING for r in seen) == len(running)  # each worker sees the other's running trial
        while running:
            loop, trial = running.pop()
            evaluation, outcome = loop.evaluate(trial)
            loop.tell(trial, outcome, evaluation)
    history = loops[0].store.history()
    assert len(history) == TRIALS and all(r.state is TrialState.COMPLETE for r in history), Counter(r.state for r in history)
    other = loops[1].store.history()  # the other worker reads the same study: every trial, as it ended
    assert [(r.number, r.arch.key, r.value) for r in other] == [(r.number, r.arch.key, r.value) for r in history]
