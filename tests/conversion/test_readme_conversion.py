"""The README's "Use the published UMedPT weights" section runs as written, with the authors' download replaced by
the structural stand-in of their export (the only placeholder: `encoder-1.0.4.pt.zip`)."""

from __future__ import annotations

import re
import runpy
import shlex
import shutil
from pathlib import Path

import torch
from conversion_helpers import STANDIN_ZIP

from umedpt_hf.cli.main import main

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER = "encoder-1.0.4.pt.zip"


def section() -> str:
    text = README.read_text()
    start = text.index("## Use the published UMedPT weights")
    return text[start : text.index("\n## ", start + 1)]


def test_section_runs_as_written(tmp_path, monkeypatch, capsys):
    text = section()
    monkeypatch.chdir(tmp_path)
    shutil.copy(STANDIN_ZIP, tmp_path / PLACEHOLDER)  # the user's download
    commands = re.findall(r"```bash\n(.*?)```", text, re.S)[0].strip().splitlines()
    commands += [c for c in re.findall(r"`(umedpt convert [^`]+)`", text) if c not in commands]
    assert len(commands) == 2 and "--to timm" in commands[1]
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "umedpt"
        assert main(argv[1:]) == 0, command
    snippet = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    (tmp_path / "use_it.py").write_text(snippet)
    namespace = runpy.run_path(str(tmp_path / "use_it.py"))
    output = namespace["output"]
    assert output.pooler_output.shape == (1, 128) and len(output.feature_maps) == 4
    assert torch.isfinite(output.pooler_output).all()
    assert (tmp_path / "umedpt-1.0.4-timm" / "model.safetensors").is_file()
    assert "torch.Size([1, 128])" in capsys.readouterr().out


def test_section_names_the_three_ways_in():
    text = section()
    assert "**Start from ImageNet:**" in text and "model.init_from:" in text
    assert "**Use it from timm:**" in text
    config = (README.parent / "examples" / "configs" / "umedpt_swinv2_t.yaml").read_text()
    assert "init_from: microsoft/swinv2-tiny-patch4-window8-256" in config
