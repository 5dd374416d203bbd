"""Fixtures of the data tests: the umedpt-mini database built once per session from the installed sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from umedpt_hf.data import build_database, load_task_database
from umedpt_hf.data.sources import locate_source


@pytest.fixture(scope="session")
def mini_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full umedpt-mini database, built into a session temp folder (about 20 s)."""
    root = tmp_path_factory.mktemp("umedpt-mini")
    build_database(root, progress=False, echo=lambda message: None)
    return root


@pytest.fixture(scope="session")
def mini_tasks(mini_db: Path) -> dict:
    """``{name: TaskDataset}`` read back through the generic adapter."""
    return load_task_database(mini_db)


@pytest.fixture(scope="session")
def processor():
    from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

    return UMedPTImageProcessor(size={"height": 64, "width": 64})


@pytest.fixture(scope="session")
def nuclei_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The real DSB 2018 fluorescence image (uint8 values) and its instance mask, from stardist's data files."""
    from umedpt_hf.data.sources.nuclei import load_nuclei

    located = locate_source("stardist")
    if located is None:
        pytest.skip("stardist data files not installed (pip install --no-deps stardist)")
    return load_nuclei(str(located["image"]), str(located["instances"]))
