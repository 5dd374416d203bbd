"""The data-scarcity plot: score against the fraction of training labels, one panel per task."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .result_schema import as_result_list, role_label


def curve_statistics(curve: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractions (sorted), mean and standard deviation (population, ddof 0, as in the tables) over seeds."""
    keys = sorted(curve, key=float)
    scores = [np.asarray(curve[key], dtype=float) for key in keys]
    return (
        np.array([float(key) for key in keys]),
        np.array([s.mean() for s in scores]),
        np.array([s.std() for s in scores]),
    )


def _panel_title(result: Mapping[str, Any]) -> str:
    role = {"held out": "held out of pretraining", "in-domain": "in-domain (pretraining task)"}.get(role_label(result))
    return f"{result['task']}\n{role}" if role else result["task"]


def plot_results(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None):
    """PNG: one panel per task, score vs label fraction (log x), one line per encoder (mean over seeds) with a band
    of ± one standard deviation over seeds; the panel title says whether the task was held out of pretraining or
    is in-domain, and a dashed line marks the chance level when the result has one (see `evaluation.chance`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    results_list = as_result_list(results)
    count = len(results_list)
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows + 0.5), squeeze=False)
    seed_counts = set()
    for ax, result in zip(axes.flat, results_list):
        for name, curve in result["encoders"].items():
            x, mean, std = curve_statistics(curve)
            seed_counts.update(len(scores) for scores in curve.values())
            (line,) = ax.plot(x, mean, marker="o", label=name)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
        if result.get("chance") is not None:
            ax.axhline(result["chance"], color="0.4", linestyle="--", linewidth=1, label="chance (stratified random)")
        ax.set_xscale("log")
        fractions = sorted({float(key) for curve in result["encoders"].values() for key in curve})
        ax.xaxis.set_major_locator(FixedLocator(fractions))  # a tick at each measured fraction
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g} %"))
        ax.set_xlabel("fraction of training labels")
        ax.set_ylabel(f"{result['metric']} (test)")
        ax.set_title(_panel_title(result), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    seeds = "/".join(str(n) for n in sorted(seed_counts))
    note = f"line: mean over {seeds} seeds; band: ± 1 standard deviation over seeds"
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
