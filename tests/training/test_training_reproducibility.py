"""One seed, one model: the tiny config with augmentation gives bitwise-identical weights with 0 and 2 workers, and a
run stopped after a checkpoint and resumed equals an uninterrupted one in both cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from umedpt_hf.training.config import apply_overrides, parse_pretrain_config
from umedpt_hf.training.pipeline import run_pretraining

CONFIG = Path(__file__).parents[2] / "examples" / "configs" / "tiny.yaml"


class Stop(Exception):
    pass


def _run(database: Path, out: Path, workers: int, resume: bool = False, stop_after: int | None = None):
    overrides = [
        f"data.database={database}", f"output_dir={out}", f"data.num_workers={workers}", "data.augment=true",
        "training.max_steps=4", "training.save_steps=2",
    ]  # fmt: skip
    config = parse_pretrain_config(apply_overrides(yaml.safe_load(CONFIG.read_text()), overrides))

    def stop(trainer, step, losses) -> None:
        if step == stop_after:
            raise Stop  # after the step-2 checkpoint: as if the machine had gone away

    return run_pretraining(config, resume=resume, callbacks=(stop,) if stop_after else ())


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "final" / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(tiny_database, tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("reference") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run(tiny_database, out, workers=0)
    finally:
        torch.set_num_threads(threads)
    return _weights(out)


@pytest.mark.parametrize("workers", [0, 2])
def test_same_weights_with_workers_and_after_resume(tiny_database, tmp_path, reference, workers):
    straight = tmp_path / "straight"
    _run(tiny_database, straight, workers)
    interrupted = tmp_path / "interrupted"
    with pytest.raises(Stop):
        _run(tiny_database, interrupted, workers, stop_after=2)
    assert not (interrupted / "final").exists()
    _run(tiny_database, interrupted, workers, resume=True)
    for out in (straight, interrupted):
        weights = _weights(out)
        assert weights.keys() == reference.keys()
        different = [name for name in reference if not torch.equal(weights[name], reference[name])]
        assert not different, f"{out.name} with {workers} workers differs in {different[:3]}"
