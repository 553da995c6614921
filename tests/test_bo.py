"""Architecture-aware Bayesian optimisation: the contract, its encodings, and that it searches better than random."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import nas
from nas import Categorical, ConfigError, SearchSpace, TrialRecord
from nas.testing import StrategyContract, ToySpace, simulate
from search_spaces.cell_nb201 import CellSpace
from strategies._encoding import OneHotEncoding, PathEncoding, make_encoding
from strategies.bo import ArchitectureBO, GaussianProcess
from strategies.random import RandomSearch


class TestArchitectureBOContract(StrategyContract):
    steps = 16  # past the 10 random asks, so the model picks the last six

    def make_strategy(self, space, seed):
        return ArchitectureBO(space, seed=seed)


class TestArchitectureBOThompson(StrategyContract):
    def make_strategy(self, space, seed):
        return ArchitectureBO(space, seed=seed, n_initial=4, acquisition="thompson")


class Additive(SearchSpace):
    """Eight categorical dimensions of five letters; the score counts steps away from a target letter per dimension.

    The optimum (score 0) is the single architecture a, b, c, d, e, a, b, c; 390,625 architectures in all.
    """

    name = "additive"

    def __init__(self) -> None:
        self._dims = {f"d{i}": Categorical(("a", "b", "c", "d", "e")) for i in range(8)}

    def dimensions(self) -> dict[str, Any]:
        return self._dims

    def build(self, sample: Mapping[str, Any], input_shape: Any, num_classes: int) -> Any:
        raise NotImplementedError

    @staticmethod
    def score(sample: Mapping[str, Any]) -> float:
        return -float(sum(abs("abcde".index(str(sample[f"d{i}"])) - i % 5) for i in range(8)))


def _length(sample: Mapping[str, Any]) -> float:
    """A score any space can give: how many dimensions are active, plus how many hold their first choice."""
    return float(len(sample)) + sum(str(v) in ("nor_conv_3x3", "conv3x3", "True") for v in sample.values())


@pytest.mark.parametrize("space_name, knobs", [
    ("cell_nb201", {}),                         # auto: the path encoding
    ("cell_nb201", {"encoding": "both"}),
    ("macro_chain", {"acquisition": "ucb"}),    # conditional layers, integer depth, float dropout: one-hot
    ("macro_tiny", {"acquisition": "thompson"}),
])
def test_other_spaces_valid_unseen_deterministic_and_resumable(space_name, knobs):
    space = nas.get_space(space_name)
    history = simulate(ArchitectureBO(space, seed=4, n_initial=4, **knobs), 14, _length)
    assert len(history) == 14 and len({r.arch.key for r in history}) == 14
    assert all(space.validate(r.arch.sample) == dict(r.arch.sample) for r in history)
    again = simulate(ArchitectureBO(space, seed=4, n_initial=4, **knobs), 14, _length)
    assert [r.arch.sample for r in again] == [r.arch.sample for r in history]
    assert ArchitectureBO(space, seed=4, n_initial=4, **knobs).ask(history[:-1]) == dict(history[-1].arch.sample)


def test_beats_random_search_on_a_space_with_a_known_optimum():
    space = Additive()
    bo = [max(r.value for r in simulate(ArchitectureBO(space, seed=s), 40, Additive.score)) for s in range(6)]
    rs = [max(r.value for r in simulate(RandomSearch(space, seed=s, skip_duplicates=True), 40, Additive.score)) for s in range(6)]
    # Random search's best of 40 is about -6 (the chance of a draw within 2 steps is ~1e-3); BO walks to the optimum.
    assert np.mean(bo) >= np.mean(rs) + 4, (bo, rs)
    assert sum(v == 0 for v in bo) >= 4, bo


def test_reaches_the_optimum_of_the_conditional_toy_space():
    # The optimum needs depth 3, every op 'c' and lr exactly 0.1; random search essentially never draws lr == 0.1.
    best = [max(r.value for r in simulate(ArchitectureBO(ToySpace(), seed=s, n_initial=5), 30)) for s in range(5)]
    assert min(best) == pytest.approx(1.0), best


def _record(space: SearchSpace, number: int, sample: Mapping[str, Any], state: str = "complete", value: float | None = None) -> TrialRecord:
    return TrialRecord(number=number, arch=space.architecture(sample), state=state, value=value if state == "complete" else None)


def _cell_history(space: SearchSpace, n: int, seed: int = 0) -> list[TrialRecord]:
    """``n`` distinct random cells scored by a smooth made-up function, plus one each failed, pruned and running."""
    rng = np.random.default_rng(seed)
    samples: dict[str, Any] = {}
    while len(samples) < n + 3:
        s = space.sample(rng)
        samples.setdefault(space.key(s), s)
    history = []
    for i, s in enumerate(samples.values()):
        value = sum(v == "nor_conv_3x3" for v in s.values()) + 0.5 * sum(v == "skip_connect" for v in s.values())
        state = {n: "failed", n + 1: "pruned", n + 2: "running"}.get(i, "complete")
        history.append(_record(space, i, s, state, float(value)))
    return history


def test_ask_with_200_completed_records_returns_a_valid_unseen_sample():
    space = nas.get_space("cell_nb201")
    history = _cell_history(space, 200)
    assert sum(r.state == "complete" for r in history) == 200
    sample = ArchitectureBO(space, seed=0).ask(history)
    assert space.validate(sample) == sample
    assert space.key(sample) not in {r.arch.key for r in history}  # running and failed keys included


def test_same_history_same_ask_in_fresh_and_warm_instances():
    space = nas.get_space("cell_nb201")
    history = _cell_history(space, 40, seed=1)
    first = ArchitectureBO(space, seed=7).ask(history)
    warm = ArchitectureBO(space, seed=7)
    warm.ask(history[:30])  # memo caches filled by another history change nothing
    assert warm.ask(history) == first == ArchitectureBO(space, seed=7).ask(list(history))


def test_model_asks_are_mutations_of_the_best_when_random_fraction_is_zero():
    space = nas.get_space("cell_nb201")
    history = _cell_history(space, 30, seed=2)
    strategy = ArchitectureBO(space, seed=0, top_k=3, random_fraction=0.0)
    done = sorted((r for r in history if r.state == "complete"), key=lambda r: -r.value)[:3]
    sample = strategy.ask(history)
    distances = [sum(sample[k] != r.arch.sample[k] for k in sample) for r in done]
    assert min(distances) <= 2


def test_finite_space_is_exhausted_after_every_architecture():
    space = ToySpace(max_depth=1, with_float=False)  # 3 architectures
    strategy = ArchitectureBO(space, seed=0, n_initial=1)
    history = simulate(strategy, 30)
    assert len(history) == 3 and strategy.is_exhausted(history)
    assert {r.arch.key for r in history} == {space.key(s) for s in space.grid()}


@pytest.mark.parametrize("knobs, message", [
    ({"n_initial": 0}, r"`n_initial` must be an integer >= 1, but got 0"),
    ({"top_k": True}, r"`top_k` must be an integer >= 1, but got True"),
    ({"random_fraction": 1.5}, r"`0 <= random_fraction <= 1` must hold, but got random_fraction=1.5"),
    ({"acquisition": "pi"}, r"`acquisition` must be one of \['ei', 'ucb', 'thompson'\], but got 'pi'"),
    ({"encoding": "graph"}, r"`encoding` must be one of .*'auto'.*, but got 'graph'"),
    ({"ucb_beta": -1}, r"`ucb_beta >= 0` must hold, but got ucb_beta=-1"),
])
def test_bad_knobs_are_refused_naming_the_key(knobs, message):
    with pytest.raises(ConfigError, match=message):
        ArchitectureBO(ToySpace(), seed=0, **knobs)


def test_path_encoding_needs_a_space_with_paths():
    with pytest.raises(ConfigError, match=r"`encoding` 'path' needs a space with a `paths\(sample\)` method"):
        ArchitectureBO(ToySpace(), seed=0, encoding="path")
    assert isinstance(make_encoding(ToySpace(), "auto"), OneHotEncoding)
    assert isinstance(make_encoding(nas.get_space("cell_nb201"), "auto"), PathEncoding)
    assert make_encoding(nas.get_space("cell_nb201"), "both").size == 30 + 84


def test_onehot_encodes_inactive_dimensions_as_zeros_and_scales_numbers():
    space = ToySpace()
    enc = OneHotEncoding(space)
    assert enc.size == 2 + 3 * 3 + 2  # depth (flag, value), three 3-way ops, lr (flag, value)
    x = enc.encode({"depth": 1, "l1.op": "b", "lr": 0.05})
    assert x.tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0.25]
    y = enc.encode({"depth": 3, "l1.op": "a", "l2.op": "c", "l3.op": "b", "lr": 0.2})
    assert y.tolist() == [1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1]


def test_cell_paths_drop_routes_through_none():
    space = nas.get_space("cell_nb201")
    conv = {name: "nor_conv_3x3" for name in space.dimensions()}
    assert sorted(space.paths(conv), key=len) == [("nor_conv_3x3",)] + [("nor_conv_3x3",) * 2] * 2 + [("nor_conv_3x3",) * 3]
    cut = dict(conv, **{"cell.e0_1": "none", "cell.e2_3": "skip_connect"})
    assert sorted(space.paths(cut)) == [("nor_conv_3x3",), ("nor_conv_3x3", "skip_connect")]
    assert space.paths({name: "none" for name in space.dimensions()}) == []


def test_path_encoding_counts_op_sequences():
    space = nas.get_space("cell_nb201")
    enc = PathEncoding(space)
    assert enc.size == 4 + 4**2 + 4**3  # every sequence of the four non-`none` ops, lengths 1 to 3
    conv = {name: "nor_conv_3x3" for name in space.dimensions()}
    x = enc.encode(conv)
    assert sorted(x[x > 0].tolist()) == [1.0, 1.0, 2.0]  # 0-3; 0-1-3 and 0-2-3 (same ops); 0-1-2-3
    sparse = CellSpace(name="sparse", edges=[[0, 1], [1, 3], [0, 3], [2, 3]])  # node 2 is never fed: e2_3 is dead
    assert PathEncoding(sparse).size == 4 + 4**2
    dead = {name: "nor_conv_1x1" for name in sparse.dimensions()}
    assert PathEncoding(sparse).encode(dead).sum() == 2


def test_gaussian_process_interpolates_and_is_unsure_far_away():
    X = np.linspace(0, 1, 12)[:, None]
    y = np.sin(6 * X[:, 0])
    gp = GaussianProcess(X, y)
    mu, sd = gp.predict(X)
    assert np.abs(mu - y).max() < 0.1 and np.abs(gp.fitted - mu).max() < 1e-6
    _, far = gp.predict(np.array([[4.0]]))
    assert far[0] > 5 * sd.max()
