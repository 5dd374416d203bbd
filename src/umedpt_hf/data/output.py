"""The output folder of a database build: it touches only what a build wrote, and replaces it atomically.

A record ``.umedpt_build.json`` lists the names (task folders, ``tasks.json``) that builds wrote into the folder. A
non-empty folder without it was not made by a build: it is refused, or with ``overwrite`` written into without
touching any name the record does not list. Task folders are written to a hidden staging folder and renamed into
place; JSON files are written to a temporary file and renamed (`os.replace`), so a crash or a full disk leaves the
previous version whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import DatasetDict
from datasets.utils.tqdm import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

TASKS_FILE = "tasks.json"
BUILD_RECORD = ".umedpt_build.json"


class OutputFolderError(ValueError):
    """The output folder holds files that the build did not write, or cannot be written."""


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The parsed ``root/tasks.json``, None if there is none; ValueError naming the file if it is not JSON."""
    path = Path(root) / TASKS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def write_json_atomic(path: Path, content: Any) -> None:
    """Write ``content`` as JSON to ``path`` through a temporary file in the same folder and `os.replace`."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(json.dumps(content, indent=2) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class BuildFolder:
    """The folder a build writes into, and the names earlier builds wrote there."""

    root: Path
    written: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, root: str | Path, overwrite: bool = False) -> BuildFolder:
        """Check ``root`` before anything is written: refuse a non-empty folder no build made (unless overwrite)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise OutputFolderError(f"{root} is a file, not a folder")
        if not root.exists():
            return cls(root)
        record = root / BUILD_RECORD
        if record.is_file():
            return cls(root, _read_record(record))
        if any(root.iterdir()) and not overwrite:
            raise OutputFolderError(
                f"{root} is not empty and was not written by `umedpt data build` (no {BUILD_RECORD}): choose a new "
                "or empty folder, or pass --overwrite to build next to its files (they are never touched)"
            )
        return cls(root)

    def wrote(self, name: str) -> bool:
        return name in self.written

    def claim(self, names: list[str]) -> None:
        """Refuse if any of ``names`` exists in the folder but was not written by a build."""
        foreign = [name for name in names if (self.root / name).exists() and name not in self.written]
        if foreign:
            raise OutputFolderError(
                f"{self.root / foreign[0]} exists and was not written by `umedpt data build`; it is not touched "
                f"(move it away or choose another folder)" + (f"; also {foreign[1:]}" if len(foreign) > 1 else "")
            )

    def create(self) -> None:
        """Create the folder (and its record) if needed; a read-only parent gives one clear error."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_record()
        except OSError as error:
            raise OutputFolderError(f"cannot write into {self.root}: {error.strerror or error}") from None

    def save_task(self, data: DatasetDict, name: str) -> None:
        """``save_to_disk`` into a staging folder, then swap it with ``root/name`` (only ever one the build wrote)."""
        self.claim([name])
        target = self.root / name
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=self.root))
        was_disabled = are_progress_bars_disabled()
        disable_progress_bars()  # one bar for the whole build, not one per split
        try:
            data.save_to_disk(str(staging))
            if target.exists():
                retired = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=self.root))
                target.rename(retired / name)
                try:
                    staging.rename(target)
                except BaseException:
                    (retired / name).rename(target)
                    raise
                shutil.rmtree(retired)
            else:
                staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            if not was_disabled:
                enable_progress_bars()
        self.written.add(name)
        self._write_record()

    def write_json(self, name: str, content: Any) -> None:
        """Write ``root/name`` atomically (only a file the build wrote may be replaced)."""
        self.claim([name])
        self.written.add(name)
        self._write_record()
        write_json_atomic(self.root / name, content)

    def _write_record(self) -> None:
        record = {"written_by": "umedpt data build", "written": sorted(self.written)}
        write_json_atomic(self.root / BUILD_RECORD, record)


def _read_record(path: Path) -> set[str]:
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OutputFolderError(f"{path} is not a valid build record: {error}") from None
    names = record.get("written") if isinstance(record, dict) else None
    if not isinstance(names, list) or not all(_plain_name(name) for name in names):
        raise OutputFolderError(f"{path} is not a valid build record (no 'written' list of names)")
    return set(names)


def _plain_name(name: Any) -> bool:
    """A file or folder name directly inside the folder (no path, no "." or "..")."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
