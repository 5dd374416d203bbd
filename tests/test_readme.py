"""The README is the user's first contact: its two set-up commands exist and its usage example runs as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_exactly_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make main", "make test"]


def test_readme_usage_example_trains_saves_and_reloads(tmp_path, monkeypatch, capsys):
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example)
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(script))
    assert (tmp_path / "my-umedpt" / "model.safetensors").exists()
    assert (tmp_path / "my-umedpt" / "modeling_umedpt.py").exists()
    features = namespace["features"]
    reference = namespace["model"].eval().umedpt(namespace["images"]).pooler_output
    assert torch.equal(features, reference)
