"""The card templates and the Space app travel with a wheel: `umedpt push` finds them without a source checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from umedpt_hf import card_templates

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_carries_every_card_template_and_the_space(tmp_path):
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    built = subprocess.run([*command, str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("umedpt_hf-*.whl")
    prefix = "share/umedpt_hf/hub_cards/"
    with zipfile.ZipFile(wheel) as archive:
        carried = {name.split(prefix, 1)[1] for name in archive.namelist() if prefix in name}
    listed = subprocess.run(["git", "ls-files", "hub_cards"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked hub_cards files are unknown")
    tracked = {name.split("hub_cards/", 1)[1] for name in listed.stdout.split()}
    assert carried == tracked


def test_the_installed_copy_is_found_without_a_checkout(tmp_path, monkeypatch):
    installed = tmp_path / "share" / "umedpt_hf" / "hub_cards"
    installed.mkdir(parents=True)
    (installed / "modelcard_template.md").write_text("---\n---\n")
    monkeypatch.delenv("UMEDPT_HUB_CARDS", raising=False)
    monkeypatch.setattr(card_templates, "CHECKOUT", tmp_path / "no-checkout")
    monkeypatch.setattr(card_templates, "INSTALLED", installed)
    assert card_templates.hub_cards_dir() == installed
    monkeypatch.setattr(card_templates, "INSTALLED", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="UMEDPT_HUB_CARDS"):
        card_templates.hub_cards_dir()
