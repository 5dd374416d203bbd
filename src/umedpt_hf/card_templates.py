"""Where the card templates (`modelcard_template.md`, ...) and the Space app live: the `hub_cards/` folder.

A leaf module: publishing (`umedpt_hf.hub`) and conversion (`umedpt_hf.conversion`) both render cards from it.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2] / "hub_cards"  # a source checkout (editable install)
INSTALLED = Path(sysconfig.get_path("data")) / "share" / "umedpt_hf" / "hub_cards"  # a wheel's data files


def hub_cards_dir() -> Path:
    """The hub_cards/ folder: ``$UMEDPT_HUB_CARDS``, the one of this source checkout, or the installed copy."""
    candidates = [os.environ.get("UMEDPT_HUB_CARDS"), CHECKOUT, INSTALLED]
    for candidate in candidates:
        if candidate and (Path(candidate) / "modelcard_template.md").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "hub_cards/ (card templates and the Space app) not found; set UMEDPT_HUB_CARDS to the folder holding "
        "modelcard_template.md"
    )
