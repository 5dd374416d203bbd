"""Bad inputs of the evaluation (`umedpt evaluate` and `umedpt_hf.evaluation`): one clear error each, nothing
written outside the case's out/ folder (see `reliability_cases.py`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from reliability_cases import Case, assert_cli_error, case_id, run_case

ASSETS: dict[str, Path] = {}  # a tiny checkpoint and task database, built once for the module
LABELS = ["left", "right", "none"]
SPEC = {"type": "classification", "labels": LABELS, "modality": "xray"}


def blob_splits(train: int = 12, test: int = 9):
    """Grey 16 px images whose bright blob sits left, right or nowhere (the class)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

    def split(count: int, seed: int) -> Dataset:
        rng = np.random.default_rng(seed)
        images, labels = [], [i % 3 for i in range(count)]
        for label in labels:
            image = rng.integers(0, 60, (16, 16), dtype=np.uint8)
            if label < 2:
                image[6:10, 2 + 10 * label : 6 + 10 * label] = 250
            images.append(image)
        features = Features({"image": Image(), "label": ClassLabel(names=LABELS)})
        return Dataset.from_dict({"image": images, "label": labels}, features=features)

    return DatasetDict({"train": split(train, 0), "validation": split(6, 1), "test": split(test, 2)})


def write_database(root: Path, splits) -> Path:
    splits.save_to_disk(str(root / "blobs"))
    (root / "tasks.json").write_text(json.dumps({"tasks": [{"name": "blobs", **SPEC, "path": "blobs"}]}))
    return root


@pytest.fixture(scope="module", autouse=True)
def assets(tmp_path_factory):
    import torch

    from umedpt_hf import UMedPTForMultiTask, UMedPTImageProcessor, tiny_config

    root = tmp_path_factory.mktemp("evaluation_assets")
    torch.manual_seed(0)
    config = tiny_config(tasks={"pretrain": {"type": "classification", "labels": ["a", "b"], "modality": "xray"}})
    UMedPTForMultiTask(config).save_pretrained(root / "model")
    UMedPTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "model")
    ASSETS.update(model=root / "model", data=write_database(root / "data", blob_splits()))
    yield
    ASSETS.clear()


def copy_asset(name: str):
    """prepare: a copy of the tiny checkpoint or database inside the case folder (so the check covers it)."""
    return lambda folder: Path(shutil.copytree(ASSETS[name], folder / name))


class CliError(Exception):
    """The one line `umedpt evaluate` wrote to stderr with exit code 2 (run_case matches its phrase)."""


def evaluate(*args: str, model: str = "model", data: str = "data", out: str = "out"):
    """action: `umedpt evaluate` on the case's copies (or other paths), its output under `out`, which must fail with
    the CLI contract (exit code 2, one line on stderr)."""

    def action(folder: Path, prepared) -> None:
        out_path = prepared if out == "prepared" else folder / out  # "prepared": the path `prepare` returned
        argv = ["evaluate", "--model", str(folder / model), "--data", str(folder / data), "--out", str(out_path)]
        extra = [arg.format(folder=folder) for arg in args]  # "{folder}/bert": a path inside the case folder
        raise CliError(assert_cli_error([*argv, "--quiet", *extra], r"^umedpt evaluate: error: "))

    return action


def both(folder: Path) -> None:
    copy_asset("model")(folder)
    copy_asset("data")(folder)


def model_with(change) -> callable:
    """prepare: both copies, then `change(model folder)`."""

    def prepare(folder: Path) -> None:
        both(folder)
        change(folder / "model")

    return prepare


def garbage_folder(folder: Path) -> None:
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"\x00not a model")
    copy_asset("data")(folder)


