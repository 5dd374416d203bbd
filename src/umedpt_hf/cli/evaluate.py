"""`umedpt evaluate`: the data-scarcity protocol on a built task database, UMedPT against other encoders.

Writes to --out: data_scarcity.json (the results schema of `umedpt_hf.evaluation.result_schema`), data_scarcity.png
(score vs label fraction), data_scarcity.md (the table in Markdown) and, when a random-init encoder is compared,
target.json (the data-efficiency target per task); prints the table once. The same model, data and --seed give the
same files (no timestamps in them).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_OUT = "outputs/evaluation"
OUTPUT_FILES = ("data_scarcity.json", "data_scarcity.png", "data_scarcity.md", "target.json")


def register(subparsers: Any) -> None:
    from ..evaluation.scarcity import DEFAULT_FRACTIONS, DEFAULT_SEEDS, METHODS

    parser = subparsers.add_parser(
        "evaluate",
        help="data-scarcity evaluation: probe or fine-tune on label fractions, UMedPT vs other encoders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="UMedPT checkpoint directory (save_pretrained output)")
    parser.add_argument("--data", required=True, help="task database directory (umedpt data build --out DIR)")
    parser.add_argument(
        "--tasks", nargs="+", default=None, help="tasks to evaluate (default: the tasks --model was not pretrained on)"
    )
    parser.add_argument(
        "--fractions", nargs="+", type=float, default=list(DEFAULT_FRACTIONS), help="label fractions in (0, 1]"
    )
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds (subsets) per fraction")
    parser.add_argument(
        "--seed", type=int, default=0, help="first seed: runs use SEED ... SEED+SEEDS-1; random-init uses SEED"
    )
    parser.add_argument("--method", choices=METHODS, default="linear", help="linear probe, cosine kNN or fine-tuning")
    parser.add_argument(
        "--compare",
        nargs="*",
        default=["random"],
        metavar="random|PATH",
        help="other encoders: 'random' (the same architecture randomly initialised) and/or checkpoint paths of "
        "any transformers image model or backbone (default: random; pass --compare with nothing for none)",
    )
    parser.add_argument("--metric", default=None, help="score to report (default: macro_f1 / dice / map50 by type)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--batch-size", type=int, default=32, help="feature-extraction batch size")
    parser.add_argument("--cache-dir", default=None, help="feature cache directory (default: OUT/feature_cache)")
    parser.add_argument(
        "--full-validation",
        action="store_true",
        help="choose the probe's C on the whole validation split (default: on the same label fraction of it)",
    )
    parser.add_argument(
        "--feature-norm",
        choices=("standard", "l2"),
        default="standard",
        help="linear probe input: z-scores with the labelled subset's statistics (standard, default) or unit-length "
        "vectors (l2)",
    )
    parser.add_argument("--train-encoder", action="store_true", help="with --method finetune: train the encoder too")
    parser.add_argument("--epochs", type=int, default=10, help="with --method finetune: epochs (at least 30 steps)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def load_database(root: str | Path) -> dict[str, Any]:
    """{task name: TaskDataset} of a built database, with clear errors for a missing or empty directory."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no task database at {root} (build one with `umedpt data build --out DIR`)")
    if not (root / "tasks.json").is_file():
        raise FileNotFoundError(f"{root} has no tasks.json: not a task database built by `umedpt data build`")
    from ..data import load_task_database

    database = load_task_database(root)
    if not database:
        raise ValueError(f"the task database at {root} holds no tasks")
    return database


def pretraining_tasks(encoder: Any) -> list[str] | None:
    """The tasks the UMedPT checkpoint was pretrained on (its config's tasks), or None when it names none."""
    tasks = getattr(getattr(encoder.model, "config", None), "tasks", None) or {}
    return list(tasks) or None


def default_tasks(database: dict[str, Any], pretrained_on: list[str] | None, method: str) -> list[str]:
    """The tasks of the database that the model was not pretrained on and that `method` handles; without a task list
    in the model, the data package's held-out tasks; else every task."""
    from ..data import DEFAULT_HELD_OUT_TASKS
    from ..evaluation.scarcity import METHOD_TASK_TYPES

    if pretrained_on is not None:
        held_out = [name for name, task in database.items() if name not in pretrained_on]
        held_out = [name for name in held_out if database[name].spec["type"] in METHOD_TASK_TYPES[method]]
    else:
        held_out = [name for name in DEFAULT_HELD_OUT_TASKS if name in database]
    return held_out or list(database)


