"""The audit of the chosen model: its figures checked against scikit-learn and hand computation, the attacks
against their definitions, bad input refused before any computation, and a whole audit of a real search."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas import ConfigError
from nas.cli import audit_main
from nas.model_audit import AuditSettings
from nas.model_audit.metrics import calibration, classification, confusions, prf_of_confusions
from nas.model_audit.robustness import random_inputs, robust_accuracy
from nas.model_audit.slices import check_groups, fairness, slice_table


# ---- figures --------------------------------------------------------------------------------
def test_per_class_figures_equal_scikit_learns_and_the_resampled_ones_count_confusions_alike():
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    proba = rng.dirichlet(np.ones(5), 400)  # class 4 never occurs: its recall is undefined (0, as scikit-learn's zero_division=0)
    pred = proba.argmax(1)
    ours = prf_of_confusions(confusions(y[None], pred[None], 5))[0]
    theirs = np.array(precision_recall_fscore_support(y, pred, labels=list(range(5)), zero_division=0)[:3])
    assert np.allclose(ours, theirs)
    report = classification(y, proba, 5, resamples=200)
    assert report["accuracy"] == pytest.approx(np.mean(pred == y))
    low, high = report["accuracy_interval"]
    assert low < report["accuracy"] < high and high - low < 0.15
    assert report["rare_classes"] == [4] and report["classes"][4]["support"] == 0
    assert np.array(report["confusion"]).sum() == 400


def test_expected_calibration_error_by_hand():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.4, 0.6], [0.6, 0.4]])  # two at 0.95 (both right), two at 0.6 (one right)
    result = calibration(y, proba, bins=10)
    assert result["ece"] == pytest.approx(0.5 * abs(1.0 - 0.95) + 0.5 * abs(0.5 - 0.6))
    assert [b["count"] for b in result["bins"] if b["count"]] == [2, 2]


def test_slices_rank_the_worst_first_and_fairness_rates_are_the_groups_own():
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    proba = np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.8, 0.2],  # group a: all right
                      [0.7, 0.3], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])  # group b: one positive missed, one false positive
    group = np.array(["a"] * 4 + ["b"] * 4)
    rows = slice_table(proba.argmax(1) == y, {"group": group}, resamples=50)
    assert [(r["value"], r["accuracy"]) for r in rows] == [("b", 0.5), ("a", 1.0)] and rows[0]["gap"] == pytest.approx(-0.25)
    result = fairness(y, proba, group, thresholds=(0.5,))
    (setting,) = result["settings"]
    assert setting["by_group"]["a"]["tpr"] == 1.0 and setting["by_group"]["b"]["tpr"] == 0.5
    assert setting["by_group"]["b"]["fpr"] == 0.5 and setting["by_group"]["b"]["positive_rate"] == 0.5
    assert setting["difference"]["accuracy"] == pytest.approx(0.5) and setting["ratio"]["accuracy"] == pytest.approx(0.5)
    assert setting["by_group"]["a"]["auc"] == 1.0
    assert result["largest_gap"]["difference"] == pytest.approx(0.5)


# ---- attacks -------------------------------------------------------------------------------
def _trained_linear():
    torch.manual_seed(0)
    x = torch.randn(400, 6)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(6, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model, x, y


def test_attacks_stay_within_epsilon_and_pgd_hurts_at_least_as_much_as_fgsm():
    from nas.model_audit.robustness import _attacked

    model, x, y = _trained_linear()
    generator = torch.Generator().manual_seed(0)
    for attack in ("fgsm", "pgd"):
        moved = _attacked(model, x, y, attack, 0.2, 10, generator)
        assert (moved - x).abs().max() <= 0.2 + 1e-6
    clean, fgsm, pgd = (robust_accuracy(model, x, y, a, [0.0, 0.3])[1]["accuracy"] for a in ("noise", "fgsm", "pgd"))
    assert robust_accuracy(model, x, y, "fgsm", [0.0])[0]["accuracy"] > 0.95
    assert pgd <= fgsm + 0.01 and fgsm < clean  # a white-box attack does more harm than noise of the same size


class _Broken(nn.Module):
    """NaN for inputs whose first value is positive."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 3)

    def forward(self, x):
        out = self.linear(x)
        return torch.where((x[:, :1] > 0), torch.full_like(out, float("nan")), out)


