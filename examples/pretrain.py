"""Pretrain UMedPT on a task database with the memory-decoupled multi-task loop.

    accelerate launch examples/pretrain.py --config examples/configs/umedpt_mini.yaml
    torchrun --nproc_per_node 2 examples/pretrain.py --config examples/configs/umedpt_mini.yaml
    python examples/pretrain.py --config examples/configs/tiny.yaml --resume training.max_steps=20

Overrides are `section.key=value` pairs (values parsed as YAML). The model and its processor are exported with
`save_pretrained` into `<output_dir>/final`; `--push-to-hub REPO` uploads that folder.
"""

from __future__ import annotations

import argparse
import json
import sys

from accelerate import PartialState

from umedpt_hf.training import NonFiniteLossError
from umedpt_hf.training.config import ConfigError, load_pretrain_config
from umedpt_hf.training.pipeline import run_pretraining


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pretraining YAML config")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help="upload the exported model to this repo")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. training.max_steps=50")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_pretrain_config(args.config, args.overrides)
        result, final = run_pretraining(config, resume=args.resume, push_to_hub=args.push_to_hub)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    if PartialState().is_main_process:
        summary = {"step": result.global_step, "last_losses": result.last_losses, "exported_to": str(final)}
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
