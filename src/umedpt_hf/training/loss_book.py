"""Per-task losses kept on the device: read back to the host only when someone looks (logging, callbacks, the end).

On a GPU each read of a tensor value (`.item()`, `float()`, `.tolist()`) waits for the queued work to finish. The
loop keeps every loss as a device tensor, sums the logging window on the device, and fuses all the checks of a round
into one read (`RoundCheck`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from accelerate import Accelerator


class RoundLosses(Mapping[str, list[float]]):
    """task -> the losses of its batches in one round; the values are read from the device on first access."""

    def __init__(self, entries: Sequence[tuple[str, torch.Tensor]]) -> None:
        self.entries = list(entries)
        self._values: dict[str, list[float]] | None = None

    def stacked(self) -> torch.Tensor:
        """All losses of the round as one float32 device tensor (no host read)."""
        return torch.stack([loss.float() for _, loss in self.entries])

    def _read(self) -> dict[str, list[float]]:
        if self._values is None:
            values = self.stacked().tolist() if self.entries else []
            self._values = {}
            for (task, _), value in zip(self.entries, values):
                self._values.setdefault(task, []).append(value)
        return self._values

    def __getitem__(self, task: str) -> list[float]:
        return self._read()[task]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(task for task, _ in self.entries))

    def __len__(self) -> int:
        return len(dict.fromkeys(task for task, _ in self.entries))

    def means(self) -> LazyMeans:
        return LazyMeans(self)


class LazyMeans(Mapping[str, float]):
    """task -> mean loss of the round, read on first access."""

    def __init__(self, losses: RoundLosses) -> None:
        self.losses = losses

    def __getitem__(self, task: str) -> float:
        values = self.losses[task]
        return sum(values) / len(values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.losses)

    def __len__(self) -> int:
        return len(self.losses)


class LossWindow:
    """Sums and counts of each task's losses since the last log, on the device."""

    def __init__(self, task_names: Sequence[str], device: torch.device) -> None:
        self.task_names = list(task_names)
        self.index = {task: i for i, task in enumerate(self.task_names)}
        self.sums = torch.zeros(len(self.task_names), dtype=torch.float32, device=device)
        self.counts = torch.zeros(len(self.task_names), dtype=torch.float32)

    def add(self, losses: RoundLosses) -> None:
        for task, loss in losses.entries:  # device-side adds: no host read, no host-to-device copy
            position = self.index[task]
            self.sums[position] += loss.detach().float()
            self.counts[position] += 1

    def read(self, accelerator: Accelerator) -> dict[str, float]:
        """Mean loss per task over the window and over all ranks (one reduction, one read); resets the window."""
        totals = torch.stack([self.sums, self.counts.to(self.sums.device)])
        totals = accelerator.reduce(totals, reduction="sum").cpu()
        self.sums.zero_()
        self.counts.zero_()
        return {task: float(totals[0, i] / totals[1, i]) for i, task in enumerate(self.task_names) if totals[1, i] > 0}


class RoundCheck:
    """The one host read of a round: non-finite losses, a non-finite gradient norm and a stop request, fused.

    Under several processes the flags are reduced (max) first, so that every rank stops at the same round.
    """

    def __init__(self, accelerator: Accelerator) -> None:
        self.accelerator = accelerator

    def read(
        self, losses: torch.Tensor | None, grad_norm: torch.Tensor | None, stop_requested: bool
    ) -> tuple[bool, bool, bool]:
        """(a loss is non-finite, the gradient norm is non-finite, some rank asked to stop)."""
        device = self.accelerator.device
        zero = torch.zeros((), device=device)  # made on the device: a host-made tensor would be a copy (and a wait)
        parts = [
            torch.logical_not(torch.isfinite(losses).all()).float() if losses is not None else zero,
            torch.logical_not(torch.isfinite(grad_norm)).float() if grad_norm is not None else zero,
            torch.full((), float(stop_requested), device=device),
        ]
        flags = torch.stack([part.to(device) for part in parts])
        if self.accelerator.num_processes > 1:
            flags = self.accelerator.reduce(flags, reduction="sum")
        bad_loss, bad_norm, stop = (value > 0 for value in flags.tolist())
        return bad_loss, bad_norm, stop
