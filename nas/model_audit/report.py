"""The audit's output: ``report.json`` (every figure), ``report.md`` (the tables a person reads, worst
first), PNG pictures (confusion matrices, reliability diagram, robust accuracy against strength) and
TensorBoard events (the markdown as text, the figures as scalars, the pictures as images)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.engine.drawing import plot_image
from nas.model_audit.metrics import plain

__all__ = ["AuditReport"]


@dataclass
class AuditReport:
    """Every model's figures (``models``: one dict per candidate or baseline, in the order audited)."""

    run_dir: str | None
    dataset: str
    split: str
    examples: int
    settings: Any
    models: list[dict[str, Any]]
    human_level: float | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    networks: dict[str, Any] = field(default_factory=dict, repr=False)  # the candidates' networks (not saved), for what_if
    inputs: Any = field(default=None, repr=False)  # the split's network inputs

    def what_if(self, model: str, example: int, feature: int, value: float) -> dict[str, Any]:
        """Candidate ``model`` on example ``example`` of the split, and on it with flattened input feature ``feature``
        set to ``value``: both predictions and their class probabilities."""
        from nas.model_audit.sensitivity import what_if

        if model not in self.networks:
            raise KeyError(f"`model` must be one of the audited candidates ({', '.join(self.networks)}), but got {model!r}.")
        if isinstance(example, bool) or not isinstance(example, int) or not 0 <= example < len(self.inputs):
            raise IndexError(f"`example` must be an index of the split, 0 to {len(self.inputs) - 1}, but got {example!r}.")
        return what_if(self.networks[model], self.inputs[example], feature, value)

    def model(self, name: str) -> dict[str, Any]:
        """The figures of the model called ``name`` (``"trial #3"``, ``"logistic"``)."""
        for m in self.models:
            if m["name"] == name:
                return m
        raise KeyError(f"no model {name!r} in this audit ({', '.join(m['name'] for m in self.models)})")

    @property
    def candidates(self) -> list[dict[str, Any]]:
        return [m for m in self.models if m["kind"] == "candidate"]

    @property
    def baselines(self) -> list[dict[str, Any]]:
        return [m for m in self.models if m["kind"] == "baseline"]

    def gaps(self) -> dict[str, dict[str, float]]:
        """Each candidate's accuracy minus each baseline's (and the human level's, when declared)."""
        out = {}
        for c in self.candidates:
            accuracy = c["classification"]["accuracy"]
            row = {b["name"]: accuracy - b["classification"]["accuracy"] for b in self.baselines}
            if self.human_level is not None:
                row["human level"] = accuracy - self.human_level
            out[c["name"]] = row
        return out

    def robustness_ranking(self, attack: str) -> list[tuple[float, list[str]]]:
        """For each strength of ``attack``: the candidates, most robust first (what says whether the ranking changes)."""
        strengths = [r["strength"] for r in self.candidates[0].get("robustness", {}).get(attack, [])] if self.candidates else []
        out = []
        for i, strength in enumerate(strengths):
            order = sorted(self.candidates, key=lambda c: -c["robustness"][attack][i]["accuracy"])
            out.append((strength, [c["name"] for c in order]))
        return out

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self.settings) if self.settings is not None else {}
        return plain({"run_dir": self.run_dir, "dataset": self.dataset, "split": self.split, "examples": self.examples,
                       "settings": settings, "human_level": self.human_level, "notes": self.notes, "seconds": self.seconds,
                       "gaps": self.gaps(), "models": self.models})

    # ---- writing ------------------------------------------------------------------------------
    def write(self, folder: str | Path, *, tensorboard_dir: str | Path | None = None) -> Path:
        """``report.json``, ``report.md`` and the pictures in ``folder``; TensorBoard events in ``tensorboard_dir``."""
        from PIL import Image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):  # an earlier audit's pictures of other models
            old.unlink()
        pictures = self.pictures()
        for name, image in pictures.items():
            Image.fromarray(image).save(folder / f"{name}.png")
        (folder / "report.json").write_text(json.dumps(self.to_dict(), indent=2, allow_nan=True))
        (folder / "report.md").write_text(self.to_markdown(pictures=list(pictures)))
        if tensorboard_dir is not None:
            self._tensorboard(Path(tensorboard_dir), pictures)
        return folder

    def pictures(self) -> dict[str, np.ndarray]:
        out = {}
        for m in self.candidates[:1] + self.baselines[-1:]:
            out[f"confusion_{_slug(m['name'])}"] = plot_image(lambda ax, m=m: _confusion(ax, m), size=(5.2, 4.6),
                                                              title=f"{m['name']}: confusion (rows: true class)")
        out["reliability"] = plot_image(lambda ax: _reliability(ax, self.models), title="reliability (calibration)")
        for m in self.candidates[:1]:
            o = (m.get("sensitivity") or {}).get("occlusion")
            if o is not None:
                out[f"occlusion_{_slug(m['name'])}"] = plot_image(lambda ax, o=o: _occlusion(ax, o), size=(5.2, 4.2),
                                                                  title=f"{m['name']}: drop in true-class probability when masked")
            pd = (m.get("sensitivity") or {}).get("partial_dependence")
            if pd:
                out[f"partial_dependence_{_slug(m['name'])}"] = plot_image(lambda ax, pd=pd: _partial(ax, pd),
                                                                           title=f"{m['name']}: partial dependence (ICE grey)")
        attacks = [a for a in ("noise", "fgsm", "pgd") if self.candidates and a in self.candidates[0].get("robustness", {})]
        for attack in attacks:
            out[f"robustness_{attack}"] = plot_image(lambda ax, a=attack: _robustness(ax, self.candidates, a),
                                                     title=f"accuracy under {attack}")
        return out

    def _tensorboard(self, root: Path, pictures: dict[str, np.ndarray]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(root))
        try:
            writer.add_text("audit/report", self.to_markdown(pictures=[]), 0)
            for m in self.models:
                tag = _slug(m["name"])
                writer.add_scalar(f"audit/{tag}/accuracy", m["classification"]["accuracy"], 0)
                writer.add_scalar(f"audit/{tag}/macro_f1", m["classification"]["averages"]["macro"]["f1"], 0)
                writer.add_scalar(f"audit/{tag}/ece", m["calibration"]["ece"], 0)
                ranked = [s for s in m["slices"] if s["size"] >= 10]
                if ranked:
                    writer.add_scalar(f"audit/{tag}/worst_slice_accuracy", ranked[0]["accuracy"], 0)
                for attack, rows in m.get("robustness", {}).items():
                    if isinstance(rows, list):
                        for step, row in enumerate(rows):
                            writer.add_scalar(f"audit/{tag}/{attack}_accuracy", row["accuracy"], step)
            for name, image in pictures.items():
                writer.add_image(f"audit/{name}", image, 0, dataformats="HWC")
        finally:
            writer.close()

    def to_markdown(self, *, pictures: list[str] | None = None) -> str:
        lines = [f"# Audit: {self.dataset}, {self.split} split ({self.examples} examples)", ""]
        if self.run_dir:
            lines += [f"Run directory: `{self.run_dir}`. {len(self.candidates)} candidate(s), {len(self.baselines)} baseline(s); "
                      f"{self.seconds:.1f} s.", ""]
        lines += [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        lines += ["## Candidates and baselines", "",
                  "| model | kind | accuracy (95 % interval) | macro F1 | weighted F1 | ECE | params | search score |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for m in self.models:
            c = m["classification"]
            lo, hi = c["accuracy_interval"]
            lines.append(f"| {m['name']} | {m['kind']} | {c['accuracy']:.4f} ({lo:.4f}-{hi:.4f}) | {c['averages']['macro']['f1']:.4f} | "
                         f"{c['averages']['weighted']['f1']:.4f} | {m['calibration']['ece']:.4f} | {_num(m.get('params'))} | "
                         f"{_num(m.get('search_score'), '.4f')} |")
        if self.human_level is not None:
            lines.append(f"| human level | declared | {self.human_level:.4f} | | | | | |")
        gaps = self.gaps()
        if gaps and (self.baselines or self.human_level is not None):
            names = list(next(iter(gaps.values())))
            lines += ["", "Accuracy gap of each candidate to each benchmark (positive: the candidate is ahead):", "",
                      "| candidate | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
            lines += [f"| {c} | " + " | ".join(f"{row[n]:+.4f}" for n in names) + " |" for c, row in gaps.items()]
        for m in self.candidates[:1]:
            lines += self._per_class(m) + self._slices(m) + self._fairness(m) + self._errors(m) + self._sensitivity(m) + self._robust()
        lines += self._calibration()
        if pictures:
            lines += ["", "## Pictures", ""] + [f"![{p}]({p}.png)" for p in pictures]
        return "\n".join(lines) + "\n"

    def _per_class(self, m: dict[str, Any]) -> list[str]:
        c = m["classification"]
        lines = ["", f"## Per class: {m['name']}", "", "| class | precision | recall | F1 (95 % interval) | support | |",
                 "|---:|---:|---:|---:|---:|---|"]
        for row in sorted(c["classes"], key=lambda r: r["f1"]):
            lo, hi = row["f1_interval"]
            lines.append(f"| {row['class']} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} ({lo:.3f}-{hi:.3f}) | "
                         f"{row['support']} | {'rare' if row['rare'] else ''} |")
        return lines

    def _slices(self, m: dict[str, Any], rows: int = 12) -> list[str]:
        lines = ["", f"## Slices, worst first: {m['name']}", "", "| slice | value | size | accuracy (95 % interval) | gap to all |",
                 "|---|---|---:|---:|---:|"]
        for s in m["slices"][:rows]:
            lo, hi = s["interval"]
            lines.append(f"| {s['slice']} | {s['value']} | {s['size']} | {s['accuracy']:.3f} ({lo:.3f}-{hi:.3f}) | {s['gap']:+.3f} |")
        return lines

    def _fairness(self, m: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        for name, f in m["fairness"].items():
            lines += ["", f"## Fairness across `{name}`: {m['name']}", ""]
            for setting in f["settings"]:
                metrics = list(setting["overall"])
                lines += [f"{setting['setting']}:", "", "| group | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
                for group, row in setting["by_group"].items():
                    lines.append(f"| {group} | " + " | ".join(f"{row[k]:.3f}" for k in metrics) + " |")
                lines.append("| largest gap | " + " | ".join(f"{setting['difference'][k]:.3f}" for k in metrics) + " |")
                lines.append("| smallest ratio | " + " | ".join(f"{setting['ratio'][k]:.3f}" for k in metrics) + " |")
                lines.append("")
        return lines

    def _errors(self, m: dict[str, Any], rows: int = 10) -> list[str]:
        errors = m.get("errors") or {}
        lines: list[str] = []
        if errors.get("tags"):
            human = self.human_level is not None
            lines += ["", f"## What to work on next: {m['name']}", "",
                      "The share of all errors each tag holds is the most a perfect fix of it can remove.", "",
                      "| tag | value | share of data | share of errors | error rate |" + (" room to human level |" if human else ""),
                      "|---|---|---:|---:|---:|" + ("---:|" if human else "")]
            for r in errors["tags"][:rows]:
                lines.append(f"| {r['tag']} | {r['value']} | {r['share_of_data']:.3f} | {r['share_of_errors']:.3f} | {r['error_rate']:.3f} |"
                             + (f" {r['room_to_human']:+.3f} |" if human else ""))
        auto = errors.get("autocorrelation")
        if auto:
            significant, first = auto["significant_lags"], auto["autocorrelation"][0]
            verdict = ("errors come in runs (lag 1 is significant)" if first > auto["band"] else
                       "the errors look independent at lag 1" + (f" (lags {', '.join(map(str, significant))} cross the band; of 10 lags "
                                                                  "about one does by chance)" if significant else ""))
            lines += ["", f"Errors in stream order: autocorrelation at lag 1 {first:+.3f} (independent errors stay within "
                      f"+-{auto['band']:.3f}): {verdict}."]
        return lines

    def _sensitivity(self, m: dict[str, Any]) -> list[str]:
        s = m.get("sensitivity") or {}
        lines: list[str] = []
        if s.get("partial_dependence"):
            lines += ["", f"## Partial dependence: {m['name']}", "", "Mean predicted probability of the class each feature moves "
                      "most, as the feature sweeps its training range (5th to 95th percentile); the largest effect first.", "",
                      "| feature | class | effect (max - min) | at the lowest value | at the highest value |", "|---:|---:|---:|---:|---:|"]
            for r in s["partial_dependence"]:
                lines.append(f"| {r['feature']} | {r['class']} | {r['effect']:.3f} | {r['partial_dependence'][0]:.3f} | "
                             f"{r['partial_dependence'][-1]:.3f} |")
        if s.get("occlusion"):
            o = s["occlusion"]
            lines += ["", f"Occlusion ({o['size']}-wide patches, stride {o['stride']}): the true class's mean probability is "
                      f"{o['base_probability']:.3f}; masking the patch at {o['most_sensitive']['start']} costs it the most "
                      f"({o['most_sensitive']['drop']:+.3f}; map: occlusion_*.png)."]
        return lines

    def _robust(self) -> list[str]:
        if not self.candidates or not self.candidates[0].get("robustness"):
            return []
        lines = ["", "## Robustness (accuracy against strength, in the network's input units)", ""]
        for attack in ("noise", "fgsm", "pgd"):
            if attack not in self.candidates[0]["robustness"]:
                continue
            strengths = [r["strength"] for r in self.candidates[0]["robustness"][attack]]
            lines += [f"| {attack} | " + " | ".join(f"{s:g}" for s in strengths) + " |", "|---|" + "---:|" * len(strengths)]
            for c in self.candidates:
                lines.append(f"| {c['name']} | " + " | ".join(f"{r['accuracy']:.3f}" for r in c["robustness"][attack]) + " |")
            lines.append("")
        for c in self.candidates:
            r = c["robustness"].get("random_inputs")
            if r:
                lines.append(f"- {c['name']} on {r['count']:,} random inputs: {r['nan_outputs']} NaN outputs, {r['exceptions']} "
                             f"exceptions, {r['confident_share']:.1%} predicted with confidence above {r['threshold']:g}"
                             + (f", {r['most_predicted']['share']:.0%} as class {r['most_predicted']['class']}" if r.get("most_predicted") else ""))
        return lines

    def _calibration(self) -> list[str]:
        return ["", "## Calibration", "", "Expected calibration error (15 equal-width confidence bins): "
                + ", ".join(f"{m['name']} {m['calibration']['ece']:.4f}" for m in self.models) + "."]


def _confusion(ax: Any, m: dict[str, Any]) -> None:
    matrix = np.array(m["classification"]["confusion"], dtype=float)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=7, color="white" if shown[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")


def _reliability(ax: Any, models: list[dict[str, Any]]) -> None:
    ax.plot([0, 1], [0, 1], ":", c="#888888", label="calibrated")
    for m in models:
        bins = [b for b in m["calibration"]["bins"] if b["count"]]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "-o", ms=3,
                label=f"{m['name']} (ECE {m['calibration']['ece']:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=7)


def _robustness(ax: Any, candidates: list[dict[str, Any]], attack: str) -> None:
    for c in candidates:
        rows = c["robustness"][attack]
        ax.plot([r["strength"] for r in rows], [r["accuracy"] for r in rows], "-o", ms=3, label=c["name"])
    ax.set_xlabel("noise level" if attack == "noise" else "epsilon")
    ax.set_ylabel("accuracy")
    ax.legend(loc="best", fontsize=8)


def _occlusion(ax: Any, o: dict[str, Any]) -> None:
    drop = np.array(o["drop"], dtype=float)
    shown = drop if drop.ndim == 2 else drop[None, :]
    image = ax.imshow(shown, cmap="magma", aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    ax.set_xlabel(f"patch start / {o['stride']}")
    ax.set_ylabel("" if drop.ndim == 1 else f"patch start / {o['stride']}")


def _partial(ax: Any, rows: list[dict[str, Any]]) -> None:
    for r in rows[:4]:
        for curve in r["ice"]:
            ax.plot(r["grid"], curve, c="#cccccc", lw=0.6)
        ax.plot(r["grid"], r["partial_dependence"], "-o", ms=3, label=f"feature {r['feature']}")
    ax.set_xlabel("feature value (network input units)")
    ax.set_ylabel("probability of the class it moves most")
    ax.legend(loc="best", fontsize=8)


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")  # "trial #3" -> "trial_3"


def _num(value: Any, fmt: str = ",") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, fmt)