def nan_weights(model: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(model / "model.safetensors")
    name = next(k for k, v in tensors.items() if "embeddings" in k and v.is_floating_point() and v.ndim > 1)
    tensors[name][:] = float("nan")
    save_file(tensors, model / "model.safetensors", metadata={"format": "pt"})


def save_bert(folder: Path) -> None:
    from transformers import BertConfig, BertModel

    both(folder)
    config = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(config).save_pretrained(folder / "bert")


def database_without_class_in_train(folder: Path) -> None:
    copy_asset("model")(folder)
    splits = blob_splits()
    splits["train"] = splits["train"].filter(lambda row: row["label"] != 2)
    write_database(folder / "data", splits)


def foreign_results(folder: Path) -> None:
    both(folder)
    (folder / "results").mkdir()
    (folder / "results" / "data_scarcity.json").write_text('{"my": "own notes"}\n')


def unwritable_out(folder: Path) -> Path:
    """An out folder that cannot be written: read-only for a normal user; procfs for root (who ignores modes)."""
    both(folder)
    if os.geteuid() == 0:
        return Path("/proc/self/umedpt-out")
    (folder / "out").mkdir(mode=0o555)
    return folder / "out"


def one_example_per_class(folder: Path, _prepared) -> list[dict]:
    """1 % of a 12-example split: the protocol keeps one example per class (3), and says so in the result."""
    from umedpt_hf.evaluation import load_encoder, run_data_scarcity

    encoder = load_encoder(folder / "model", name="umedpt")
    return run_data_scarcity(
        [("blobs", SPEC, blob_splits())], [encoder], fractions=(0.01, 1.0), seeds=2, progress=False
    )


def check_one_per_class(results, _folder) -> None:
    (result,) = results
    assert result["train_examples"] == {"0.01": [3, 3], "1.0": [12, 12]}
    assert all(0.0 <= s <= 1.0 for scores in result["encoders"]["umedpt"].values() for s in scores)
    assert result["chance"] == pytest.approx(1 / 3)


def nan_probe_features(folder: Path, _prepared) -> None:
    from umedpt_hf.evaluation import SplitFeatures, probe_scarcity_curve

    x = np.random.default_rng(0).normal(size=(12, 8))
    x[3, 7] = np.nan
    y = np.arange(12) % 3
    probe_scarcity_curve(SplitFeatures(x, y, x[:6] * 0, y[:6]), fractions=(1.0,), seeds=1)


def knn_on_segmentation(folder: Path, _prepared) -> None:
    from umedpt_hf.evaluation import load_encoder, run_data_scarcity

    spec = {"type": "segmentation", "labels": ["background", "blob"], "modality": "xray"}
    run_data_scarcity([("masks", spec, blob_splits())], [load_encoder(folder / "model")], method="knn")


def few_shot_zero_shots(folder: Path, _prepared) -> None:
    from umedpt_hf.evaluation import few_shot_evaluate

    x = np.random.default_rng(0).normal(size=(9, 4))
    few_shot_evaluate(x, np.arange(9) % 3, x, np.arange(9) % 3, shots=(0,))


CASES = [
    Case("model folder missing", evaluate(model="nothing"), copy_asset("data"), CliError, r"no checkpoint at"),
    Case("model folder of garbage", evaluate(), garbage_folder, CliError, r"has no config\.json"),
    Case(
        "config.json is not JSON",
        evaluate(),
        model_with(lambda m: (m / "config.json").write_text("{broken")),
        CliError,
        r"config\.json is not valid JSON",
    ),
    Case(
        "weights file is garbage",
        evaluate(),
        model_with(lambda m: (m / "model.safetensors").write_bytes(b"\x01" * 64)),
        CliError,
        r"not a readable safetensors file",
    ),
    Case(
        "weights file missing",
        evaluate(),
        model_with(lambda m: (m / "model.safetensors").unlink()),
        CliError,
        r"no weights to load",
    ),
    Case("a BERT checkpoint as --model", evaluate(model="bert"), save_bert, CliError, r"not a UMedPT checkpoint"),
    Case(
        "a BERT checkpoint to compare",
        evaluate("--compare", "random", "{folder}/bert"),
        save_bert,
        CliError,
        r"neither a UMedPT nor an image backbone",
    ),
    Case("database folder missing", evaluate(data="nowhere"), copy_asset("model"), CliError, r"no task database"),
    Case(
        "database without tasks.json",
        evaluate(),
        model_with(lambda m: (m.parent / "data" / "tasks.json").unlink()),
        CliError,
        r"has no tasks\.json",
    ),
    Case("unknown task name", evaluate("--tasks", "blobz"), both, CliError, r"unknown task.*'blobz'"),
    Case("fraction 0", evaluate("--fractions", "0", "0.5"), both, CliError, r"fraction must be in \(0, 1\]"),
    Case("fraction above 1", evaluate("--fractions", "1.5"), both, CliError, r"fraction must be in \(0, 1\]"),
    Case("zero seeds", evaluate("--seeds", "0"), both, CliError, r"--seeds must be >= 1"),
    Case("batch size 0", evaluate("--batch-size", "0"), both, CliError, r"--batch-size must be >= 1"),
    Case("metric of another task type", evaluate("--metric", "dice"), both, CliError, r"not defined for classif"),
    Case(
        "a class with test examples but no training example",
        evaluate("--fractions", "0.01"),
        database_without_class_in_train,
        CliError,
        r"\['none'\] have test examples but none in the train split \(8 examples\)",
    ),
    Case("1 % of a tiny split: one example per class", one_example_per_class, both, check=check_one_per_class),
    Case(
        "out is a file",
        evaluate(),
        lambda folder: (both(folder), (folder / "out").write_text("a file")),
        CliError,
        r"--out .* is a file, not a folder",
    ),
    Case("out cannot be written", evaluate(out="prepared"), unwritable_out, CliError, r"cannot write to --out"),
    Case(
        "out holds a data_scarcity.json it did not write",
        evaluate(out="results"),  # outside out/: the check proves the file is left as it was
        foreign_results,
        CliError,
        r"results holds data_scarcity\.json without a valid .*refusing to overwrite",
    ),
    Case(
        "a checkpoint whose features are NaN",
        evaluate("--fractions", "1.0", "--seeds", "1"),
        model_with(nan_weights),
        CliError,
        r"blobs \[umedpt\] train: the features .* NaN or infinite value at row 0 \(example\)",
    ),
    Case("NaN in probe features", nan_probe_features, None, ValueError, r"row 3 \(example\), column 7 \(feature\)"),
    Case("kNN on a segmentation task", knn_on_segmentation, copy_asset("model"), ValueError, r"use method 'finetune'"),
    Case("few-shot with 0 shots", few_shot_zero_shots, None, ValueError, r"shots per class must be >= 1"),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_evaluation(case, tmp_path):
    run_case(case, tmp_path)
