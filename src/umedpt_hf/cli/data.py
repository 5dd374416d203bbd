"""`umedpt data`: build the embedded offline database ``umedpt-mini`` and list the tasks of a built database.

umedpt data build [--out DIR] [--only TASK ...] [--overwrite]
                                                 build from installed packages (no download), writes DIR/tasks.json;
                                                 a non-empty DIR that no build wrote is refused unless --overwrite
                                                 (which still never touches files the build did not write)
umedpt data list [DIR]                           print the tasks of a database (type, modality, split sizes)
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data",
        help="build the offline umedpt-mini database or list a task database",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="data_command", required=True)
    build = actions.add_parser("build", help="build umedpt-mini from installed packages into DIR")
    build.add_argument(
        "--out", default=None, help="output folder (default: $UMEDPT_DATA_DIR or ~/.cache/umedpt/umedpt-mini)"
    )
    build.add_argument("--only", nargs="+", default=None, metavar="TASK", help="build only these tasks")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.add_argument(
        "--overwrite",
        action="store_true",
        help="build into a non-empty folder that no build made, next to its files (they are never touched)",
    )
    build.set_defaults(func=run_build)
    listing = actions.add_parser("list", help="list the tasks of a built database (tasks.json)")
    listing.add_argument("dir", nargs="?", default=None, help="database folder (default: the umedpt-mini cache)")
    listing.set_defaults(func=run_list)


def format_table(manifest: dict[str, Any]) -> str:
    """A plain-text table of the tasks in a ``tasks.json`` manifest."""
    header = f"{'task':<26} {'type':<15} {'modality':<11} {'train':>6} {'val':>5} {'test':>5}  classes"
    lines = [header, "-" * len(header)]
    held_out = set(manifest.get("held_out_tasks", []))
    for entry in manifest["tasks"]:
        splits = entry.get("splits", {})
        mark = " (held out)" if entry["name"] in held_out else ""
        lines.append(
            f"{entry['name']:<26} {entry.get('type', '?'):<15} {entry.get('modality', '?'):<11} "
            f"{splits.get('train', 0):>6} {splits.get('validation', 0):>5} {splits.get('test', 0):>5}  "
            f"{len(entry.get('labels', []))}{mark}"
        )
    return "\n".join(lines)


def run_build(args: argparse.Namespace) -> int:
    from ..data.build import build_database
    from ..data.registry import default_database_dir

    out = args.out or default_database_dir()
    try:
        manifest = build_database(out, only=args.only, progress=not args.no_progress, overwrite=args.overwrite)
    except FileNotFoundError:
        raise
    except OSError as error:  # read-only folder, full disk: one line naming the file
        raise ValueError(f"cannot write the database into {out}: {error}") from None
    print(format_table(manifest))
    print(f"\n{len(manifest['tasks'])} tasks in {out} ({manifest['build_seconds']} s); tasks.json written")
    for name, reason in manifest.get("skipped", {}).items():
        print(f"skipped {name}: {reason}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..data.loaders import read_tasks_file
    from ..data.registry import default_database_dir

    try:
        manifest = read_tasks_file(args.dir or default_database_dir())
    except FileNotFoundError:
        raise
    except OSError as error:  # unreadable tasks.json
        raise ValueError(f"cannot read {args.dir or default_database_dir()}: {error}") from None
    print(format_table(manifest))
    return 0