def test_random_inputs_report_nan_outputs_and_exceptions():
    reference = torch.randn(100, 6)
    report = random_inputs(_Broken(), reference, count=2000)
    assert 700 < report["nan_outputs"] < 1300 and report["exceptions"] == 0

    class Raises(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(5, 2)  # the wrong input size: every call raises

        def forward(self, x):
            return self.linear(x)

    failing = random_inputs(Raises(), reference, count=1000)
    assert failing["exceptions"] == 1000 and "mat1 and mat2" in failing["errors"][0]


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, message", [
    ({"epsilons": [0.1, -0.5]}, "`audit.epsilons` must be a list of numbers >= 0, but got -0.5"),
    ({"top_k": 0}, "`audit.top_k` must be an integer >= 1, but got 0"),
    ({"attacks": ["noise", "deepfool"]}, "`audit.attacks` must name some of noise, fgsm, pgd, but got 'deepfool'"),
    ({"baselines": ["svm"]}, "`baselines` must name some of majority, logistic, knn, but got 'svm'"),
    ({"human_level": 95}, "`audit.human_level` must be an accuracy between 0 and 1, but got 95"),
    ({"topk": 3}, "`audit.topk` is not an audit setting"),
])
def test_bad_settings_are_refused_naming_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        AuditSettings.from_mapping(settings)


def test_a_slice_of_the_wrong_length_is_refused():
    with pytest.raises(ConfigError, match=r"`slices.group` must hold one value per example of the split \(360\), but got shape \(10,\)"):
        check_groups({"group": np.zeros(10)}, 360)


# ---- a whole audit --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("audit") / "run"
    result = nas.search(space="macro_chain", trials=5, epochs=2, out_dir=run_dir, progress=False, tensorboard=False, seed=0)
    return result, run_dir


def test_the_search_keeps_its_best_three_networks_for_the_audit(searched):
    result, run_dir = searched
    kept = sorted(int(p.name) for p in (run_dir / "top").iterdir() if p.is_dir())
    assert kept == sorted(t.number for t in result.top(3))
    third = result.top(3)[2]
    model = result.best_model(trial=third.number, preprocess=False)
    assert sum(p.numel() for p in model.parameters()) == third.metrics["params"]


def test_an_audit_fills_every_section_and_writes_report_json_markdown_pictures_and_tensorboard(searched):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, run_dir = searched
    group = np.arange(360) % 3  # a declared group of the test split
    report = nas.audit(result, slices={"site": group}, human_level=0.99, noise=[0.5], epsilons=[0.1], random_inputs=500,
                       resamples=100, progress=None)
    assert [m["name"] for m in report.candidates] == [f"trial #{t.number}" for t in result.top(3)]
    assert [m["name"] for m in report.baselines] == ["majority", "logistic", "knn"]
    best = report.candidates[0]
    assert best["classification"]["accuracy"] == pytest.approx(result.top(1)[0].metrics["test_accuracy"])  # the same network, split
    assert report.model("majority")["classification"]["accuracy"] == pytest.approx(36 / 360, abs=0.01)
    assert report.gaps()[best["name"]]["human level"] == pytest.approx(best["classification"]["accuracy"] - 0.99)
    assert {s["slice"] for s in best["slices"]} == {"true class", "confidence", "brightness", "site", "site x true class"}
    assert set(best["fairness"]["site"]["settings"][0]["by_group"]) == {"0", "1", "2"}
    assert [r["strength"] for r in best["robustness"]["pgd"]] == [0.0, 0.1]
    assert best["robustness"]["random_inputs"]["count"] == 500
    folder = run_dir / "audit"
    saved = json.loads((folder / "report.json").read_text())
    assert [m["name"] for m in saved["models"]] == [m["name"] for m in report.models]
    text = (folder / "report.md").read_text()
    for heading in ("## Candidates and baselines", "## Per class", "## Slices, worst first", "## Fairness across `site`",
                    "## Robustness", "## Calibration", "![reliability](reliability.png)"):
        assert heading in text
    assert (folder / "reliability.png").stat().st_size > 1000 and (folder / "robustness_pgd.png").exists()
    tags = EventAccumulator(str(run_dir / "tb" / "audit")).Reload().Tags()
    assert f"audit/trial_{result.top(1)[0].number}/accuracy" in tags["scalars"] and "audit/reliability" in tags["images"]


