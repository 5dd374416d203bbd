from __future__ import annotations

import json

import pytest
from PIL import Image

from umedpt_hf.cli.main import main
from umedpt_hf.evaluation.report import read_json


def run_cli(*args: str) -> int:
    return main(["evaluate", *map(str, args)])


def test_evaluate_end_to_end(tmp_path, tiny_checkpoint, tiny_database, capsys):
    out = tmp_path / "out"
    code = run_cli(
        "--model", tiny_checkpoint, "--data", tiny_database, "--tasks", "bars",
        "--fractions", "0.01", "0.1", "1.0", "--seeds", "2", "--out", out, "--quiet",
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = read_json(out / "data_scarcity.json")
    assert len(results) == 1 and results[0]["task"] == "bars" and results[0]["metric"] == "macro_f1"
    curves = results[0]["encoders"]
    assert set(curves) == {"umedpt", "random-init"}
    for curve in curves.values():
        assert list(curve) == ["0.01", "0.1", "1.0"]
        assert all(len(s) == 2 and all(0 <= v <= 1 for v in s) for s in curve.values())
    # the bars are easy: with all labels even a tiny random encoder's features separate them
    assert max(sum(c["1.0"]) / 2 for c in curves.values()) > 0.6
    with Image.open(out / "data_scarcity.png") as image:
        assert image.format == "PNG"
    table = (out / "data_scarcity.md").read_text()
    assert table.startswith("| task | role | metric | encoder | 1 % | 10 % | 100 % | chance |")
    assert "| bars | held out | macro_f1 | labelled examples | 3 | 6 | 48 |  |" in table  # >= 1 per class
    assert results[0]["role"] == "held_out" and results[0]["type"] == "classification"
    assert results[0]["chance"] == pytest.approx(1 / 3)
    target = json.loads((out / "target.json").read_text())
    assert target[0]["task"] == "bars" and isinstance(target[0]["low_beats_baseline_full"], bool)
    assert "random-init" in printed and "wrote" in printed
    assert list((out / "feature_cache").glob("*.npz"))  # features cached for a rerun


def test_evaluate_knn_default_tasks_and_no_comparison(tmp_path, tiny_checkpoint, tiny_database):
    out = tmp_path / "knn"
    code = run_cli("--model", tiny_checkpoint, "--data", tiny_database, "--method", "knn", "--fractions", "0.5", "1",
                   "--seeds", "1", "--compare", "--out", out, "--quiet")  # fmt: skip
    assert code == 0
    (result,) = read_json(out / "data_scarcity.json")
    assert set(result["encoders"]) == {"umedpt"} and list(result["encoders"]["umedpt"]) == ["0.5", "1.0"]
    assert not (out / "target.json").exists()  # no random-init baseline, no target check


def test_evaluate_compares_another_transformers_checkpoint(tmp_path, tiny_checkpoint, tiny_database):
    from transformers import ResNetConfig, ResNetModel

    other = tmp_path / "resnet-tiny"
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(other)
    out = tmp_path / "cmp"
    code = run_cli("--model", tiny_checkpoint, "--data", tiny_database, "--fractions", "1", "--seeds", "1",
                   "--compare", "random", other, "--out", out, "--quiet")  # fmt: skip
    assert code == 0
    (result,) = read_json(out / "data_scarcity.json")
    assert set(result["encoders"]) == {"umedpt", "random-init", "resnet-tiny"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fractions", "0", "0.5"], "fraction must be in (0, 1]"),
        (["--fractions", "1.5"], "fraction must be in (0, 1]"),
        (["--tasks", "no_such_task"], "no_such_task"),
        (["--seeds", "0"], "--seeds must be >= 1"),
    ],
)
def test_bad_arguments_give_clear_errors(tmp_path, tiny_checkpoint, tiny_database, capsys, extra, message):
    code = run_cli("--model", tiny_checkpoint, "--data", tiny_database, "--out", tmp_path, "--quiet", *extra)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data_scarcity.json").exists()


def test_bad_model_and_data_paths(tmp_path, tiny_checkpoint, tiny_database, capsys):
    from transformers import BertConfig, BertModel

    assert run_cli("--model", tmp_path / "nothing", "--data", tiny_database, "--out", tmp_path) == 2
    assert "no checkpoint" in capsys.readouterr().err
    bert = tmp_path / "bert"
    BertModel(
        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    ).save_pretrained(bert)
    assert run_cli("--model", bert, "--data", tiny_database, "--out", tmp_path) == 2
    assert "not a UMedPT checkpoint" in capsys.readouterr().err
    assert run_cli("--model", tiny_checkpoint, "--data", tiny_database, "--compare", bert, "--out", tmp_path) == 2
    assert "neither a UMedPT nor an image backbone" in capsys.readouterr().err
    assert run_cli("--model", tiny_checkpoint, "--data", tmp_path / "nodata", "--out", tmp_path) == 2
    assert "no task database" in capsys.readouterr().err


def test_method_that_cannot_handle_the_task_type(tmp_path, tiny_checkpoint):
    from evaluation_test_utils import bar_splits

    from umedpt_hf.evaluation.encoders import load_encoder
    from umedpt_hf.evaluation.scarcity import run_data_scarcity

    spec = {"type": "segmentation", "labels": ["bg", "fg"], "modality": "xray"}
    with pytest.raises(ValueError, match="use method 'finetune'"):
        run_data_scarcity([("seg", spec, bar_splits())], [load_encoder(tiny_checkpoint)], method="linear")
    empty = bar_splits()
    empty["test"] = empty["test"].select([])
    spec = {"type": "classification", "labels": ["top", "middle", "bottom"], "modality": "xray"}
    with pytest.raises(ValueError, match="'test' split is missing or empty"):
        run_data_scarcity([("bars", spec, empty)], [load_encoder(tiny_checkpoint)])
