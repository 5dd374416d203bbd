"""BENCHMARKS.md's tables are the committed results: each figure is checked against the JSON the script wrote.

(The data-scarcity section is generated and checked by tests/evaluation/test_results_prose.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TEXT = (ROOT / "BENCHMARKS.md").read_text()


def section(title: str) -> str:
    start = TEXT.index(f"## {title}")
    following = TEXT.find("\n## ", start + 1)
    return TEXT[start : following if following != -1 else None]


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    rows = [[cell.strip().strip("*") for cell in line.strip().strip("|").split("|")] for line in text.splitlines()]
    return [row for row in rows if row and row[0].startswith(first_cell)]


def test_loop_overhead_table_is_the_json():
    result = json.loads((RESULTS / "loop_overhead.json").read_text())
    rows = table_rows(section("Loop overhead"), "cpu-2e")
    assert [row[2].split(" ")[0] for row in rows] == ["fp32", "bf16", "torch.compile"]
    for row, variant in zip(rows, ("fp32", "bf16", "compile")):
        measured = result["variants"][variant]
        assert row[3] == str(measured["timed_steps"])
        assert float(row[4]) == pytest.approx(measured["bare_images_per_second"], abs=0.05)
        assert float(row[5]) == pytest.approx(measured["trainer_images_per_second"], abs=0.05)
        assert float(row[6]) == pytest.approx(measured["ratio"], abs=5e-4)
    assert result["ratio"] >= 0.97  # the loop's overhead target
    reads = result["host_reads"]
    assert reads["loop_per_round"] == 1 and set(reads["model_per_forward"].values()) == {1}


def test_input_pipeline_table_is_the_json():
    result = json.loads((RESULTS / "input_pipeline.json").read_text())
    measured = {(r["type"], r["size"], r["dtype"]): r["loop_images_per_s"] for r in result["results"]}
    text = section("Input pipeline")
    header = table_rows(text, "images/s per worker")[0][1:]
    columns = [(int(re.match(r"(\d+)", cell).group(1)), cell.split()[-1]) for cell in header]
    for task in ("classification", "multilabel", "segmentation", "detection"):
        (row,) = [r for r in table_rows(text, task) if len(r) == len(header) + 1]  # not the milliseconds table
        for cell, (size, dtype) in zip(row[1:], columns):
            assert int(cell) == round(measured[(task, size, dtype)]), (task, size, dtype)


def test_memory_table_is_the_json():
    result = json.loads((RESULTS / "memory_vs_tasks.json").read_text())
    rows = table_rows(section("Peak memory"), "cpu-2e")
    assert [row[1].split(" ")[0] for row in rows] == ["per_task", "joint"]
    for row in rows:
        mode = row[1].split(" ")[0]
        assert [float(cell) for cell in row[2:7]] == [result[mode][t] for t in ("1", "2", "4", "8", "16")]
        assert float(row[7].split(" ")[0].strip("*")) == pytest.approx(result[f"{mode}_ratio_last_first"], abs=0.05)


def test_readme_states_the_measured_make_test_run():
    run = json.loads((RESULTS / "make_test_run.json").read_text())
    readme = " ".join((ROOT / "README.md").read_text().split())
    stated = f"`make test` took {run['total_seconds']} s, the suite itself {run['pytest_seconds']} s"
    assert stated in readme and f"({run['passed']} passed, {run['skipped']} skipped" in readme