def test_nas_audit_reads_its_settings_and_refuses_bad_ones_before_computing(searched, capsys):
    _, run_dir = searched
    audit_main([str(run_dir), "audit.top_k=1", "audit.attacks=[noise]", "audit.noise=[0.2]", "audit.random_inputs=0",
                "audit.baselines=[majority]", "audit.resamples=50"])
    saved = json.loads((run_dir / "audit" / "report.json").read_text())
    assert [m["name"] for m in saved["models"]][1:] == ["majority"] and len(saved["models"]) == 2
    assert list(saved["models"][0]["robustness"]) == ["noise"]
    for argv, message in [(["audit.epsilons=[-1]"], "`audit.epsilons` must be a list of numbers >= 0"),
                          (["audit.slices=group"], "`audit.slices` names 'group', but dataset 'digits' has no such group array"),
                          (["top_k=3"], "each setting must read audit.KEY=VALUE")]:
        with pytest.raises(SystemExit):
            audit_main([str(run_dir), *argv])
        assert message in capsys.readouterr().err


def test_a_run_directory_without_a_trained_model_is_refused(tmp_path):
    from nas import TableEstimator

    space = nas.get_space("macro_tiny")
    result = nas.search(space=space, estimator=TableEstimator(lambda arch: 0.5, space=space), trials=2, out_dir=tmp_path / "run",
                        progress=False, tensorboard=False)
    with pytest.raises(ConfigError, match="must hold a trained model"):
        nas.audit(result, dataset=nas.datasets.digits(), progress=None)


# ---- sensitivity, error analysis ------------------------------------------------------------
def test_partial_dependence_finds_the_feature_the_model_uses_and_what_if_changes_the_prediction():
    from nas.model_audit.sensitivity import partial_dependence, what_if

    model, x, y = _trained_linear()  # the label is x0 + 0.5 x1 > 0; features 2 to 5 are noise
    rows = partial_dependence(model, x[:100], x, [0, 1, 4])
    assert [r["feature"] for r in rows] == [0, 1, 4] and rows[0]["effect"] > rows[1]["effect"] > 5 * rows[2]["effect"]
    assert len(rows[0]["ice"]) == 20 and len(rows[0]["grid"]) == len(rows[0]["partial_dependence"])
    changed = what_if(model, torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]), feature=0, value=-1.0)
    assert changed["before"]["class"] == 1 and changed["after"]["class"] == 0 and changed["from"] == 1.0
    with pytest.raises(ConfigError, match="`audit.features` must be indices of input features, 0 to 5"):
        what_if(model, x[0], feature=6, value=0.0)


def test_occlusion_points_at_the_region_the_model_reads():
    from nas.model_audit.sensitivity import occlusion

    class Corner(nn.Module):  # class 1 when the top-left 2x2 corner is bright
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(4.0))

        def forward(self, x):
            score = x[:, 0, :2, :2].mean(dim=(1, 2)) * self.scale
            return torch.stack([-score, score], dim=1)

    x = torch.ones(20, 1, 8, 8)
    result = occlusion(Corner(), x, np.ones(20, dtype=int), size=2, stride=2)
    assert result["most_sensitive"]["start"] == [0, 0] and result["most_sensitive"]["drop"] > 0.4
    drop = np.array(result["drop"])
    assert drop.shape == (4, 4) and np.count_nonzero(np.abs(drop) > 1e-9) == 1


def test_error_analysis_ranks_the_tag_holding_most_errors_and_autocorrelation_sees_runs():
    from nas.model_audit.errors import autocorrelation, error_table

    correct = np.ones(100, dtype=bool)
    tag = np.array(["night"] * 20 + ["day"] * 80)
    correct[:10] = False  # half of the night examples wrong
    correct[50:52] = False
    rows = error_table(correct, {"light": tag}, human_level=0.98)
    assert (rows[0]["value"], rows[0]["share_of_errors"], rows[0]["error_rate"]) == ("night", 10 / 12, 0.5)
    assert rows[0]["room_to_human"] == pytest.approx(0.5 - 0.02) and rows[0]["share_of_data"] == 0.2
    runs = autocorrelation(correct)
    assert 1 in runs["significant_lags"] and runs["autocorrelation"][0] > 0.5
    rng = np.random.default_rng(0)
    assert autocorrelation(rng.random(2000) > 0.1)["autocorrelation"][0] == pytest.approx(0.0, abs=0.05)


