"""Data-scarcity results for people: the Markdown and printed tables, and the data-efficiency target check.

The schema and JSON file are `result_schema` (re-exported here), the plot is `plot.plot_results` (re-exported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .plot import plot_results
from .result_schema import Result, as_result_list, read_json, role_label, validate_result, write_json

__all__ = [
    "Result",
    "as_result_list",
    "check_target",
    "format_target",
    "markdown_table",
    "plot_results",
    "print_table",
    "read_json",
    "summary_rows",
    "validate_result",
    "write_json",
]


def _examples_cell(counts: Sequence[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low}" if low == high else f"{low}–{high}"


def summary_rows(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table: task, (role), metric, encoder, then mean ± std over seeds per fraction, (chance).

    The role and chance columns appear when a result has them; a result with `train_examples` gets a first row
    "labelled examples" that gives the training examples behind each fraction (a range when seeds differ).
    """
    results_list = as_result_list(results)
    keys = sorted({k for r in results_list for c in r["encoders"].values() for k in c}, key=float)
    with_role = any("role" in r for r in results_list)
    with_chance = any(r.get("chance") is not None for r in results_list)
    header = ["task", *(["role"] if with_role else []), "metric", "encoder", *[f"{100 * float(k):g} %" for k in keys]]
    header += ["chance"] if with_chance else []
    rows = []
    for r in results_list:
        first = [r["task"], *([role_label(r) or "—"] if with_role else []), r["metric"]]
        chance = [f"{r['chance']:.3f}" if r.get("chance") is not None else "—"] if with_chance else []
        if "train_examples" in r:
            counts = r["train_examples"]
            cells = [_examples_cell(counts[k]) if k in counts else "—" for k in keys]
            rows.append([*first, "labelled examples", *cells, *([""] if with_chance else [])])
        for name, curve in r["encoders"].items():
            cells = []
            for k in keys:
                s = np.asarray(curve.get(k, []), dtype=float)
                cells.append(f"{s.mean():.3f} ± {s.std():.3f}" if s.size else "—")
            rows.append([*first, name, *cells, *chance])
    return header, rows


def markdown_table(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """The table of `summary_rows` in Markdown (what README, BENCHMARKS and the model card show)."""
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
        table.add_column(h, justify="left" if h in ("task", "role", "metric", "encoder") else "right")
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
        **({"role": result["role"]} if "role" in result else {}),
        "metric": result["metric"],
        f"{encoder}@{low}": mean(encoder, low),
        f"{baseline}@{full}": mean(baseline, full),
        f"{encoder}@{mid}": mean(encoder, mid),
        f"{encoder}@{full}": own_full,
        "low_beats_baseline_full": mean(encoder, low) >= mean(baseline, full),
        "mid_keeps_95_percent": mean(encoder, mid) >= keep * own_full,
    }


def pair_text(first: float, second: float) -> tuple[str, str]:
    """Two scores with 3 decimals, or as many more (up to 6) as it takes to show that they differ."""
    for decimals in range(3, 7):
        a, b = f"{first:.{decimals}f}", f"{second:.{decimals}f}"
        if a != b or first == second:
            break
    return a, b


def format_target(check: Mapping[str, Any], encoder: str = "umedpt", baseline: str = "random-init") -> str:
    """One line per task for a `check_target` result."""
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    low, base = pair_text(check[f"{encoder}@0.01"], check[f"{baseline}@1.0"])
    mid, keep = pair_text(check[f"{encoder}@0.1"], 0.95 * check[f"{encoder}@1.0"])
    return (
        f"{check['task']} ({check['metric']}): {encoder}@1% {low} vs {baseline}@100% {base} -> "
        f"{verdict(check['low_beats_baseline_full'])}; {encoder}@10% {mid} vs 95% of {encoder}@100% {keep} -> "
        f"{verdict(check['mid_keeps_95_percent'])}"
    )
