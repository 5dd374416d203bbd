"""Data-scarcity results: the JSON schema, the score-vs-fraction plot, the printed table and the target check.

One result is `{"task": str, "metric": str, "encoders": {encoder name: {fraction key: [score per seed]}}}` with
fraction keys decimal strings in (0, 1] ("0.01", ..., "1.0"); a file holds one result or a list of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .sampling import check_fraction

Result = dict[str, Any]


def validate_result(result: Mapping[str, Any]) -> None:
    """Raise ValueError unless `result` follows the schema exactly."""
    if not isinstance(result, Mapping):
        raise ValueError(f"a data-scarcity result must be a JSON object, got {type(result).__name__}")
    if set(result) != {"task", "metric", "encoders"}:
        raise ValueError(f"a data-scarcity result has exactly the keys task, metric, encoders; got {sorted(result)}")
    if not isinstance(result["task"], str) or not isinstance(result["metric"], str):
        raise ValueError("'task' and 'metric' must be strings")
    encoders = result["encoders"]
    if not isinstance(encoders, Mapping) or not encoders:
        raise ValueError("'encoders' must be a non-empty object {encoder name: {fraction: [scores]}}")
    for name, curve in encoders.items():
        if not isinstance(curve, Mapping) or not curve:
            raise ValueError(f"encoder {name!r}: expected a non-empty object {{fraction: [scores per seed]}}")
        for key, scores in curve.items():
            if not isinstance(key, str):
                raise ValueError(f"encoder {name!r}: fraction keys must be strings, got {key!r}")
            check_fraction(key)
            if not isinstance(scores, list) or not scores or not all(isinstance(s, (int, float)) for s in scores):
                raise ValueError(f"encoder {name!r}, fraction {key}: expected a non-empty list of scores per seed")


def as_result_list(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Result]:
    results = [results] if isinstance(results, Mapping) else list(results)
    for r in results:
        validate_result(r)
    return [dict(r) for r in results]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def write_json(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Validate and write one result (an object) or several (a list). NaN has no JSON form: a NaN score raises."""
    results_list = as_result_list(results)
    for r in results_list:
        for name, curve in r["encoders"].items():
            for key, scores in curve.items():
                if any(_finite(s) is None for s in scores):
                    raise ValueError(f"{r['task']}/{name}/{key}: a score is NaN or infinite; cannot write valid JSON")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = results_list[0] if isinstance(results, Mapping) else results_list
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def read_json(path: str | Path) -> list[Result]:
    """Read a results file (one object or a list) as a validated list."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    return as_result_list(payload)


def _sorted_curve(curve: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fractions, mean, min and max over seeds, sorted by fraction."""
    keys = sorted(curve, key=float)
    scores = [np.asarray(curve[k], dtype=float) for k in keys]
    return (
        np.array([float(k) for k in keys]),
        np.array([s.mean() for s in scores]),
        np.array([s.min() for s in scores]),
        np.array([s.max() for s in scores]),
    )


def plot_results(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None):
    """PNG: one panel per task, score vs label fraction (log x), one line per encoder (mean over seeds), the range
    over seeds shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    results_list = as_result_list(results)
    n = len(results_list)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax, result in zip(axes.flat, results_list):
        for name, curve in result["encoders"].items():
            x, mean, low, high = _sorted_curve(curve)
            (line,) = ax.plot(x, mean, marker="o", label=name)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g} %"))
        ax.set_xlabel("fraction of training labels")
        ax.set_ylabel(result["metric"])
        ax.set_title(result["task"])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_rows(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table: task, metric, encoder, then mean ± std over seeds per fraction."""
    results_list = as_result_list(results)
    keys = sorted({k for r in results_list for c in r["encoders"].values() for k in c}, key=float)
    header = ["task", "metric", "encoder", *[f"{100 * float(k):g} %" for k in keys]]
    rows = []
    for r in results_list:
        for name, curve in r["encoders"].items():
            cells = []
            for k in keys:
                s = np.asarray(curve.get(k, []), dtype=float)
                cells.append(f"{s.mean():.3f} ± {s.std():.3f}" if s.size else "—")
            rows.append([r["task"], r["metric"], name, *cells])
    return header, rows


def markdown_table(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    header, rows = summary_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def print_table(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], title: str = "data scarcity") -> None:
    """Print the table with rich when it is installed, as plain text otherwise."""
    header, rows = summary_rows(results)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        return
    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="left" if h in ("task", "metric", "encoder") else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped or logged: do not squeeze the table into 80 columns
        console = Console(width=max(120, 16 * len(header)))
    console.print(table)


def check_target(
    result: Mapping[str, Any],
    encoder: str,
    baseline: str,
    low: str = "0.01",
    mid: str = "0.1",
    full: str = "1.0",
    keep: float = 0.95,
) -> dict[str, Any]:
    """The data-efficiency target on one task, from means over seeds:
    (a) `encoder` at `low` labels >= `baseline` at `full`;
    (b) `encoder` at `mid` >= `keep` x its own score at `full`."""
    validate_result(result)
    curves = result["encoders"]
    for name in (encoder, baseline):
        if name not in curves:
            raise ValueError(f"encoder {name!r} not in the result for task {result['task']!r}: {sorted(curves)}")
    for name, key in ((encoder, low), (encoder, mid), (encoder, full), (baseline, full)):
        if key not in curves[name]:
            raise ValueError(f"{result['task']}/{name}: no scores at fraction {key}")
    mean = lambda name, key: float(np.mean(curves[name][key]))  # noqa: E731
    own_full = mean(encoder, full)
    return {
        "task": result["task"],
        "metric": result["metric"],
        f"{encoder}@{low}": mean(encoder, low),
        f"{baseline}@{full}": mean(baseline, full),
        f"{encoder}@{mid}": mean(encoder, mid),
        f"{encoder}@{full}": own_full,
        "low_beats_baseline_full": mean(encoder, low) >= mean(baseline, full),
        "mid_keeps_95_percent": mean(encoder, mid) >= keep * own_full,
    }


def format_target(check: Mapping[str, Any], encoder: str = "umedpt", baseline: str = "random-init") -> str:
    """One line per task for a `check_target` result."""
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    return (
        f"{check['task']} ({check['metric']}): {encoder}@1% {check[f'{encoder}@0.01']:.3f} vs {baseline}@100% "
        f"{check[f'{baseline}@1.0']:.3f} -> {verdict(check['low_beats_baseline_full'])}; {encoder}@10% "
        f"{check[f'{encoder}@0.1']:.3f} vs 95% of {encoder}@100% {0.95 * check[f'{encoder}@1.0']:.3f} -> "
        f"{verdict(check['mid_keeps_95_percent'])}"
    )
