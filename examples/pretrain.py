"""Pretrain UMedPT on a task database with the memory-decoupled multi-task loop.

    accelerate launch examples/pretrain.py --config examples/configs/umedpt_mini.yaml data.database=cache/umedpt-mini
    torchrun --nproc_per_node 2 examples/pretrain.py --config examples/configs/umedpt_mini.yaml data.database=DIR
    python examples/pretrain.py --config examples/configs/tiny.yaml --resume training.max_steps=20

Overrides are `section.key=value` pairs (values parsed as YAML). The model and its processor are exported with
`save_pretrained` into `<output_dir>/final` (and `best/` with validation); `--push-to-hub REPO` uploads `final/`.
An `output_dir` that holds another run is refused unless `--resume` (continue it) or `--overwrite` (replace it,
deleting only the files that run wrote). Exit codes: 0 done, 2 bad input, 3 non-finite loss, 128+N stopped by signal N
(SIGTERM / SIGINT finish the round and save a checkpoint first).
"""

from __future__ import annotations

import argparse
import json
import sys

from accelerate import PartialState

from umedpt_hf.training import CheckpointError, NonFiniteLossError, OutputDirError, TrainingInterrupted
from umedpt_hf.training.config import ConfigError, load_pretrain_config
from umedpt_hf.training.pipeline import run_pretraining

BAD_INPUT = (ConfigError, OutputDirError, CheckpointError, FileNotFoundError, PermissionError, OSError, ValueError)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit code 2 (the CLI contract), instead of the usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pretraining YAML config")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in output_dir from its newest checkpoint")
    mode.add_argument("--overwrite", action="store_true", help="replace the run in output_dir (only its own files)")
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help="upload the exported model to this repo")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. training.max_steps=50")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_pretrain_config(args.config, args.overrides)
        result, final = run_pretraining(config, resume=args.resume, overwrite=args.overwrite)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except TrainingInterrupted as error:
        print(f"stopped: {error}", file=sys.stderr)
        return error.exit_code
    except BAD_INPUT as error:
        print(f"error: {' '.join(str(error).split()) or type(error).__name__} (config: {args.config})", file=sys.stderr)
        return 2
    repo = args.push_to_hub or config.push_to_hub
    if repo and PartialState().is_main_process:
        from umedpt_hf.hub import push_to_hub  # publishing lives in the hub package, reached from here

        push_to_hub(final, repo)
    if PartialState().is_main_process:
        summary = {
            "step": result.global_step,
            "last_losses": result.last_losses,
            "exported_to": str(final),
            "best": str(result.best) if result.best else None,
            "stopped_early": result.stopped_early,
        }
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
