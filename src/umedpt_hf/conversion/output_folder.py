"""Write a converter's output folder without ever overwriting what the converter did not write.

Files are written into a staging folder inside the output folder and moved in only when everything succeeded. An
existing folder is accepted when it is empty or holds exactly files that an earlier run of the same converter listed in
its manifest (then those files, and only those, are replaced).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

WRITTEN_BY = "umedpt_hf.conversion"


def _previous_files(out_dir: Path, manifest: str) -> set[str] | None:
    """Files an earlier run listed in its manifest, or None when the manifest is not ours."""
    try:
        previous = json.loads((out_dir / manifest).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(previous, dict) or previous.get("written_by") != WRITTEN_BY:
        return None
    return {str(name) for name in previous.get("files", [])} | {manifest}


def check_output_folder(out_dir: Path, manifest: str) -> set[str]:
    """The files an earlier conversion left in `out_dir` (to be replaced); raise if it holds anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; give a folder (new or empty)")
    if not out_dir.exists():
        return set()
    present = {str(path.relative_to(out_dir)) for path in out_dir.rglob("*") if not path.is_dir()}
    if not present:
        return set()
    previous = _previous_files(out_dir, manifest)
    if previous is None or not present <= previous:
        foreign = sorted(present - (previous or set()))
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(
            f"--out {out_dir} is not empty and holds files this converter did not write ({shown}); nothing was "
            "overwritten: choose a new or empty folder"
        )
    return present


@contextlib.contextmanager
def staged_output(out_dir: str | Path, manifest: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success replace the earlier run's files and move the new ones in."""
    out_dir = Path(out_dir)
    replaced = check_output_folder(out_dir, manifest)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield staging
        for name in sorted(replaced, key=lambda n: n.count("/"), reverse=True):
            (out_dir / name).unlink(missing_ok=True)
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                target = out_dir / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and out_dir.exists() and not any(out_dir.iterdir()):
            out_dir.rmdir()
