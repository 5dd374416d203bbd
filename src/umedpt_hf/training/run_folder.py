"""The run folder (`output_dir`): which files a run wrote, who may write there, and atomic exports.

A run records every file it writes in `<output_dir>/umedpt_run.json` (its manifest). Only files in the manifest are
ever deleted (checkpoint rotation, `--overwrite`); a folder that holds another run is refused unless the caller resumes
it or asks to overwrite it; a lock file keeps two live runs out of one folder (a lock left by a process that no longer
exists on this host is reported and taken over). Exports (`final/`, `best/`) are written into a temporary folder and
renamed into place, never over a folder with files the package did not write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MANIFEST = "umedpt_run.json"
LOCK = ".umedpt_run.lock"
TEMP_MARKER = ".umedpt_tmp"
MANIFEST_FORMAT = "umedpt_hf.run/1"
# what runs of earlier versions wrote (they kept no manifest): exact names only
LEGACY_TOP_FILES = ("train_log.jsonl", "pretrain_config.yaml")
LEGACY_CHECKPOINT_FILES = (
    "model.safetensors", "optimizer.bin", "scheduler.bin", "trainer_state.json", "random_states_0.pkl",
    "custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl",
)  # fmt: skip
LEGACY_EXPORT_FILES = (
    "config.json", "model.safetensors", "preprocessor_config.json", "configuration_umedpt.py", "modeling_umedpt.py",
    "image_processing_umedpt.py",
)  # fmt: skip


class OutputDirError(ValueError):
    """The output folder cannot be used as asked (another run, a live lock, files the package did not write)."""


class RunFolder:
    """The manifest of the files a run wrote into `output_dir` (main process only)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.root = Path(output_dir)
        self.manifest_path = self.root / MANIFEST
        self.run_id: str | None = None
        self.files: set[str] = set()
        self._lock_owned = False

    # -------------------------------------------------------------- what is in the folder
    def holds_run(self) -> bool:
        """True when the folder holds a run (this package's manifest, or the files an earlier version wrote)."""
        return self.manifest_path.is_file() or bool(_legacy_files(self.root))

    def describe(self) -> str:
        checkpoints = sorted(p.name for p in (self.root / "checkpoints").glob("step_*") if p.is_dir())
        parts = [f"{len(checkpoints)} checkpoint(s)" + (f", newest {checkpoints[-1]}" if checkpoints else "")]
        parts += [name for name in ("final", "best") if (self.root / name).exists()]
        return ", ".join(parts)

    def load(self) -> None:
        """Read the manifest (or adopt the exact files an earlier version of the package wrote)."""
        if self.manifest_path.is_file():
            try:
                data = json.loads(self.manifest_path.read_text())
                if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
                    raise ValueError("unknown format")
                self.run_id, self.files = str(data["run_id"]), {str(p) for p in data["files"]}
            except (ValueError, KeyError, TypeError) as error:
                raise OutputDirError(f"{self.manifest_path} is not a umedpt_hf run manifest ({error})") from None
        else:
            self.run_id, self.files = uuid.uuid4().hex, set(_legacy_files(self.root))

    def start_new(self) -> None:
        self.run_id, self.files = uuid.uuid4().hex, set()
        self.save()

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"format": MANIFEST_FORMAT, "run_id": self.run_id, "files": sorted(self.files)}
        _atomic_write_text(self.manifest_path, json.dumps(data, indent=1))

    def write_yaml(self, name: str, data: Any) -> Path:
        """Write a YAML file of this run (e.g. its config) and record it."""
        import yaml

        path = self.root / name
        _atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
        self.record([path])
        return path

    def owns(self, path: Path) -> bool:
        return self._relative(path) in self.files

    # -------------------------------------------------------------- recording and removing
    def record(self, paths: Iterable[Path]) -> None:
        """Add written files (or every file under written folders) to the manifest."""
        for path in paths:
            path = Path(path)
            found = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            self.files.update(self._relative(p) for p in found if p.name != TEMP_MARKER)
        self.save()

    def remove(self, path: Path) -> list[str]:
        """Delete the manifest's files at or under `path` and the folders left empty; returns what was kept."""
        path = Path(path)
        prefix = self._relative(path)
        self._delete(sorted(f for f in self.files if f == prefix or f.startswith(prefix + "/")))
        self.save()
        return self.foreign_files(path)

    def remove_all(self) -> list[str]:
        """`--overwrite`: delete every file this folder's run wrote; files it did not write stay (returned)."""
        self._delete(sorted(self.files))
        remove_temporary_folders(self.root)
        remove_temporary_folders(self.root / "checkpoints")
        self.manifest_path.unlink(missing_ok=True)
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def _delete(self, relatives: list[str]) -> None:
        """Unlink owned files, then remove the folders that held them once they are empty (deepest first)."""
        folders = set()
        for relative in relatives:
            (self.root / relative).unlink(missing_ok=True)
            self.files.discard(relative)
            folders.update(Path(relative).parents)
        for folder in sorted(folders, key=lambda p: -len(p.parts)):
            if folder.parts:
                _rmdir_if_empty(self.root / folder)

    def foreign_files(self, path: Path) -> list[str]:
        """Files at or under `path` that the manifest does not list (files the package did not write)."""
        path = Path(path)
        if not path.exists():
            return []
        found = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        return sorted(self._relative(p) for p in found if self._relative(p) not in self.files)

    # -------------------------------------------------------------- the lock
    def acquire_lock(self) -> None:
        """Create the lock file; refuse when a live process holds it; take over (with a warning) a stale one."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = self.root / LOCK
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": _process_start(os.getpid())}
        mine["since"] = time.strftime("%Y-%m-%d %H:%M:%S")
        for _ in range(2):
            try:
                descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_lock(lock)
                if _lock_is_live(holder):
                    raise OutputDirError(
                        f"{self.root} is in use by another training run (pid {holder.get('pid')} on "
                        f"{holder.get('host')}, since {holder.get('since')}); wait for it or pick another output_dir. "
                        f"If that process is gone, delete {lock}"
                    ) from None
                warnings.warn(
                    f"{lock}: stale lock of pid {holder.get('pid')} (that process no longer runs); taking it over",
                    stacklevel=2,
                )
                lock.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(mine, handle)
            self._lock_owned = True
            return
        raise OutputDirError(f"could not take the lock {lock}")

    def release_lock(self) -> None:
        if self._lock_owned:
            (self.root / LOCK).unlink(missing_ok=True)
            self._lock_owned = False

    def _relative(self, path: Path) -> str:
        return Path(os.path.relpath(Path(path), self.root)).as_posix()


def claim_output_dir(output_dir: str | Path, resume: bool, overwrite: bool) -> RunFolder:
    """Check that a run may use `output_dir` (main process), clear it on `overwrite`, and return its manifest.

    Fresh run: refused when the folder holds another run (unless `overwrite`) or when `final/`, `best/` or
    `checkpoints/` hold files the package did not write. Resume: the folder must hold a run.
    """
    folder = RunFolder(output_dir)
    if folder.root.exists() and not folder.root.is_dir():
        raise OutputDirError(f"output_dir {folder.root} is a file, not a folder")
    if resume:
        if not folder.holds_run():
            raise OutputDirError(f"--resume: {folder.root} holds no training run to continue")
        folder.load()
        if not folder.manifest_path.is_file():
            folder.save()
        return folder
    if folder.holds_run():
        if not overwrite:
            raise OutputDirError(
                f"{folder.root} already holds a training run ({folder.describe()}); pass --resume to continue it, "
                "--overwrite to replace it (only files that run wrote are deleted), or pick another output_dir"
            )
        folder.load()
    for name in ("final", "best", "checkpoints"):  # checked before anything is deleted
        foreign = folder.foreign_files(folder.root / name)
        if foreign:
            raise OutputDirError(
                f"{folder.root / name} holds files umedpt_hf did not write ({foreign[:3]}); move them or pick "
                "another output_dir"
            )
    if folder.files or folder.manifest_path.is_file():
        kept = [path for path in folder.remove_all() if path != LOCK]
        if kept:
            warnings.warn(f"--overwrite kept {len(kept)} file(s) the package did not write: {kept[:5]}", stacklevel=2)
    folder.start_new()
    return folder


def claim_for_training(accelerator: Any, output_dir: Path, resume: bool, overwrite: bool) -> RunFolder | None:
    """`claim_output_dir` + the lock on the main process, the verdict shared with every rank.

    Returns the main process's `RunFolder` (None on the other ranks); raises OutputDirError on every rank.
    """
    from accelerate.utils import broadcast_object_list

    folder, error = None, None
    if accelerator.is_main_process:
        existed = output_dir.exists()
        lock = RunFolder(output_dir)
        try:
            if existed and not output_dir.is_dir():
                raise OutputDirError(f"output_dir {output_dir} is a file, not a folder")
            lock.acquire_lock()
            folder = claim_output_dir(output_dir, resume, overwrite)
            folder._lock_owned, lock._lock_owned = True, False
        except (OutputDirError, OSError) as problem:  # OSError: read-only or full disk, no permission
            lock.release_lock()
            if not existed and output_dir.is_dir() and not any(output_dir.iterdir()):
                output_dir.rmdir()
            reason = str(problem) if isinstance(problem, OutputDirError) else problem.strerror or str(problem)
            prefix = "" if isinstance(problem, OutputDirError) else f"cannot write to output_dir {output_dir}: "
            folder, error = None, prefix + reason
    if accelerator.num_processes > 1:
        error = broadcast_object_list([error])[0]
    if error:
        raise OutputDirError(error)
    return folder


def write_folder_atomically(folder: RunFolder, target: Path, write: Any) -> Path:
    """Call `write(temporary_folder)`, then rename the result to `target` (replacing a previous export of this run).

    The previous `target` is replaced only when the manifest lists every file in it.
    """
    target = Path(target)
    foreign = folder.foreign_files(target)
    if foreign:
        raise OutputDirError(f"{target} holds files umedpt_hf did not write ({foreign[:3]}); not replacing it")
    temporary = target.parent / f".tmp_{target.name}_{uuid.uuid4().hex[:8]}"
    make_temporary_folder(temporary)
    write(temporary)
    (temporary / TEMP_MARKER).unlink()
    previous = None
    if target.exists():
        previous = target.parent / f".old_{target.name}_{uuid.uuid4().hex[:8]}"
        target.rename(previous)
        (previous / TEMP_MARKER).touch()  # a run killed before the next line leaves a folder it may delete later
    temporary.rename(target)
    if previous is not None:
        _forget_moved(folder, target, previous)
    folder.record([target])
    return target


def make_temporary_folder(path: Path) -> None:
    """A fresh folder marked as the package's own scratch space (safe to delete when a run was killed in it)."""
    path.mkdir(parents=True)
    (path / TEMP_MARKER).touch()


