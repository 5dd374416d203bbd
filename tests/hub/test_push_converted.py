"""`umedpt push` publishes a folder written by `umedpt convert` like any other model, keeping its own card (source
file, SHA-256, the source's licence, parity) and its conversion report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import HfApi, ModelCard
from transformers import AutoModel

from umedpt_hf.conversion import convert_checkpoint
from umedpt_hf.hub import push_to_hub

TV_TINY = Path(__file__).resolve().parents[1] / "conversion" / "data" / "tv_swinv2_tiny.safetensors"


def test_push_keeps_the_converted_card_and_report(loopback_hub, tmp_path, monkeypatch):
    folder = convert_checkpoint(TV_TINY, tmp_path / "umedpt-tv-tiny").path
    push_to_hub(folder, "loopback-user/umedpt-tv-tiny")
    api = HfApi()
    files = set(api.list_repo_files("loopback-user/umedpt-tv-tiny"))
    assert {"README.md", "conversion_report.json", "model.safetensors", "modeling_umedpt.py"} <= files
    pushed = Path(api.hf_hub_download("loopback-user/umedpt-tv-tiny", "README.md")).read_text()
    assert pushed == (folder / "README.md").read_text()
    card = ModelCard.load("loopback-user/umedpt-tv-tiny")
    assert card.data.license == "other" and card.data.to_dict()["umedpt_converted"] is True
    report = json.loads(Path(api.hf_hub_download("loopback-user/umedpt-tv-tiny", "conversion_report.json")).read_text())
    assert report["source"]["sha256"] in pushed

    # the card's snippet runs as printed, next to the local folder it names
    snippet = re.search(r"```python\n(.*?)```", card.text, flags=re.DOTALL).group(1)
    monkeypatch.chdir(folder.parent)
    namespace = {"images": [np.random.default_rng(0).random((300, 280, 3))]}
    exec(compile(snippet, "converted card snippet", "exec"), namespace)
    encoder = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = encoder(namespace["inputs"]["pixel_values"]).pooler_output
    assert torch.equal(namespace["embedding"], expected)
    assert len(namespace["pyramid"]) == 4
