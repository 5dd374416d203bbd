"""Write the run record of `make main`: seed, pretraining configuration, machine, versions and step durations.

    python scripts/main_job_record.py OUT/main_job.json --seed 0 --config CONFIG --steps build=12 pretrain=475 ...

The record is kept out of the results JSON (which the same seed reproduces byte for byte); `make results` commits it
as `benchmarks/results/data_scarcity_run.json`, and BENCHMARKS states the durations from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from importlib.metadata import version
from pathlib import Path

import torch
import yaml

PACKAGES = ("torch", "transformers", "accelerate", "datasets", "scikit-learn")


def effective_config(config_path: str, overrides: list[str]) -> dict:
    """The pretraining YAML with the `section.key=value` overrides applied (values parsed as YAML)."""
    config = yaml.safe_load(Path(config_path).read_text())
    for item in overrides:
        keys, _, value = item.partition("=")
        *parents, last = keys.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = yaml.safe_load(value)
    return config


def machine() -> dict:
    """CPU model, cores, memory (GiB) and GPU of this machine."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), None)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory_kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20),
        "gpu": gpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--overrides", default="", help="the pretraining overrides, space-separated")
    parser.add_argument("--steps", nargs="+", required=True, help="name=seconds per step")
    args = parser.parse_args()
    overrides = args.overrides.split()
    config = effective_config(args.config, overrides)
    durations = {name: int(seconds) for name, seconds in (step.split("=") for step in args.steps)}
    record = {
        "seed": args.seed,
        "config": args.config,
        "overrides": overrides,
        "pretraining": {
            "preset": config["model"]["preset"],
            "max_steps": config["training"]["max_steps"],
            "tasks": len(config["tasks"]),
        },
        "machine": machine(),
        "versions": {name: version(name) for name in PACKAGES},
        "durations_s": {**durations, "total": sum(durations.values())},
    }
    Path(args.path).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
