"""The loss-and-metric curves of a run as one PNG (`<output_dir>/curves.png`), drawn from its JSON-lines log."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

CURVES_FILE = "curves.png"


def _series(records: Sequence[dict[str, Any]], prefix: str) -> dict[str, tuple[list[int], list[float]]]:
    """`prefix<name>` -> (steps, values), skipping nulls."""
    found: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix) and isinstance(value, (int, float)) and not isinstance(value, bool):
                steps, values = found.setdefault(key[len(prefix) :], ([], []))
                steps.append(int(record["step"]))
                values.append(float(value))
    return found


def plot_curves(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Three panels: training loss per task, validation loss per task, validation metric per task."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [
        ("training loss (normalised, ~1 at chance)", _series(records, "loss/")),
        ("validation loss", _series(records, "eval/loss/")),
        ("validation metric", {}),
    ]
    for key, series in _series(records, "eval/").items():
        metric, _, task = key.partition("/")
        if metric != "loss" and task:
            panels[2][1][f"{task} ({metric})"] = series
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for axis, (title, series) in zip(axes, panels):
        for label, (steps, values) in sorted(series.items()):
            axis.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=label)
        axis.set_title(title)
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
        if series:
            axis.legend(fontsize=7)
        else:
            axis.text(0.5, 0.5, "no validation (eval_steps = 0)", ha="center", va="center", transform=axis.transAxes)
    figure.tight_layout()
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
    return path
