"""Progress of long loops that stays readable in a log: a tqdm bar on a terminal, one line per loop otherwise.

A tqdm bar written to a file or a pipe becomes one enormous line of carriage-return redraws. When standard error is
not a terminal, `progress` draws no bar and writes a single line when the loop ends (`desc: 12 batches in 3.1 s`,
with the last postfix, e.g. the loss).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm


class LineProgress:
    """Iterates like tqdm (with `set_postfix`) and writes one summary line to standard error when the loop ends."""

    def __init__(self, iterable: Iterable, desc: str, unit: str, stream: Any = None):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.postfix: dict[str, Any] = {}

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def __iter__(self) -> Iterator:
        started, count = time.perf_counter(), 0
        for item in self.iterable:
            count += 1
            yield item
        extra = ", ".join(f"{key}={value}" for key, value in self.postfix.items())
        line = f"{self.desc}: {count} {self.unit} in {time.perf_counter() - started:.1f} s"
        print(line + (f" ({extra})" if extra else ""), file=self.stream, flush=True)


class _Silent:
    def __init__(self, iterable: Iterable):
        self.iterable = iterable

    def set_postfix(self, **values: Any) -> None:
        pass

    def __iter__(self) -> Iterator:
        return iter(self.iterable)


def progress(iterable: Iterable, *, desc: str, total: int | None = None, enabled: bool = True, unit: str = "it"):
    """A tqdm bar over `iterable` when standard error is a terminal, else a `LineProgress`; nothing when disabled."""
    if not enabled:
        return _Silent(iterable)
    isatty = getattr(sys.stderr, "isatty", None)
    if callable(isatty) and isatty():
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False)
    return LineProgress(iterable, desc, unit)
