"""What one call of `MultiTaskTrainer.train` keeps besides the model: the log, its speed window, trackers,
validation with the best export and the curves, and the errors that stop a round."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import broadcast_object_list

from .curves import CURVES_FILE, plot_curves
from .logging import Console, TrainingLogger, read_log
from .loss_book import LossWindow, RoundLosses

if TYPE_CHECKING:
    from .trainer import MultiTaskTrainer


class TrainingRun:
    """Logging, speed, validation and best-model bookkeeping of one `train()` call."""

    def __init__(self, trainer: MultiTaskTrainer, logger: TrainingLogger) -> None:
        self.trainer, self.logger = trainer, logger
        self.images = 0
        self.started = time.perf_counter()
        self._window_started, self._window_images = self.started, 0
        self.stopped_early = False
        self._trackers = False

    def start(self, hyperparameters: Mapping[str, Any], project: str) -> None:
        acc = self.trainer.accelerator
        self.started = self._window_started = time.perf_counter()
        if acc.log_with:
            acc.init_trackers(project, config=dict(hyperparameters))
            self._trackers = True
            self.logger.accelerator = acc

    def log_training(self, window: LossWindow, grad_norm: torch.Tensor | None) -> dict[str, Any]:
        """One record of the logging window (the only host reads besides the round's fused check)."""
        trainer, acc = self.trainer, self.trainer.accelerator
        now = time.perf_counter()
        window_images = (self.images - self._window_images) * acc.num_processes
        record: dict[str, Any] = {"step": trainer.step, "epoch": trainer.step / trainer.rounds_per_epoch}
        per_task = window.read(acc)
        record.update({f"loss/{task}": value for task, value in per_task.items()})
        record["loss"] = sum(per_task.values()) / len(per_task) if per_task else None
        for group in trainer.optimizer.param_groups:
            record[f"lr/{group.get('group_name', 'group')}"] = group["lr"]
        record["grad_norm"] = float(grad_norm) if grad_norm is not None else None
        record["images_per_second"] = window_images / max(now - self._window_started, 1e-9)
        record["images_seen"] = self.images * acc.num_processes
        self.logger.log(record)
        self._window_started, self._window_images = time.perf_counter(), self.images
        return record

    def validate(self, console: Console) -> bool:
        """Evaluate (main process), log, export `best/` when the validation loss sum improved; True if evaluated."""
        trainer, acc = self.trainer, self.trainer.accelerator
        if not trainer.validation_sets and acc.num_processes == 1:
            return False
        record = trainer.validate()
        if acc.is_main_process and record:
            record = {"step": trainer.step, **record}
            improved = trainer.best.update(record["eval/loss_sum"], trainer.step)
            record["eval/best_loss_sum"] = trainer.best.best_loss
            self.logger.log(record)
            console.note(
                f"validation at step {trainer.step}: loss sum {record['eval/loss_sum']:.4f}"
                + (
                    " (best so far)"
                    if improved
                    else f" (best {trainer.best.best_loss:.4f} at {trainer.best.best_step})"
                )
            )
            self.write_curves()
        state = trainer.best.state_dict()
        if acc.num_processes > 1:
            state = broadcast_object_list([state])[0]
            trainer.best.load_state_dict(state)
        if state.get("best_step") == trainer.step:
            trainer.export(trainer.output_dir / "best")
        self._window_started = time.perf_counter()
        return True

    def write_curves(self) -> None:
        if not self.logger.enabled or not self.logger.path.is_file():
            return
        path = plot_curves(read_log(self.logger.path), self.trainer.output_dir / CURVES_FILE)
        if self.trainer.run_folder is not None:
            self.trainer.run_folder.record([path])

    def finish(self) -> None:
        """Curves and the bookkeeping of the files this run wrote (main process)."""
        folder = self.trainer.run_folder
        if folder is None:
            return
        self.write_curves()
        written = [self.logger.path, self.trainer.output_dir / "tracking"]
        folder.record([path for path in written if path.exists()])

    def close(self) -> None:
        self.logger.close()
        folder = self.trainer.run_folder
        if folder is not None and self.logger.path.exists():
            folder.record([self.logger.path])


def nonfinite_loss_error(trainer: MultiTaskTrainer, losses: RoundLosses, error_class: type[Exception]) -> Exception:
    """The error for a NaN/inf loss: it names the first such task, the step and the last good checkpoint."""
    task, value = next(((task, v) for task, values in losses.items() for v in values if not math.isfinite(v)), ("?", 0))
    where = trainer.last_checkpoint or "none saved yet"
    return error_class(
        f"the loss of task {task!r} is {value} at training step {trainer.step + 1} (of {trainer.max_steps}); "
        f"training stopped before the optimizer step. Last good checkpoint: {where}. Check this task's data "
        "(NaN/inf pixels or labels) or lower the learning rate."
    )


def nonfinite_gradients_error(
    trainer: MultiTaskTrainer, total: torch.Tensor | None, error_class: type[Exception]
) -> Exception:
    """The error for a NaN/inf gradient norm with finite losses, naming the worst parameters."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    named = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(grad.detach().float()) for _, grad in named])
    ranked = sorted(zip(norms.tolist(), (name for name, _ in named)), key=lambda item: _badness(item[0]))
    worst = ", ".join(f"{name} ({value:.3g})" for value, name in ranked[:5])
    value = float(total) if total is not None else math.nan
    return error_class(
        f"the gradient norm is {value} at training step {trainer.step + 1} (of {trainer.max_steps}) although "
        f"every task's loss was finite; largest or non-finite gradients: {worst}. Training stopped before the "
        f"optimizer step. Last good checkpoint: {trainer.last_checkpoint or 'none saved yet'}. Try fp32 "
        "(mixed_precision='no'), larger images or a lower learning rate."
    )


def _badness(norm: float) -> tuple[int, float]:
    """Sort key: NaN first, then inf, then the largest finite norms."""
    return (0, 0.0) if math.isnan(norm) else (1, 0.0) if math.isinf(norm) else (2, -norm)