def remove_temporary_folders(root: Path) -> None:
    """Delete scratch folders a killed run left under `root` (only folders carrying the package's marker)."""
    if not root.is_dir():
        return
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith((".tmp_", ".old_")) and (path / TEMP_MARKER).is_file():
            shutil.rmtree(path)


def _forget_moved(folder: RunFolder, target: Path, previous: Path) -> None:
    """The old export now lives in `previous`: delete its (owned) files there and drop them from the manifest."""
    prefix = folder._relative(target)
    for relative in [f for f in folder.files if f.startswith(prefix + "/")]:
        (previous / Path(relative).relative_to(prefix)).unlink(missing_ok=True)
        folder.files.discard(relative)
    for path in sorted((p for p in previous.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        _rmdir_if_empty(path)
    (previous / TEMP_MARKER).unlink(missing_ok=True)
    _rmdir_if_empty(previous)


def _legacy_files(root: Path) -> list[str]:
    """Files an earlier umedpt_hf run (accelerate checkpoints, no manifest) wrote, by their exact names."""
    found = [name for name in LEGACY_TOP_FILES if (root / name).is_file()]
    checkpoints = root / "checkpoints"
    if checkpoints.is_dir():
        for step in checkpoints.glob("step_*"):
            if (step / "trainer_state.json").is_file():
                found += [f"checkpoints/{step.name}/{n}" for n in LEGACY_CHECKPOINT_FILES if (step / n).is_file()]
    if (root / "final" / "config.json").is_file() and (root / "final" / "model.safetensors").is_file():
        found += [f"final/{name}" for name in LEGACY_EXPORT_FILES if (root / "final" / name).is_file()]
    return found


def _read_lock(lock: Path) -> dict[str, Any]:
    try:
        data = json.loads(lock.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _lock_is_live(holder: dict[str, Any]) -> bool:
    """A lock is live unless its process is known to be gone (same host, no such pid, or a reused pid)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return bool(holder)  # another host (shared file system) or an unreadable lock: assume live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get("started")
    return started is None or started == _process_start(pid)


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from the lock's holder."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
