"""Stop training cleanly on SIGTERM / SIGINT: finish the current round, checkpoint, exit with a clear line.

The first signal sets a flag that the loop reads after each round; a second SIGINT aborts at once (the last checkpoint
stays intact: checkpoints are renamed into place only when complete). `accelerate launch` (single process) does not
forward signals to the training process, so a process started by it asks the kernel for SIGTERM when the launcher
dies (`PR_SET_PDEATHSIG`, Linux): killing the launcher then stops the trainer cleanly too.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

_PR_SET_PDEATHSIG = 1
HANDLED = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal; the message names the signal, the step and the checkpoint to resume from."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


class GracefulStop:
    """Context manager: while active, SIGTERM / SIGINT set `requested` instead of killing the process."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for number in HANDLED:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal_number = number
        print(
            f"received {signal.Signals(number).name}: finishing the current round, then saving a checkpoint "
            "(press Ctrl-C again to abort at once)",
            file=sys.stderr,
            flush=True,
        )


def follow_launcher() -> None:
    """Under `accelerate launch`, receive SIGTERM when the launcher process dies (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux") or not _parent_is_accelerate_launcher():
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _parent_is_accelerate_launcher() -> bool:
    try:
        command = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"accelerate") for part in command) and b"launch" in command


def signal_name(number: int | None) -> str:
    return signal.Signals(number).name if number else "a signal"
