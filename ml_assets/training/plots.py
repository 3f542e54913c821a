"""Pictures of an evaluation (ROC, precision-recall, calibration) as PNG files.

Files rather than figures, so an asset can attach their paths and a report can link them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def pyplot() -> ModuleType:
    """matplotlib's pyplot on the Agg backend, imported at the first picture: importing it
    with the code location would cost every run process and step subprocess its load time."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def plot_roc_pr(
    y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path, bayes: np.ndarray | None = None
) -> Path:
    """ROC and precision-recall curves of each scored model (and of the true probability)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = pyplot()
    curves = dict(scores)
    if bayes is not None:
        curves["bayes (true probability)"] = bayes
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        roc_ax.plot(fpr, tpr, label=name, linestyle=":" if name.startswith("bayes") else "-")
        precision, recall, _ = precision_recall_curve(y, p)
        pr_ax.plot(
            recall, precision, label=name, linestyle=":" if name.startswith("bayes") else "-"
        )
    roc_ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.axhline(float(np.mean(y)), color="grey", linewidth=0.8)
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_calibration(
    y: np.ndarray, scores: Mapping[str, np.ndarray], path: Path, bins: int = 10
) -> Path:
    """Observed fraud rate against mean score per quantile bin (log axes: fraud is rare)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    low = 1.0
    for name, p in scores.items():
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
        index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(index, minlength=len(edges) - 1)
        used = counts > 0
        mean_p = np.bincount(index, weights=p)[used] / counts[used]
        rate = np.bincount(index, weights=y)[used] / counts[used]
        ax.plot(mean_p, np.maximum(rate, 1e-5), marker="o", label=name)
        low = min(low, float(mean_p.min()))
    low = max(low / 2, 1e-5)
    ax.plot([low, 1], [low, 1], color="grey", linewidth=0.8, label="perfect")
    ax.set(xscale="log", yscale="log", xlabel="mean predicted probability",
           ylabel="observed fraud rate", title="Calibration")  # fmt: skip
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def write_evaluation_plots(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    directory: Path,
    bayes: np.ndarray | None = None,
) -> dict[str, Path]:
    """Both pictures into `directory`; returns {'roc_pr': path, 'calibration': path}."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "roc_pr": plot_roc_pr(y, scores, directory / "roc_pr.png", bayes),
        "calibration": plot_calibration(y, scores, directory / "calibration.png"),
    }


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path
