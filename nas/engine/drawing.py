"""Pictures of architectures (a :class:`~nas.core.diagram.Diagram`) as RGB arrays, for TensorBoard.

matplotlib's object API with its Agg canvas: no pyplot, no global backend, no window; imported
only when a picture is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.diagram import Diagram

_DPI = 80
_BOX = {"boxstyle": "round,pad=0.35", "facecolor": "#e8f0fb", "edgecolor": "#35608f"}
_EDGE_LABEL = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}


def render(diagram: Diagram, title: str = "") -> np.ndarray:
    """The diagram drawn as an ``(H, W, 3)`` uint8 image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(diagram.nodes)
    size = (7.0, 1.0 + 0.55 * n) if diagram.layout == "chain" else (1.8 + 1.9 * max(1, n - 1), 4.2)
    fig = Figure(figsize=size, dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.08, 0.96, 0.82))
    ax.set_axis_off()
    (_chain if diagram.layout == "chain" else _dag)(ax, diagram)
    if title:
        fig.suptitle(title, fontsize=11)
    if diagram.caption:
        fig.text(0.5, 0.02, diagram.caption, ha="center", va="bottom", fontsize=8, family="monospace", wrap=True)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    fig.clear()
    return image


def _chain(ax: Any, diagram: Diagram) -> None:
    n = len(diagram.nodes)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-n + 0.5, 0.5)
    for i, label in enumerate(diagram.nodes):
        ax.text(0, -i, label, ha="center", va="center", fontsize=9, bbox=_BOX)
    for source, target, label in diagram.edges:
        ax.annotate("", xy=(0, -target + 0.25), xytext=(0, -source - 0.25),
                    arrowprops={"arrowstyle": "->", "color": "#555555", "connectionstyle": f"arc3,rad={0.0 if target == source + 1 else 0.5}"})
        if label:
            ax.text(0.05, -(source + target) / 2, label, fontsize=8, va="center")


def _dag(ax: Any, diagram: Diagram) -> None:
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    n = len(diagram.nodes)
    longest = max((t - s for s, t, _ in diagram.edges), default=1)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(-0.25 * longest - 0.35, 0.25 * longest + 0.35)
    side = 1
    for source, target, label in diagram.edges:
        span = target - source
        height = 0.0 if span == 1 else 0.5 * span * side
        if span != 1:
            side = -side  # long edges alternate above and below the line of nodes
        p0, c, p2 = np.array([source, 0.0]), np.array([(source + target) / 2, height]), np.array([target, 0.0])
        ends = 0.16 / max(1, span)  # start and end the curve outside the node circles
        points = [_bezier(p0, c, p2, t) for t in (ends, 1 - ends)]
        control = points[0] + (1 - 2 * ends) / 2 * _bezier_slope(p0, c, p2, ends)
        path = Path([points[0], control, points[1]], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=12, color="#35608f", linewidth=1.2))
        mid = _bezier(p0, c, p2, 0.5)
        ax.text(mid[0], mid[1], label, ha="center", va="center", fontsize=8, bbox=_EDGE_LABEL)
    for i, label in enumerate(diagram.nodes):
        ax.text(i, 0, label, ha="center", va="center", fontsize=9, bbox={**_BOX, "boxstyle": "circle,pad=0.3"})


def _bezier(p0: np.ndarray, c: np.ndarray, p2: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t ** 2 * p2


def _bezier_slope(p0: np.ndarray, c: np.ndarray, p2: np.ndarray, t: float) -> np.ndarray:
    return 2 * (1 - t) * (c - p0) + 2 * t * (p2 - c)


def render_front(points: np.ndarray, on_front: np.ndarray, labels: tuple[str, str], title: str = "") -> np.ndarray:
    """A scatter of every trial's two objective values (``points``, in their own units), the front's members
    (``on_front``, a boolean mask) joined and highlighted, as an ``(H, W, 3)`` uint8 image."""
    def draw(ax: Any) -> None:
        others = points[~on_front]
        ax.scatter(others[:, 0], others[:, 1], s=14, c="#9aa7b8", label="trials")
        members = points[on_front]
        members = members[np.argsort(members[:, 0], kind="stable")]
        ax.plot(members[:, 0], members[:, 1], "-o", c="#c0392b", ms=5, lw=1.2, label=f"Pareto front ({len(members)})")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.legend(loc="best", fontsize=8)

    return plot_image(draw, title=title)


def plot_image(draw: Any, size: tuple[float, float] = (6.4, 4.6), title: str = "") -> np.ndarray:
    """``draw(ax)`` on one axes of a new figure, as an ``(H, W, 3)`` uint8 image (the audit's pictures)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    draw(ax)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    fig.clear()
    return image
