"""The table-driven frame of the reliability suite: one `Case` per bad input or fault.

Each area's file (`test_reliability_<area>.py`) defines a list of `Case`s and runs them with `run_case`:

    CASES = [
        Case("mask value beyond the classes", prepare=write_bad_mask, action=load_it, error=ValueError,
             phrase=r"mask value 300 .* 3 classes"),
        Case("empty box list is fine", action=..., check=lambda result, folder: ...),
    ]

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_area(case, tmp_path):
        run_case(case, tmp_path)

`run_case` checks, for every case: the exception class (or, for a valid edge case, `check` on the result), a phrase
that names the problem (a case-insensitive regular expression on the message), and that nothing in the case folder
outside `folder / "out"` changed (no file modified, deleted or added). `run_cli` runs the `umedpt` command in-process
and checks the CLI contract: exit code 2 and one line on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTPUT_FOLDER = "out"


@dataclass(frozen=True)
class Case:
    """One reliability case.

    Args:
        id: A short description, used as the test id.
        action: `action(folder, prepared)` does what a user would do; outputs may only go under `folder / "out"`.
        prepare: `prepare(folder)` writes the inputs (bad files, planted payloads); its return value is `prepared`.
        error: The exception class expected (a tuple for alternatives); None for a valid edge case.
        phrase: A case-insensitive regular expression the error message must contain (required with `error`).
        check: For a valid edge case: `check(result, folder)` asserts that the result is correct.
    """

    id: str
    action: Callable[[Path, Any], Any]
    prepare: Callable[[Path], Any] | None = None
    error: type[BaseException] | tuple[type[BaseException], ...] | None = None
    phrase: str = ""
    check: Callable[[Any, Path], None] | None = None

    def __post_init__(self) -> None:
        if self.error is not None and not self.phrase:
            raise ValueError(f"case {self.id!r}: an expected error needs a phrase that names the problem")
        if self.error is None and self.check is None:
            raise ValueError(f"case {self.id!r}: a valid edge case needs a check of its result")


def case_id(case: Case) -> str:
    return case.id


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `folder`, except under `folder / "out"`."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts and relative.parts[0] == OUTPUT_FOLDER:
            continue
        if path.is_file():
            found[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_unchanged(before: dict[str, str], after: dict[str, str], case: str) -> None:
    changed = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    removed = sorted(before.keys() - after.keys())
    added = sorted(after.keys() - before.keys())
    problems = [f"{label}: {paths}" for label, paths in (("changed", changed), ("deleted", removed), ("added", added))]
    assert not (changed or removed or added), f"case {case!r} touched files outside out/: " + "; ".join(problems)


def run_case(case: Case, folder: Path) -> Any:
    """Prepare, act, and check the error (class and phrase) or the result, and that no input file changed."""
    folder.mkdir(parents=True, exist_ok=True)
    prepared = case.prepare(folder) if case.prepare is not None else None
    before = snapshot(folder)
    result = None
    if case.error is None:
        result = case.action(folder, prepared)
        case.check(result, folder)
    else:
        try:
            case.action(folder, prepared)
        except case.error as error:
            message = str(error)
            assert re.search(case.phrase, message, flags=re.IGNORECASE | re.DOTALL), (
                f"case {case.id!r}: the message does not name the problem ({case.phrase!r}): {message!r}"
            )
        else:
            raise AssertionError(f"case {case.id!r}: expected {case.error}, but nothing was raised")
    assert_unchanged(before, snapshot(folder), case.id)
    return result


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run `umedpt ARGV` in-process; returns (exit code, stdout, stderr)."""
    from umedpt_hf.cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return int(code or 0), stdout.getvalue(), stderr.getvalue()


def assert_cli_error(argv: Sequence[str], phrase: str) -> str:
    """The CLI contract for bad input: exit code 2 and exactly one line on stderr that matches `phrase`."""
    code, _, err = run_cli(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"umedpt {' '.join(argv)}: exit code {code}, expected 2; stderr: {err!r}"
    assert len(lines) == 1, f"umedpt {' '.join(argv)}: expected one line on stderr, got {len(lines)}: {err!r}"
    assert re.search(phrase, lines[0], flags=re.IGNORECASE), f"{lines[0]!r} does not match {phrase!r}"
    return lines[0]
