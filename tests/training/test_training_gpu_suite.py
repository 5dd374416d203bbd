"""`benchmarks/gpu_suite.sh --device cpu --quick` runs every section end to end and writes a well-formed JSON + PNG
(structure and sanity only: timings are the benchmark's business, not a test's)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_gpu_suite_runs_on_cpu_in_quick_mode(tmp_path):
    out = tmp_path / "gpu_suite.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf_home")}
    command = ["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--device", "cpu", "--quick", "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["device"].startswith("CPU") and result["settings"]["preset"] == "tiny"
    assert set(result["sections_seconds"]) == {"inference", "training", "memory", "encoders"}
    assert result["inference"]["images_per_second"] > 0 and result["inference"]["parameters"] > 1_000_000
    eager = result["training"]["eager"]
    assert eager["trainer_images_per_second"] > 0 and eager["bare_images_per_second"] > 0
    assert eager["ratio_trainer_over_bare"] > 0 and eager["timed_steps"] == 4
    assert "skipped" in result["training"]["compiled"]  # --quick leaves compiling out unless --compile
    memory = result["memory"]
    assert set(memory["per_task"]) == set(memory["joint"]) == {"1", "2"}
    assert all(value > 0 for mode in ("per_task", "joint") for value in memory[mode].values())
    assert memory["joint"]["2"] > 1.2 * memory["per_task"]["2"]  # two live graphs against one
    encoders = result["encoders"]
    assert encoders["umedpt_hf (transformers Swinv2)"]["inference_images_per_second"] > 0
    for name in ("torchvision swin_v2_t", "timm swinv2_tiny_window8_256"):
        assert "available" in encoders[name]  # measured where it imports, else the reason it does not
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
