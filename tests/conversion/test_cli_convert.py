"""`umedpt convert`: what it prints (converted, not converted, parity sizes, licence) and the timm export."""

from __future__ import annotations

import json

from conversion_helpers import STANDIN_ZIP

from umedpt_hf.cli.main import main


def test_convert_prints_what_it_did(tmp_path, capsys):
    assert main(["convert", str(STANDIN_ZIP), "--out", str(tmp_path / "umedpt")]) == 0
    out = capsys.readouterr().out
    assert "converted encoder: 165 tensors, 599,950 parameters" in out
    assert "converted squeezer: 2 tensors" in out
    assert "not converted: encoder.model.wrapped_model.norm.weight" in out
    assert "160, 192, 224, 256" in out and "umedpt-authors-noncommercial" in out
    assert (tmp_path / "umedpt" / "conversion_report.json").is_file()


def test_convert_to_timm_and_image_size(tmp_path, capsys):
    assert main(["convert", str(STANDIN_ZIP), "--out", str(tmp_path / "umedpt"), "--image-size", "256"]) == 0
    processor = json.loads((tmp_path / "umedpt" / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 256, "width": 256}
    assert main(["convert", str(tmp_path / "umedpt"), "--to", "timm", "--out", str(tmp_path / "timm")]) == 0
    assert "timm's SwinTransformerV2 layout" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "timm").iterdir()} == {
        "config.json", "model.safetensors", "README.md", "export_report.json"
    }  # fmt: skip
