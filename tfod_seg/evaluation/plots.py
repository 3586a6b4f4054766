"""Matplotlib plots (Agg canvas, no pyplot global state): PR curves and confusion matrix."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from tfod_seg.io import atomic_path


def _save(fig, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def plot_pr_curves(curves: Dict[object, Dict[str, np.ndarray]], names: Dict[int, str], title: str, path: str) -> None:
    """One line per class plus a thick black "all classes" mean; legend gives each class's AP
    at this IoU (area under the interpolated curve)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    for cid, c in curves.items():
        if cid == "all" or not len(c["recall"]):
            continue
        ap = float(np.sum(c["precision"])) / 101.0
        ax.plot(c["recall"], c["precision"], linewidth=1.3, label=f"{names.get(cid, cid)} (AP {ap:.3f})")
    if "all" in curves and len(curves["all"]["recall"]):
        ap = float(np.sum(curves["all"]["precision"])) / 101.0
        ax.plot(curves["all"]["recall"], curves["all"]["precision"], color="black", linewidth=2.6,
                label=f"all classes (AP {ap:.3f})")
    if not curves:
        ax.text(0.5, 0.5, "no ground truth", ha="center", va="center")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


def plot_confusion(cm: np.ndarray, labels: Sequence[str], title: str, path: str) -> None:
    """Counts with the true class on rows and the predicted class on columns."""
    from matplotlib.figure import Figure

    n = len(labels)
    size = max(4.0, 0.55 * n + 2.5)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.log1p(cm), cmap="Blues")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("predicted (background = missed)")
    ax.set_ylabel("true (background = spurious detection)")
    ax.set_title(title)
    vmax = np.log1p(cm).max() if cm.size else 0
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if np.log1p(cm[i, j]) > 0.6 * vmax else "black")
    _save(fig, path)
