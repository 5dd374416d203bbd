"""Where the card templates (`modelcard_template.md`, ...) and the Space app live: the `hub_cards/` folder.

A leaf module: publishing (`umedpt_hf.hub`) and conversion (`umedpt_hf.conversion`) both render cards from it.
"""

from __future__ import annotations

import os
from pathlib import Path


def hub_cards_dir() -> Path:
    """The hub_cards/ folder: ``$UMEDPT_HUB_CARDS`` or the one of this source checkout."""
    candidates = [os.environ.get("UMEDPT_HUB_CARDS"), Path(__file__).resolve().parents[2] / "hub_cards"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "modelcard_template.md").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "hub_cards/ (card templates and the Space app) not found; set UMEDPT_HUB_CARDS to the folder holding "
        "modelcard_template.md"
    )