# ---- before and during a search -------------------------------------------------------------
def test_the_sanity_check_passes_a_sound_pipeline_and_refuses_one_that_cannot_learn(tmp_path):
    import dataclasses

    from nas.datasets import digits
    from nas.model_audit.sanity import sanity_check

    data = digits()
    said = []
    found = sanity_check(nas.get_space("macro_chain"), data, say=said.append)
    assert found["passed"] and found["architectures"][0]["largest"] and all(r["train_accuracy"] >= 0.99 for r in found["architectures"])
    blank = dataclasses.replace(data, x_train=torch.zeros_like(data.x_train))  # inputs lost in the pipeline: nothing to learn from
    with pytest.raises(ConfigError, match="sanity check: the largest of 20 random architectures of space 'macro_chain' .* must overfit "
                                          "32 training examples to accuracy >= 0.99, but reached 0.1"):
        sanity_check(nas.get_space("macro_chain"), blank, say=said.append, steps=100)
    with pytest.raises(ConfigError, match="sanity check: the largest"):  # before any trial: no run directory
        nas.search(space="macro_chain", dataset=blank, trials=2, epochs=1, out_dir=tmp_path / "run", progress=False,
                   tensorboard=False, overrides=["sanity_check={steps: 50}"])
    assert not (tmp_path / "run").exists()


def test_audit_figures_recorded_per_trial_serve_as_objectives(tmp_path):
    result = nas.search(space="macro_chain", trials=4, epochs=1, out_dir=tmp_path / "run", progress=False, tensorboard=False,
                        overrides=["trial_audit={figures: [val_ece, val_worst_class_accuracy, val_worst_slice_accuracy, "
                                   "val_robust_accuracy], epsilon: 0.1}"],
                        objectives={"val_accuracy": "max", "val_robust_accuracy": "max"})
    complete = [t for t in result.trials if t.state == "complete"]
    for t in complete:
        m = t.metrics
        assert 0 <= m["val_ece"] <= 1 and m["val_worst_class_accuracy"] <= m["val_accuracy"] + 1e-9
        assert m["val_worst_slice_accuracy"] <= m["val_accuracy"] + 1e-9 and m["val_robust_accuracy"] <= m["val_accuracy"] + 0.02
    assert result.pareto
    with pytest.raises(ConfigError, match="`trial_audit.group` names 'site', but dataset 'digits' has no such group array"):
        nas.search(space="macro_chain", trials=1, epochs=1, out_dir=tmp_path / "bad", progress=False, tensorboard=False,
                   overrides=["trial_audit={figures: [val_group_gap], group: site}"])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="`trial_audit.figures` must name some of val_ece"):
        nas.search(space="macro_chain", trials=1, epochs=1, out_dir=tmp_path / "bad", progress=False, tensorboard=False,
                   overrides=["trial_audit={figures: [val_auc]}"])


def test_a_group_gap_on_the_validation_split_from_an_npz_files_training_groups(tmp_path):
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(0)
    g = rng.choice(["a", "b"], len(data.target))
    np.savez(tmp_path / "d.npz", x_train=data.images[:1400], y_train=data.target[:1400], x_test=data.images[1400:],
             y_test=data.target[1400:], g_train_site=g[:1400], g_test_site=g[1400:])
    result = nas.search(space="macro_chain", trials=2, epochs=1, out_dir=tmp_path / "run", progress=False, tensorboard=False,
                        overrides=["dataset=npz", f"dataset.path={tmp_path / 'd.npz'}",
                                   "trial_audit={figures: [val_group_gap], group: site}"])
    assert all(0 <= t.metrics["val_group_gap"] <= 1 for t in result.trials if t.state == "complete")
    report = nas.audit(result, slices=["site"], noise=[0.1], epsilons=[0.1], random_inputs=100, resamples=50, progress=None)
    assert set(report.candidates[0]["fairness"]["site"]["settings"][0]["by_group"]) == {"a", "b"}
