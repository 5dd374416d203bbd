"""The tasks of the embedded default database ``umedpt-mini`` and which of them are kept out of pretraining."""

from __future__ import annotations

import os
from pathlib import Path

from .sources import TASK_RECIPES

DATABASE_NAME = "umedpt-mini"
DEFAULT_TASKS: tuple[str, ...] = tuple(recipe.name for recipe in TASK_RECIPES)
# held out of pretraining for the out-of-domain evaluation: an MRI task on the MNI152 template labelled by the
# Harvard-Oxford atlas, and the X-ray task on the only two radiographs; no pretraining task uses any of their source
# volumes or images (`check_held_out_disjoint`); both classification with >= 30 test images per class
DEFAULT_HELD_OUT_TASKS: tuple[str, ...] = ("mni152_lobe_cls", "xray_bodypart_cls")
DEFAULT_PRETRAINING_TASKS: tuple[str, ...] = tuple(t for t in DEFAULT_TASKS if t not in DEFAULT_HELD_OUT_TASKS)


def default_database_dir() -> Path:
    """``$UMEDPT_DATA_DIR``, else ``$XDG_CACHE_HOME/umedpt/umedpt-mini`` (default ``~/.cache/umedpt/umedpt-mini``)."""
    if os.environ.get("UMEDPT_DATA_DIR"):
        return Path(os.environ["UMEDPT_DATA_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "umedpt" / DATABASE_NAME
