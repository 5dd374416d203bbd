"""Progress in a log is one line per loop; on a terminal it is a tqdm bar."""

from __future__ import annotations

import io
import sys

from tqdm import tqdm

from umedpt_hf.evaluation.progress import LineProgress, progress


def test_not_a_terminal_gives_one_line_per_loop(capsys):
    bar = progress(range(3), desc="bars [umedpt] train", unit="batches")
    assert isinstance(bar, LineProgress)  # pytest's captured stderr is not a terminal
    assert list(bar) == [0, 1, 2]
    bar.set_postfix(loss="0.123")
    list(bar)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2 and "\r" not in err
    assert lines[0].startswith("bars [umedpt] train: 3 batches in ")
    assert lines[1].endswith(" s (loss=0.123)")


def test_disabled_prints_nothing_and_a_terminal_gets_a_bar(capsys, monkeypatch):
    silent = progress(range(2), desc="x", enabled=False)
    silent.set_postfix(loss=1)
    assert list(silent) == [0, 1] and capsys.readouterr().err == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress(range(2), desc="x")
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1]
