"""Low fidelity: reduced spaces, data subsets, downscaled inputs and the time limit, recorded with every trial."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nas
from nas import ConfigError, TrainingEstimator
from nas.estimators.training import count_params
from nas.datasets import mnist1d


def sample_of(space, seed=0):
    return space.sample(np.random.default_rng(seed))


@pytest.mark.parametrize("name", ["macro_chain", "mlp", "cell_nb201"])
def test_width_multiplier_builds_narrower_networks_of_the_same_architectures(name):
    space = nas.get_space(name)
    narrow = space.reduced(width=0.5)
    for seed in range(5):
        s = sample_of(space, seed)
        full, half = space.build(s, (1, 8, 8), 10), narrow.build(s, (1, 8, 8), 10)
        assert narrow.key(s) == space.key(s) and narrow.format(s) == space.format(s)
        assert count_params(half) < count_params(full)
        assert half(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert space.reduced() is space  # full fidelity is the space itself


def test_depth_multiplier_drops_cells_per_stage_and_is_refused_where_depth_is_searched():
    space = nas.get_space("cell_nb201", cells_per_stage=4)
    shallow = space.reduced(depth=0.5)
    s = sample_of(space)
    assert shallow.cells_per_stage == 2 and space.cells_per_stage == 4
    assert count_params(shallow.build(s, (1, 8, 8), 10)) < count_params(space.build(s, (1, 8, 8), 10))
    with pytest.raises(ConfigError, match="`depth_multiplier == 1` must hold, because depth is the searched dimension `depth`"):
        nas.get_space("macro_chain").reduced(depth=0.5)
    with pytest.raises(ConfigError, match=r"`0 < width_multiplier <= 1` must hold, but got width_multiplier=1.5"):
        space.reduced(width=1.5)


def test_train_subset_is_stratified_deterministic_and_keeps_validation(digits_splits):
    sub = digits_splits.train_subset(0.25, seed=3)
    full_counts = torch.bincount(digits_splits.y_train)
    sub_counts = torch.bincount(sub.y_train, minlength=10)
    assert torch.all((sub_counts - full_counts * 0.25).abs() <= 1)  # every class keeps its share
    assert torch.equal(sub.x_val, digits_splits.x_val) and torch.equal(sub.y_test, digits_splits.y_test)
    assert torch.equal(sub.x_train, digits_splits.train_subset(0.25, seed=3).x_train)
    assert not torch.equal(sub.x_train, digits_splits.train_subset(0.25, seed=4).x_train)
    tiny = digits_splits.train_subset(0.001)
    assert torch.equal(torch.bincount(tiny.y_train), torch.ones(10, dtype=torch.long))  # at least one per class
    with pytest.raises(ConfigError, match=r"`0 < data_fraction <= 1` must hold, but got data_fraction=0"):
        digits_splits.train_subset(0)


def test_input_downscaling_averages_areas_in_1d_and_2d(digits_splits):
    small = digits_splits.downscaled(0.5)
    assert small.input_shape == (1, 4, 4)
    x = digits_splits.x_train[:1]
    assert small.x_train[0, 0, 0, 0] == pytest.approx(float(x[0, 0, :2, :2].mean()), abs=1e-6)
    assert mnist1d().downscaled(0.25).input_shape == (1, 10)
    vectors = nas.datasets.from_arrays("vec", np.zeros((20, 5), "float32"), np.arange(20) % 2, np.zeros((4, 5), "float32"), np.arange(4) % 2)
    with pytest.raises(ConfigError, match=r"`input_scale` needs inputs of shape \(C, L\) or \(C, H, W\).*\(5,\)"):
        vectors.downscaled(0.5)


def test_time_limit_scores_what_was_trained_and_says_so(digits_splits):
    space = nas.get_space("macro_chain")
    est = TrainingEstimator(space=space, dataset=digits_splits, epochs=50, max_seconds=1e-6, threads=1)
    result = est.evaluate(space.architecture(sample_of(space)), lambda *a, **k: False)
    assert result.metrics["epochs"] == 1 and result.metrics["time_limited"] is True
    with pytest.raises(ConfigError, match="`max_seconds > 0`"):
        TrainingEstimator(space=space, dataset=digits_splits, max_seconds=0)


class Watched(TrainingEstimator):
    """Measures validation accuracy after every step, as experiments/morphism_eval.py does."""

    def _after_step(self, model, epochs_done):
        self.points.append((epochs_done, self.accuracy(model, self._tensors["x_val"], self._tensors["y_val"])))
        model.train()


def test_watching_every_step_sees_the_training_without_changing_it(digits_splits):
    space = nas.get_space("macro_chain")
    arch = space.architecture(sample_of(space))
    plain = TrainingEstimator(space=space, dataset=digits_splits, epochs=2, batch_size=256, threads=1).evaluate(arch, lambda *a, **k: False)
    watched = Watched(space=space, dataset=digits_splits, epochs=2, batch_size=256, threads=1)
    watched.points = []
    result = watched.evaluate(arch, lambda *a, **k: False)
    steps = -(-len(digits_splits.y_train) // 256)
    assert [e for e, _ in watched.points] == pytest.approx([(i + 1) / steps for i in range(2 * steps)])
    assert watched.points[-1][1] == result.score  # the last step's accuracy is the epoch's
    assert result.score == plain.score and result.metrics["test_accuracy"] == plain.metrics["test_accuracy"]


def test_every_knob_is_recorded_with_each_trial_in_tensorboard_and_the_best_model_loads(tmp_path):
    overrides = ["estimator.width_multiplier=0.5", "estimator.data_fraction=0.3", "estimator.input_scale=0.5",
                 "space.cells_per_stage=2", "estimator.depth_multiplier=0.5", "estimator.threads=1"]
    result = nas.search(space="cell_nb201", dataset="digits", trials=2, epochs=1, out_dir=tmp_path, progress=False, overrides=overrides)
    for record in result.trials:
        f = record.fidelity
        assert (f["width_multiplier"], f["depth_multiplier"], f["data_fraction"], f["input_scale"], f["epochs"]) == (0.5, 0.5, 0.3, 0.5, 1)
        assert f["input_shape"] == "1x4x4" and f["train_examples"] == pytest.approx(0.3 * 1149, abs=10)
    assert json.loads((tmp_path / "best" / "arch.json").read_text())["fidelity"]["width_multiplier"] == 0.5
    model = nas.load(tmp_path).best_model(preprocess=False)  # rebuilt narrow and shallow, so the saved weights fit
    assert model(torch.zeros(3, 1, 4, 4)).shape == (3, 10)
    assert nas.load(tmp_path).best_model()(torch.zeros(3, 8, 8)).shape == (3, 10)  # raw digits: downscaled in front
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb" / "trial_0000"))
    events.Reload()
    hparams = events.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    assert b"fidelity.width_multiplier" in hparams and b"fidelity.data_fraction" in hparams


# ---- the fidelity check ------------------------------------------------------------------------
from nas.contrib.fidelity import Agreement, FidelityReport, check_fidelities, rank_agreement  # noqa: E402


def test_rank_agreement_measures_order_with_intervals_and_drops_failed_pairs():
    high = np.arange(20, dtype=float)
    same = rank_agreement(high * 2 + 1, high, bootstrap=200)
    assert same.tau == pytest.approx(1) and same.rho == pytest.approx(1) and same.tau_interval == pytest.approx((1, 1))
    assert rank_agreement(-high, high, bootstrap=50).tau == pytest.approx(-1)
    noisy = rank_agreement(high + np.random.default_rng(0).normal(0, 4, 20), high, bootstrap=500)
    assert 0.3 < noisy.tau < 0.95 and noisy.tau_interval[0] < noisy.tau < noisy.tau_interval[1]
    with_failures = rank_agreement(np.r_[high[:18], np.nan, np.nan], high, bootstrap=50)
    assert with_failures.pairs == 18 and with_failures.tau == pytest.approx(1)


def report_with(taus_costs):
    """A report whose fidelities have the given (scores, seconds) against reference 'full'."""
    ref = list(range(10))
    scores = {"full": ref, **{name: s for name, (s, _) in taus_costs.items()}}
    seconds = {"full": [10.0] * 10, **{name: [c] * 10 for name, (_, c) in taus_costs.items()}}
    report = FidelityReport(reference="full", threshold=0.6, architectures=[], scores=scores, seconds=seconds,
                            settings={n: {} for n in scores})
    report.agreement = {n: rank_agreement(s, ref, bootstrap=100) for n, s in scores.items()}
    return report


def test_the_cheapest_fidelity_that_clears_the_threshold_is_recommended():
    good, shuffled = list(range(10)), [3, 9, 1, 7, 0, 5, 2, 8, 4, 6]
    report = report_with({"cheap_bad": (shuffled, 1.0), "mid_good": (good, 3.0), "dear_good": (good, 6.0)})
    assert report.recommended == "mid_good" and "Recommended: 'mid_good'" in report.verdict()
    assert report.table().index("cheap_bad") < report.table().index("mid_good")  # cheapest first
    assert report_with({"cheap_bad": (shuffled, 1.0)}).recommended == "full"


def test_identical_fidelities_rank_with_tau_one_through_real_training(digits_splits):
    report = check_fidelities(space="macro_chain", dataset=digits_splits, samples=5, reference="a", bootstrap=100,
                              fidelities={"a": {"epochs": 1}, "b": {"epochs": 1}},
                              estimator={"_target_": "nas.TrainingEstimator", "threads": 1, "batch_size": 128})
    assert report.scores["a"] == report.scores["b"] and len(set(report.scores["a"])) > 1
    assert report.agreement["b"].tau == pytest.approx(1) and report.agreement["b"].rho == pytest.approx(1)
    assert len({a.key for a in report.architectures}) == 5


def test_fidelity_check_refuses_bad_settings_before_training(digits_splits):
    with pytest.raises(ConfigError, match="`reference` must name one of the fidelities.*'full'"):
        check_fidelities(space="macro_chain", dataset=digits_splits, fidelities={"a": {}}, reference="full")
    with pytest.raises(ConfigError, match="fidelity 'b'.*`0 < data_fraction <= 1` must hold, but got data_fraction=2"):
        check_fidelities(space="macro_chain", dataset=digits_splits, fidelities={"a": {}, "b": {"data_fraction": 2}}, reference="a")
    with pytest.raises(ConfigError, match="fidelity 'b'.*Valid keys"):
        check_fidelities(space="macro_chain", dataset=digits_splits, fidelities={"a": {}, "b": {"epoch": 2}}, reference="a")


@pytest.mark.slow
def test_fidelity_check_app_writes_markdown_json_and_tensorboard(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    app = Path(__file__).resolve().parents[1] / "experiments" / "fidelity_check.py"
    done = subprocess.run([sys.executable, str(app), "samples=4", "bootstrap=50", "estimator.epochs=2", "threads=1",
                           "~fidelities", "+fidelities={full:{},one:{epochs:1},narrow:{width_multiplier:0.5}}",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| fidelity | settings | Kendall tau" in done.stdout
    saved = json.loads((tmp_path / "results.json").read_text())
    # which fidelity wins depends on the training and the timings: the verdict printed is the one the saved results give
    measured = FidelityReport(reference="full", threshold=saved["config"]["threshold"], architectures=[], scores=saved["scores"],
                              seconds=saved["seconds"], settings={}, agreement={k: Agreement(**v) for k, v in saved["agreement"].items()},
                              conservative=saved["config"]["conservative"])
    assert measured.recommended == saved["recommended"] and f"\n{measured.verdict()}\n" in done.stdout
    assert (tmp_path / "fidelity_check.md").read_text().endswith(f"\n{measured.verdict()}\n")
    assert set(saved["scores"]) == {"full", "one", "narrow"} and all(len(v) == 4 for v in saved["scores"].values())
    assert (tmp_path / "fidelity_check.md").read_text().startswith("# Fidelity check")
    assert {p.name for p in (tmp_path / "tb").iterdir()} == {"full", "one", "narrow"}


def test_no_fidelity_is_recommended_from_too_few_architectures():
    """Three architectures once "recommended" a fidelity on the interval 1.000 [1.00, 1.00]: bootstrap resamples of
    so few points are repeats and ties, and the interval says nothing."""
    report = report_with({"cheap": (list(range(10)), 1.0)})
    assert report.compared == 10 and report.recommended == "cheap"
    few = FidelityReport(reference="full", threshold=0.6, architectures=[], scores={"full": [1.0, 2.0, 3.0], "cheap": [1.0, 2.0, 3.0]},
                         seconds={"full": [10.0] * 3, "cheap": [1.0] * 3}, settings={"full": {}, "cheap": {}})
    few.agreement = {n: rank_agreement(s, few.scores["full"], bootstrap=100) for n, s in few.scores.items()}
    assert few.agreement["cheap"].tau_interval == pytest.approx((1.0, 1.0)) and few.recommended is None
    assert few.verdict() == ("No recommendation: 3 architectures compared, and an interval of Kendall tau cannot be estimated "
                             "from fewer than 10; run with samples >= 10.")


def test_each_architecture_done_leaves_the_report_so_far(digits_splits):
    partial = []
    report = check_fidelities(space="macro_chain", dataset=digits_splits, samples=3, reference="a", bootstrap=50,
                              fidelities={"a": {"epochs": 1}, "b": {"epochs": 1, "data_fraction": 0.5}},
                              estimator={"_target_": "nas.TrainingEstimator", "threads": 1, "batch_size": 128},
                              on_architecture=partial.append)
    assert [len(p.architectures) for p in partial] == [1, 2] and len(report.architectures) == 3
    assert partial[1].scores["a"] == report.scores["a"][:2]


@pytest.mark.slow
def test_the_fidelity_check_app_takes_dataset_overrides_as_nas_search_does(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from sklearn.datasets import load_digits

    data = load_digits()
    np.savez(tmp_path / "mine.npz", x_train=data.images[:1200], y_train=data.target[:1200], x_test=data.images[1200:],
             y_test=data.target[1200:])
    app = Path(__file__).resolve().parents[1] / "experiments" / "fidelity_check.py"
    done = subprocess.run([sys.executable, str(app), "dataset=npz", f"dataset.path={tmp_path / 'mine.npz'}", "samples=3",
                           "bootstrap=20", "estimator.epochs=1", "threads=1", "~fidelities", "+fidelities={full:{},half:{data_fraction:0.5}}",
                           f"hydra.run.dir={tmp_path / 'out'}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "of `macro_chain` on `mine`" in done.stdout and "No recommendation: 3 architectures compared" in done.stdout
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["final"] is True and saved["config"]["dataset"]["path"] == str(tmp_path / "mine.npz")