def prepare_out_folder(out: Path) -> None:
    """Create --out and check that it can be written and holds no file of ours that `umedpt evaluate` did not write."""
    from ..evaluation.result_schema import read_json

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ValueError(f"cannot write to --out {out}: {error.strerror or error}") from None
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing:
        try:
            read_json(out / "data_scarcity.json")  # a previous run's output: ours to replace
        except (FileNotFoundError, ValueError):
            raise ValueError(
                f"--out {out} holds {', '.join(existing)} without a valid data_scarcity.json of `umedpt evaluate`: "
                "refusing to overwrite files it did not write; choose another --out"
            ) from None


def build_encoders(model: str, compare: list[str], seed: int = 0) -> list[Any]:
    """The UMedPT encoder of --model first, then the --compare encoders (names unique)."""
    from ..evaluation.encoders import RANDOM_INIT, load_config, load_encoder

    config = load_config(model)
    if config.model_type != "umedpt":
        raise ValueError(f"--model {model} is a {config.model_type!r} checkpoint, not a UMedPT checkpoint")
    encoders = [load_encoder(model, name="umedpt")]
    for item in compare:
        if item == RANDOM_INIT:
            encoders.append(load_encoder(model, name="random-init", random_init=True, seed=seed))
        else:
            encoder = load_encoder(item)
            names = {e.name for e in encoders}
            if encoder.name in names:
                encoder.name = f"{encoder.name}-{len(encoders)}"
            encoders.append(encoder)
    return encoders


def umedpt_processor(model: str, encoder: Any) -> Any:
    """The checkpoint's image processor, else one built from its config."""
    if encoder.processor is not None:
        return encoder.processor
    from ..image_processing_umedpt import UMedPTImageProcessor

    return UMedPTImageProcessor.from_model_config(encoder.model.config)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import report
    from ..evaluation.sampling import check_fractions, fraction_key
    from ..evaluation.scarcity import run_data_scarcity, select_tasks

    fractions = check_fractions(args.fractions)  # bad arguments fail before anything is loaded
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    out = Path(args.out)
    prepare_out_folder(out)
    database = load_database(args.data)
    encoders = build_encoders(args.model, list(args.compare or []), seed=args.seed)
    pretrained_on = pretraining_tasks(encoders[0])
    tasks = select_tasks(database, args.tasks or default_tasks(database, pretrained_on, args.method))
    processor = umedpt_processor(args.model, encoders[0])
    seeds = f"seeds {args.seed}..{args.seed + args.seeds - 1}" if args.seeds > 1 else f"seed {args.seed}"
    print(
        f"evaluating {', '.join(e.name for e in encoders)} on {', '.join(t.name for t in tasks)} "
        f"({args.method}, {seeds})",
        flush=True,
    )
    results = run_data_scarcity(
        tasks,
        encoders,
        processor=processor,
        method=args.method,
        fractions=fractions,
        seeds=args.seeds,
        seed=args.seed,
        metric=args.metric,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir or str(out / "feature_cache"),
        scale_validation=not args.full_validation,
        train_encoder=args.train_encoder,
        finetune_kwargs={"epochs": args.epochs},
        feature_norm=args.feature_norm,
        pretraining_tasks=pretrained_on,
        progress=not args.quiet,
    )
    json_path = report.write_json(results, out / "data_scarcity.json")
    png_path = report.plot_results(results, out / "data_scarcity.png", title=f"UMedPT data scarcity ({args.method})")
    (out / "data_scarcity.md").write_text(report.markdown_table(results))
    report.print_table(results, title=f"data scarcity ({args.method}, mean ± std over {args.seeds} seeds)")
    written = [json_path, png_path, out / "data_scarcity.md"]
    names = [e.name for e in encoders]
    keys = {fraction_key(f) for f in fractions}
    if "random-init" in names and {"0.01", "0.1", "1.0"} <= keys:
        checks = [report.check_target(r, "umedpt", "random-init") for r in results]
        (out / "target.json").write_text(json.dumps(checks, indent=2) + "\n")
        written.append(out / "target.json")
        for check in checks:
            print(report.format_target(check))
    elif (out / "target.json").exists():
        (out / "target.json").unlink()  # a previous run's target check does not describe these results
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
