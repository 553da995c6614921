"""Monitoring the deployed model: each detector on seeded streams with a known change (and without one), ours
cross-checked against a reference implementation or the published formula, and nas-monitor end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nas
from nas import ConfigError
from nas.cli import monitor_main
from nas.model_audit.drift import adwin, ddm, hdddm, hellinger, ks_psi, lfr, md3, psi
from nas.model_audit.monitor import monitor


# ---- the detectors ---------------------------------------------------------------------------
def test_hellinger_distance_is_hdddms_and_equals_menelaus():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 3)), rng.normal(0.5, 1.0, size=(300, 3))
    edges = [np.linspace(min(a[:, f].min(), b[:, f].min()), max(a[:, f].max(), b[:, f].max()), 21) for f in range(3)]
    assert hellinger(a, a, edges) == 0.0
    apart = np.linspace(0, 2, 3)
    assert hellinger(np.zeros((5, 1)), np.full((5, 1), 2.0), [apart]) == pytest.approx(math.sqrt(2))  # disjoint histograms
    hdddm_module = pytest.importorskip("menelaus.data_drift.hdddm")
    reference = hdddm_module.HDDDM()
    theirs = []
    for f in range(3):
        reference._bins = 20  # the reference implementation's own distance on the same histograms
        theirs.append(reference._hellinger_distance(np.histogram(a[:, f], edges[f])[0], np.histogram(b[:, f], edges[f])[0]))
    assert hellinger(a, b, edges) == pytest.approx(float(np.mean(theirs)))


def test_psi_follows_its_formula():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=5000)
    assert psi(reference, rng.normal(size=5000)) < 0.01  # the same population
    shifted = reference + 1.0
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.maximum(np.histogram(reference, edges)[0] / 5000, 1e-4)
    q = np.maximum(np.histogram(shifted, edges)[0] / 5000, 1e-4)
    assert psi(reference, shifted) == pytest.approx(float(((q - p) * np.log(q / p)).sum())) and psi(reference, shifted) > 0.5


def _shift_stream(n=5000, change=2500, shift=1.0, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    x[change:, 0] += shift
    return rng.normal(size=(1000, features)), x


def test_input_detectors_see_an_abrupt_covariate_shift_and_stay_quiet_without_one():
    reference, stream = _shift_stream()
    _, alarms = hdddm(reference, stream, batch=250)
    assert alarms and 2500 <= alarms[0].position < 2500 + 2 * 250
    tests = ks_psi(reference, stream, window=250)
    for name in ("ks", "psi"):
        first = tests[name][1][0].position
        assert 2500 <= first < 2750, (name, first)
    quiet_reference, quiet = _shift_stream(shift=0.0, seed=3)
    assert len(hdddm(quiet_reference, quiet, batch=250)[1]) <= 1
    assert not ks_psi(quiet_reference, quiet, window=250)["ks"][1]


def test_md3_sees_the_margin_fill_up():
    rng = np.random.default_rng(2)
    reference = rng.uniform(0.1, 1.0, 2000)  # about 11 % of margins below 0.2
    stream = np.concatenate([rng.uniform(0.1, 1.0, 2000), rng.uniform(0.0, 0.4, 2000)])  # then half of them
    trace, alarms = md3(reference, stream, window=250)
    assert alarms and alarms[0].position == 2249 and not [a for a in alarms if a.position < 2000]
    assert trace[0][1] == pytest.approx(1 / 9, abs=0.05)


def _labelled(n=10_000, change=5000, before=0.1, after=0.3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    flip = np.where(np.arange(n) < change, before, after)
    return y, np.where(rng.random(n) < flip, 1 - y, y)


def test_error_stream_detectors_find_the_change_and_lfr_stays_quiet_on_a_stationary_stream():
    y, pred = _labelled()
    positions = np.arange(len(y))
    errors = y != pred
    for detector in (ddm, adwin):
        trace, alarms = detector(errors, positions)
        after = [a.position for a in alarms if a.position >= 5000]
        assert len(trace) == len(y) and after and after[0] < 5700, (detector.__name__, after[:3])
    _, alarms = lfr(y, pred, positions)
    assert [a.position for a in alarms if a.position >= 5000][0] < 5200
    y0, pred0 = _labelled(after=0.1, seed=4)
    assert len(lfr(y0, pred0, positions)[1]) <= 3  # 10,000 examples without a change: about 2 false alarms (experiments/drift_detectors.py)


# ---- nas-monitor -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("monitor") / "run"
    result = nas.search(space="macro_chain", trials=3, epochs=3, out_dir=run_dir, progress=False, tensorboard=False, seed=0)
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    x, y = data.images[order].astype(np.float32), data.target[order]
    x[900:] = np.clip(x[900:] + rng.normal(0, 4, x[900:].shape), 0, 16)  # the sensor gets noisy at 900
    return result, run_dir, x, y


def test_monitoring_a_drifting_stream_raises_alarms_after_the_change_and_writes_its_report(deployed, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, run_dir, x, y = deployed
    report = monitor(result, (x, y), window=100, progress=None)
    assert set(report.detectors) == {"ddm", "eddm", "adwin", "lfr", "hdddm", "md3", "ks", "psi"}
    for name in ("adwin", "md3", "ks"):
        first = report.first_alarm(name)
        assert first is not None and 900 <= first < 1500, (name, first)
    assert 900 <= report.first_alarm("ddm", after=900) < 1500  # river's DDM also fired once before (at 536): its false alarm
    assert report.advice.startswith("The model's errors changed")
    saved = json.loads((run_dir / "monitor" / "report.json").read_text())
    assert saved["detectors"]["ddm"]["alarms"][0]["detector"] == "ddm"
    assert "| ddm |" in (run_dir / "monitor" / "report.md").read_text() and (run_dir / "monitor" / "md3.png").exists()
    tags = EventAccumulator(str(run_dir / "tb" / "monitor")).Reload().Tags()
    assert "monitor/adwin" in tags["scalars"] and "monitor/ks_alarm" in tags["scalars"] and "monitor/md3" in tags["images"]
    unlabelled = monitor(result, (x, np.full(len(y), -1)), window=100, progress=None, out_dir=tmp_path / "m")
    assert unlabelled.detectors["ddm"]["note"] == "needs labels (stream.y): none known"
    assert "with no labels to say whether the errors did" in unlabelled.advice


def test_bad_streams_and_settings_are_refused_before_any_computation(deployed, tmp_path, capsys):
    result, run_dir, x, y = deployed
    with pytest.raises(ConfigError, match=r"`stream.x` must hold raw inputs of shape \(N, 8, 8\) .* but has shape \(10, 64\)"):
        monitor(result, (x[:10].reshape(10, 64), None), progress=None)
    np.savez(tmp_path / "s.npz", inputs=x)
    with pytest.raises(ConfigError, match=r"`stream` must hold an array `x` \(raw inputs\)"):
        monitor(result, tmp_path / "s.npz", progress=None)
    with pytest.raises(ConfigError, match="`detectors` must name some of ddm"):
        monitor(result, (x, y), detectors=["cusum"], progress=None)
    np.savez(tmp_path / "ok.npz", x=x, y=y)
    monitor_main([str(run_dir), str(tmp_path / "ok.npz"), "monitor.detectors=[adwin,ks]", "monitor.window=200"])
    saved = json.loads((run_dir / "monitor" / "report.json").read_text())
    assert set(saved["detectors"]) == {"adwin", "ks"}
    with pytest.raises(SystemExit):
        monitor_main([str(run_dir), str(tmp_path / "ok.npz"), "monitor.windows=200"])
    assert "`monitor.windows` is not a setting" in capsys.readouterr().err


def test_on_drift_research_searches_the_recent_data_warm_started_from_the_deployed_run(deployed):
    from omegaconf import OmegaConf

    result, run_dir, x, y = deployed
    report = nas.monitor(result, (x, y), window=100, detectors=["adwin"], progress=None, on_drift="research",
                         research=["budget.trials=4", "estimator.epochs=1", "progress=false", "tensorboard=false"])
    child_dir = report.research_run
    assert child_dir == f"{run_dir}-research"
    assert OmegaConf.load(f"{child_dir}/config.yaml").warm_start.run == str(run_dir)  # it names its parent run
    child = nas.load(child_dir)
    parents = [t.number for t in result.top(3)]
    first = child.trials[:len(parents)]
    assert [t.arch.key for t in first] == [result.store.record(n).arch.key for n in parents]  # the parent's best first
    assert [t.metrics["warm_start"] for t in first] == [f"{run_dir}#{n}" for n in parents]
    assert all(t.inheritance is not None and t.inheritance.fraction == 1.0 for t in first)  # from their trained weights
    assert len(child.trials) == 4 and "warm_start" not in child.trials[3].metrics
    since = report.first_alarm("adwin")
    assert len(np.load(f"{child_dir}/drifted.npz")["y_train"]) == round(0.7 * (len(y) - since))


def test_a_warm_start_from_another_space_is_refused(deployed, tmp_path):
    _, run_dir, _, _ = deployed
    with pytest.raises(ConfigError, match="`warm_start.run` must have searched this space \\('mlp'\\)"):
        nas.search(space="mlp", trials=1, epochs=1, out_dir=tmp_path / "run", progress=False, tensorboard=False,
                   overrides=[f"warm_start={{run: {run_dir}}}"])
