"""`umedpt` entry point: each sub-command lives in its own module with a `register(subparsers)` function."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command modules under umedpt_hf.cli; each defines register(subparsers) and sets `func` on its parser
SUBCOMMAND_MODULES = ("data", "evaluate", "push", "convert")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="umedpt", description="UMedPT: multi-task biomedical imaging foundation model"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"umedpt_hf.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError, TypeError) as error:
        print(f"umedpt {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
