"""Every strategy name, end to end with real training: macro_chain on mnist1d (Conv1d), as from the CLI.

Each runs past its random start-up phase (smaller populations and start-up counts), so the
strategy's own proposal logic meets real, noisy validation scores.
"""

from __future__ import annotations

import pytest

import nas

PAST_STARTUP = {
    "random": [],
    "grid": [],
    "local": [],
    "evolution": ["strategy.population_size=2", "strategy.tournament_size=2"],
    "tpe": ["strategy.n_startup_trials=2"],
    "gp": ["strategy.n_startup_trials=2"],
    "bo": ["strategy.n_initial=2"],
    "rl": [],
    "nash": ["strategy.children=2"],  # rounds of two morphed children, trained from their parent's weights
}


def test_every_strategy_name_has_a_config():
    assert set(PAST_STARTUP) <= set(nas.available("strategy"))


@pytest.mark.parametrize("name", sorted(PAST_STARTUP))
def test_strategy_searches_macro_chain_on_mnist1d_with_real_training(name, tmp_path):
    result = nas.search(space="macro_chain", strategy=name, dataset="mnist1d", trials=4, epochs=1, seed=0, out_dir=tmp_path,
                        progress=False, tensorboard=False, overrides=PAST_STARTUP[name])
    assert [r.state for r in result.trials] == ["complete"] * 4
    assert result.meta["strategy"] == name
    assert all(0.0 <= r.value <= 1.0 and r.metrics["params"] > 0 for r in result.trials)
    assert len({r.arch.key for r in result.trials}) == 4  # every strategy here skips keys already tried
    assert result.best.value > 0.15  # above chance (0.10) after one epoch: training really happened
