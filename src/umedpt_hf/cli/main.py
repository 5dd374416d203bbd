"""`umedpt` entry point: each sub-command lives in its own module with a `register(subparsers)` function.

The error contract: bad input (a missing, unreadable, truncated or malformed file, a bad value or name) ends in ONE line
on stderr, ``umedpt <command>: error: <problem>``, and exit code 2; the messages of the package name the file. Errors
of other classes are bugs and keep their traceback; ``--traceback`` shows it for bad input too.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import NoReturn

import yaml
from safetensors import SafetensorError

# sub-command modules under umedpt_hf.cli; each defines register(subparsers) and sets `func` on its parser
SUBCOMMAND_MODULES = ("data", "evaluate", "push", "convert")

# what bad input raises: Python's own classes (JSONDecodeError and UnicodeDecodeError are ValueErrors;
# PermissionError, IsADirectoryError, disk full and PIL's UnidentifiedImageError are OSErrors), YAML and safetensors
BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, OSError, ImportError, yaml.YAMLError, SafetensorError,
)  # fmt: skip
# the same for optional readers, matched by name so that the CLI does not import them (pydicom, nibabel, datasets)
BAD_INPUT_ERROR_NAMES = frozenset(
    {"InvalidDicomError", "ImageFileError", "DatasetGenerationError", "DataFilesNotFoundError", "DatasetNotFoundError"}
)
INTERRUPTED = 130


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (``umedpt push: error: ... (see umedpt push --help)``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="umedpt", description="UMedPT: multi-task biomedical imaging foundation model")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"umedpt_hf.cli.{name}").register(subparsers)
    return parser


def is_bad_input(error: BaseException) -> bool:
    """True for the errors that bad input causes (reported in one line), False for bugs (reported with traceback)."""
    return isinstance(error, BAD_INPUT_ERRORS) or any(
        cls.__name__ in BAD_INPUT_ERROR_NAMES for cls in type(error).__mro__
    )


def _input_paths(args: argparse.Namespace) -> list[str]:
    """``name=path`` for each argument of the command that names an existing file or folder."""
    found = []
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and name not in ("command", "func") and Path(item).exists():
                found.append(f"{name}={item}")
    return found


def describe(error: BaseException, args: argparse.Namespace | None = None) -> str:
    """One line that names the problem, and the file: the one the error names, else the command's input paths
    (an error raised deep inside a library, such as safetensors' or a KeyError, does not know the file)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        target = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else str(error.filename)
        return f"{error.strerror}: {target}"
    if isinstance(error, KeyError) and len(error.args) == 1:
        message = f"missing key {error.args[0]!r}"
    elif isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        where = "" if mark.name.startswith("<") else f" in {mark.name}"  # "<unicode string>": no file
        message = f"invalid YAML{where}, line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    else:
        message = str(error) or type(error).__name__
    if isinstance(error, (SafetensorError, KeyError, TypeError, yaml.YAMLError)):
        message += f" ({type(error).__name__})"
    inputs = _input_paths(args) if args is not None else []
    if inputs and not any(item.split("=", 1)[1] in message for item in inputs):
        message += f", while reading {', '.join(inputs)}"
    return " ".join(message.split())  # one line


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"umedpt {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:
        if args.traceback or not is_bad_input(error):
            raise
        print(f"umedpt {args.command}: error: {describe(error, args)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
