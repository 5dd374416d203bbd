"""Publishing on the Hugging Face Hub: one-commit push with a model card, and the Space demo."""

from __future__ import annotations

from umedpt_hf.hub.card import render_model_card
from umedpt_hf.hub.model_folder import ModelFolder
from umedpt_hf.hub.push import push_space, push_to_hub
from umedpt_hf.hub.results import load_scarcity_results, plot_scarcity, scarcity_table

__all__ = [
    "ModelFolder",
    "load_scarcity_results",
    "plot_scarcity",
    "push_space",
    "push_to_hub",
    "render_model_card",
    "scarcity_table",
]
