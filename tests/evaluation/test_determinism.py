"""One seed, one result: the same model, data and seed give byte-identical evaluation files, for every method,
with a fresh or a warm feature cache, and with 1 or 2 torch threads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from umedpt_hf.cli.main import main

COMPARED_FILES = ("data_scarcity.json", "data_scarcity.md", "target.json", "data_scarcity.png")
SCARCITY = ("--fractions", "0.01", "0.1", "1.0", "--seeds", "2")
# training the encoder on the images is the slow path: one run (10 % of the labels, one seed, no comparison)
METHODS = {
    "linear": [*SCARCITY],
    "knn": ["--fractions", "0.1", "1.0", "--compare", "--method", "knn"],
    "finetune-head": ["--fractions", "0.1", "1.0", "--seeds", "1", "--compare", "--method", "finetune"],
    "finetune-encoder": ["--fractions", "0.1", "--seeds", "1", "--compare", "--method", "finetune", "--train-encoder"],
}


def evaluate(model: Path, data: Path, out: Path, *extra: str, threads: int | None = None) -> dict[str, bytes]:
    """`umedpt evaluate` on the tiny database; the bytes of every file it wrote that a rerun must reproduce."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        code = main(["evaluate", "--model", str(model), "--data", str(data), "--out", str(out), "--quiet", *extra])
    finally:
        torch.set_num_threads(before)
    assert code == 0
    return {name: (out / name).read_bytes() for name in COMPARED_FILES if (out / name).exists()}


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory, tiny_checkpoint, tiny_database) -> tuple[Path, dict[str, bytes]]:
    """The linear protocol once, with one torch thread: its out folder and files."""
    out = tmp_path_factory.mktemp("linear") / "out"
    return out, evaluate(tiny_checkpoint, tiny_database, out, *METHODS["linear"], threads=1)


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_files(tmp_path, tiny_checkpoint, tiny_database, linear_run, method):
    if method == "linear":
        first = linear_run[1]
    else:
        first = evaluate(tiny_checkpoint, tiny_database, tmp_path / "a", *METHODS[method], threads=1)
    second = evaluate(tiny_checkpoint, tiny_database, tmp_path / "b", *METHODS[method], threads=2)
    expected = set(COMPARED_FILES) - ({"target.json"} if "--compare" in METHODS[method] else set())
    assert set(first) == expected
    assert first == second  # byte for byte, although the second run had two torch threads
    (result,) = json.loads(first["data_scarcity.json"])
    assert result["encoders"]["umedpt"] and result["role"] == "held_out"


def test_warm_feature_cache_gives_the_same_files(tiny_checkpoint, tiny_database, linear_run):
    out, cold = linear_run
    assert list((out / "feature_cache").glob("*.npz"))
    assert evaluate(tiny_checkpoint, tiny_database, out, *METHODS["linear"]) == cold  # a rerun reads the cache


def test_another_seed_draws_other_subsets(tmp_path, tiny_checkpoint, tiny_database, linear_run):
    (seed_0,) = json.loads(linear_run[1]["data_scarcity.json"])
    (seed_5,) = json.loads(
        evaluate(tiny_checkpoint, tiny_database, tmp_path, *METHODS["linear"], "--seed", "5")["data_scarcity.json"]
    )
    assert seed_0["train_examples"] == seed_5["train_examples"]  # stratified: the same counts per class
    assert seed_0["encoders"]["random-init"] != seed_5["encoders"]["random-init"]  # other weights, other picks


def test_few_shot_is_reproducible(tiny_checkpoint):
    from evaluation_test_utils import IMAGE_SIDE, bar_dataset

    from umedpt_hf.evaluation import extract_features, few_shot_evaluate, load_encoder_model
    from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

    processor = UMedPTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})
    model = load_encoder_model(tiny_checkpoint)
    train = extract_features(model, bar_dataset(30, 0), processor=processor, progress=False)
    test = extract_features(model, bar_dataset(15, 1), processor=processor, progress=False)

    def run(method: str) -> str:
        scores = few_shot_evaluate(
            train.features, train.labels, test.features, test.labels, shots=(1, 3), seeds=2, method=method
        )
        return json.dumps(scores)

    for method in ("linear", "knn"):
        assert run(method) == run(method)
