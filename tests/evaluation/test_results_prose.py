"""The data-scarcity numbers in README.md and BENCHMARKS.md are the committed results, not hand-copied prose."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from umedpt_hf.evaluation.report import check_target, markdown_table, read_json

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def load_generator():
    spec = importlib.util.spec_from_file_location("results_prose", ROOT / "scripts" / "results_prose.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prose = load_generator()


def section(text: str, heading: str) -> str:
    """The text from `heading` to the next second-level heading."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize(("file", "name"), [(f, n) for f, names in prose.BLOCKS.items() for n in names])
def test_every_generated_block_matches_the_committed_results(file, name):
    assert prose.block_content((ROOT / file).read_text(), name) == prose.render(ROOT)[name], (
        f"{file}: block {name} is out of date; run `python scripts/results_prose.py`"
    )


def test_the_benchmarks_table_is_exactly_markdown_table_of_the_json():
    results = read_json(RESULTS / "data_scarcity.json")
    table = prose.block_content((ROOT / "BENCHMARKS.md").read_text(), "data-scarcity-table")
    assert table == markdown_table(results)
    assert (RESULTS / "data_scarcity.png").is_file()


def test_the_committed_target_file_is_the_target_check_of_the_results():
    results = read_json(RESULTS / "data_scarcity.json")
    committed = json.loads((RESULTS / "data_scarcity_target.json").read_text())
    assert committed == [check_target(result, "umedpt", "random-init") for result in results]


@pytest.mark.parametrize(
    ("file", "heading"),
    [("README.md", "## Evaluate: frozen features"), ("BENCHMARKS.md", "## Data scarcity: the main job")],
)
def test_no_result_number_is_written_by_hand(file, heading):
    text = section((ROOT / file).read_text(), heading)
    for name in prose.BLOCKS[file]:
        text = text.replace(prose.block_content(text, name), "")
    handwritten = re.findall(r"\b\d+\.\d{2,}\b", text)  # scores have 3 decimals; sizes such as 1.4 M have one
    assert not handwritten, f"{file}: numbers outside the generated blocks: {handwritten}"


def test_generator_rewrites_stale_blocks_and_check_reports_them(tmp_path):
    for name in ("README.md", "BENCHMARKS.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    results = read_json(RESULTS / "data_scarcity.json")
    results[0]["encoders"]["umedpt"]["1.0"] = [0.5]  # a new run's numbers
    (tmp_path / "benchmarks" / "results" / "data_scarcity.json").write_text(json.dumps(results))
    run = {
        "seed": 0, "config": "examples/configs/umedpt_mini.yaml", "overrides": [],
        "pretraining": {"preset": "tiny", "max_steps": 700, "tasks": 7},
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 24, "gpu": None},
        "versions": {"torch": "2.13.0"}, "durations_s": {"build": 12, "pretrain": 475, "total": 487},
    }  # fmt: skip
    (tmp_path / "benchmarks" / "results" / "data_scarcity_run.json").write_text(json.dumps(run))
    assert prose.main(["--check", "--root", str(tmp_path)]) == 1
    assert prose.main(["--root", str(tmp_path)]) == 0
    assert prose.main(["--check", "--root", str(tmp_path)]) == 0
    benchmarks = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| 0.500 ± 0.000 |" in prose.block_content(benchmarks, "data-scarcity-table")
    assert "data build 12 s, pretraining 7 min 55 s; 8 min 7 s in all" in benchmarks
    assert "seed 0, 8 min 7 s on 2 CPU cores" in (tmp_path / "README.md").read_text()
    with pytest.raises(ValueError, match="no block"):
        prose.replace_block("no markers here", "data-scarcity-table", "x")
