from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from umedpt_hf.evaluation.report import (
    check_target,
    format_target,
    markdown_table,
    plot_results,
    print_table,
    read_json,
    validate_result,
    write_json,
)


def result(task: str = "bars") -> dict:
    return {
        "task": task,
        "metric": "macro_f1",
        "encoders": {
            "umedpt": {"0.01": [0.80, 0.84], "0.1": [0.90, 0.92], "1.0": [0.95, 0.95]},
            "random-init": {"0.01": [0.40, 0.50], "0.1": [0.60, 0.62], "1.0": [0.70, 0.72]},
        },
    }


def test_json_round_trip_one_object_and_a_list(tmp_path):
    path = write_json(result(), tmp_path / "one.json")
    assert json.loads(path.read_text()) == result()  # exactly the schema: an object
    assert read_json(path) == [result()]
    path = write_json([result("a"), result("b")], tmp_path / "many.json")
    payload = json.loads(path.read_text())
    assert isinstance(payload, list) and [r["task"] for r in payload] == ["a", "b"]
    assert set(payload[0]) == {"task", "metric", "encoders"}
    assert all(isinstance(k, str) and 0 < float(k) <= 1 for k in payload[0]["encoders"]["umedpt"])


@pytest.mark.parametrize(
    ("broken", "match"),
    [
        ({"task": "t", "metric": "m"}, "exactly the keys"),
        ({"task": "t", "metric": "m", "encoders": {}, "extra": 1}, "exactly the keys"),
        ({"task": "t", "metric": "m", "encoders": {}}, "non-empty"),
        ({"task": "t", "metric": "m", "encoders": {"e": {"0": [0.5]}}}, "fraction"),
        ({"task": "t", "metric": "m", "encoders": {"e": {"1.5": [0.5]}}}, "fraction"),
        ({"task": "t", "metric": "m", "encoders": {"e": {"0.5": []}}}, "non-empty list"),
        ({"task": 3, "metric": "m", "encoders": {"e": {"0.5": [1.0]}}}, "strings"),
    ],
)
def test_invalid_results_are_rejected(broken, match):
    with pytest.raises(ValueError, match=match):
        validate_result(broken)


def test_nan_scores_and_bad_files(tmp_path):
    bad = result()
    bad["encoders"]["umedpt"]["0.01"] = [float("nan")]
    with pytest.raises(ValueError, match="NaN"):
        write_json(bad, tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_json(tmp_path / "broken.json")


def test_plot_is_a_png_with_one_panel_per_task(tmp_path):
    path = plot_results([result("a"), result("b")], tmp_path / "curve.png", title="test")
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > height > 100  # two panels side by side
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # lines and shading were drawn


def test_tables_and_target(capsys):
    print_table([result()])
    printed = capsys.readouterr().out
    assert "umedpt" in printed and "random-init" in printed and "0.820" in printed
    table = markdown_table(result())
    assert table.splitlines()[0] == "| task | metric | encoder | 1 % | 10 % | 100 % |"
    assert "| bars | macro_f1 | umedpt | 0.820 ± 0.020 | 0.910 ± 0.010 | 0.950 ± 0.000 |" in table
    check = check_target(result(), "umedpt", "random-init")
    assert check["low_beats_baseline_full"] and check["mid_keeps_95_percent"]
    assert check["umedpt@0.01"] == pytest.approx(0.82)
    assert "met" in format_target(check)
    worse = result()
    worse["encoders"]["umedpt"]["0.1"] = [0.5, 0.5]
    assert not check_target(worse, "umedpt", "random-init")["mid_keeps_95_percent"]
    with pytest.raises(ValueError, match="not in the result"):
        check_target(result(), "umedpt", "imagenet")


def annotated(task: str = "bars", role: str = "held_out") -> dict:
    return {
        **result(task),
        "role": role,
        "chance": 1 / 3,
        "train_examples": {"0.01": [3, 3], "0.1": [5, 6], "1.0": [48, 48]},
    }


def test_optional_role_chance_and_examples_are_validated_and_tabulated(tmp_path):
    path = write_json([annotated("a"), annotated("b", "in_domain")], tmp_path / "r.json")
    assert read_json(path)[1]["role"] == "in_domain"
    table = markdown_table(read_json(path))
    assert table.splitlines()[0] == "| task | role | metric | encoder | 1 % | 10 % | 100 % | chance |"
    assert "| a | held out | macro_f1 | labelled examples | 3 | 5–6 | 48 |  |" in table
    assert "| b | in-domain | macro_f1 | umedpt | 0.820 ± 0.020 | 0.910 ± 0.010 | 0.950 ± 0.000 | 0.333 |" in table
    assert check_target(annotated(), "umedpt", "random-init")["role"] == "held_out"
    for key, value, match in [
        ("role", "pretraining", "'role' must be one of"),
        ("chance", float("nan"), "'chance' must be a finite number"),
        ("train_examples", {"0.5": [2.5]}, "example counts"),
        ("seed", 0, "exactly the keys"),
    ]:
        with pytest.raises(ValueError, match=match):
            validate_result({**annotated(), key: value})


def test_plot_draws_chance_and_std_band(tmp_path):
    from umedpt_hf.evaluation.plot import curve_statistics

    x, mean, std = curve_statistics({"1.0": [0.7, 0.9], "0.1": [0.5, 0.5]})
    assert x.tolist() == [0.1, 1.0] and mean == pytest.approx([0.5, 0.8]) and std == pytest.approx([0.0, 0.1])
    plain = np.asarray(Image.open(plot_results(result(), tmp_path / "plain.png")).convert("L"), dtype=float)
    marked = np.asarray(Image.open(plot_results(annotated(), tmp_path / "marked.png")).convert("L"), dtype=float)
    assert plain.shape == marked.shape and np.abs(plain - marked).mean() > 0.1  # chance line, role, legend entry
