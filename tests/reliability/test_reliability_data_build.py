"""Reliability of `umedpt data build` and the `umedpt data` CLI: nothing the build did not write is touched, a full
disk or a read-only place gives one clear error, and the CLI answers bad input with one line and exit code 2.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from unittest import mock

import pytest
from data_inputs import tasks_file
from reliability_cases import Case, assert_cli_error, case_id, run_case

from umedpt_hf.data import OutputFolderError, build_database

FAST_TASK = ["dsb2018_nuclei_det"]


def build(target: str = "out", **options):
    def action(folder: Path, prepared):
        return build_database(folder / target, only=FAST_TASK, progress=False, echo=lambda m: None, **options)

    return action


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def user_files(folder: Path, where: str = "out") -> dict[str, str]:
    """A user's own files (and a folder named like a task) in ``folder / where``."""
    target = folder / where
    (target / "notes").mkdir(parents=True)
    (target / "notes" / "plan.txt").write_text("my work")
    (target / "tasks.txt").write_text("keep me")
    return digest(target)


def kept(expected_extra: str):
    def check(result, folder: Path) -> None:
        out = folder / "out"
        assert (out / "notes" / "plan.txt").read_text() == "my work" and (out / "tasks.txt").read_text() == "keep me"
        assert (out / expected_extra).exists() and [t["name"] for t in result["tasks"]] == FAST_TASK

    return check


def full_disk(folder: Path, prepared) -> None:
    """A rebuild that hits a full disk while saving: the error says so, the previous database stays whole."""
    before = digest(folder / "out")

    def no_space(self, path, *args, **kwargs):
        Path(path, "data-00000-of-00001.arrow").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with mock.patch("datasets.DatasetDict.save_to_disk", no_space):
        try:
            build()(folder, prepared)
        finally:
            assert digest(folder / "out") == before  # old task folder, tasks.json and record untouched, no staging left


def read_only_target(folder: Path) -> Path:
    if os.geteuid() == 0:  # root writes through file modes: use a place the kernel refuses to root too
        return Path("/sys/umedpt_reliability_db")
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return locked / "db"


def built_twice(folder: Path) -> None:
    build()(folder, None)


def cli(argv_of, phrase: str):
    return lambda folder, prepared: assert_cli_error([str(a) for a in argv_of(folder)], phrase)


def cli_line(text: str):
    def check(line: str, folder: Path) -> None:
        assert text in line.lower()

    return check


def tiny_database(folder: Path) -> Path:
    return tasks_file(folder / "db", [{"name": "x"}])


def user_files_in_built(folder: Path) -> None:
    (folder / "out" / "notes").mkdir()
    (folder / "out" / "notes" / "plan.txt").write_text("my work")
    (folder / "out" / "tasks.txt").write_text("keep me")


CASES = [
    # ---- data build: nothing the build did not write is touched
    Case(
        "build into a user's non-empty folder",
        prepare=lambda f: user_files(f, "mine"),
        action=build("mine"),
        error=OutputFolderError,
        phrase=r"mine is not empty and was not written by `umedpt data build`",
    ),
    Case(
        "overwrite still refuses a user's folder named like a task",
        prepare=lambda f: (user_files(f, "mine"), (f / "mine" / FAST_TASK[0]).mkdir()),
        action=build("mine", overwrite=True),
        error=OutputFolderError,
        phrase=r"dsb2018_nuclei_det exists and was not written",
    ),
    Case(
        "overwrite builds next to unknown files",
        prepare=user_files,
        action=build(overwrite=True),
        check=kept(FAST_TASK[0]),
    ),
    Case(
        "rebuilding its own folder keeps a user's extra files",
        prepare=lambda f: (built_twice(f), user_files_in_built(f)),
        action=build(),
        check=kept(".umedpt_build.json"),
    ),
    Case(
        "disk full while saving keeps the previous database",
        prepare=built_twice,
        action=full_disk,
        error=OSError,
        phrase=r"No space left on device",
    ),
    Case(
        "read-only folder",
        action=lambda f, p: build_database(read_only_target(f), only=FAST_TASK, progress=False, echo=lambda m: None),
        error=(OSError, OutputFolderError),
        phrase=r"permission|not permitted|cannot write",
    ),
    Case(
        "output path is a file",
        prepare=lambda f: (f / "file").write_text("x"),
        action=build("file"),
        error=OutputFolderError,
        phrase=r"file is a file, not a folder",
    ),
    Case(
        "corrupt build record",
        prepare=lambda f: tasks_file(f / "mine", {}).joinpath(".umedpt_build.json").write_text("[1"),
        action=build("mine"),
        error=OutputFolderError,
        phrase=r"\.umedpt_build\.json is not a valid build record",
    ),
    Case(
        "unknown task to build",
        lambda f, p: build_database(f / "out", only=["brain_tumour"], progress=False),
        error=ValueError,
        phrase=r"unknown task\(s\) \['brain_tumour'\]",
    ),
    # ---- the CLI: exit code 2 and one line naming the problem and the file
    Case(
        "cli: build into a user's folder",
        prepare=lambda f: user_files(f, "mine"),
        action=cli(lambda f: ["data", "build", "--out", f / "mine", "--no-progress"], r"mine is not empty"),
        check=cli_line("--overwrite"),
    ),
    Case(
        "cli: build into a read-only place",
        action=cli(
            lambda f: ["data", "build", "--out", read_only_target(f), "--only", *FAST_TASK, "--no-progress"],
            r"cannot write|permission|not permitted",
        ),
        check=cli_line("umedpt_reliability_db" if os.geteuid() == 0 else "locked"),
    ),
    Case(
        "cli: list a tasks.json of the wrong shape",
        prepare=tiny_database,
        action=cli(lambda f: ["data", "list", f / "db"], r"tasks\.json: the top level"),
        check=cli_line("tasks.json"),
    ),
    Case(
        "cli: list a folder without a database",
        action=cli(lambda f: ["data", "list", f / "none"], r"does not exist"),
        check=cli_line("umedpt data build"),
    ),
    Case(
        "cli: build an unknown task",
        action=cli(lambda f: ["data", "build", "--out", f / "out", "--only", "liver"], r"unknown task"),
        check=cli_line("liver"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_data_build_reliability(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
