"""The first-party logger: TensorBoard event files in the run folder.

``tensorboard --logdir runs`` then shows every run: the training curves (``train/``),
the evaluations (``eval/``) with a few drawn puzzles, the final strategy's accuracy
against compute (``strategy/``), and the run's config as hyper-parameters against
its final accuracies. A resumed run drops the points a killed process logged after
the checkpoint it resumes from (torch's ``SummaryWriter`` ``purge_step``), so no step
is logged twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from trm_core import Logger, hookimpl

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

#: The metrics the hyper-parameters are shown against in TensorBoard's HPARAMS tab.
HPARAM_METRICS = {"eval/exact_accuracy": 0.0, "eval/token_accuracy": 0.0}


class TensorBoard(Logger):
    """Event files in the run folder, written through torch's ``SummaryWriter``
    (opened at the first write)."""

    def __init__(self, run_dir, options: Any = None) -> None:
        super().__init__(run_dir, options)
        self._purge_after: int | None = None
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            earlier = any(self.run_dir.glob("events.out.tfevents.*"))
            after = self._purge_after
            purge = after + 1 if after is not None and earlier else None
            self._writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge)
            self._purge_after = None  # once: what this process writes stays
        return self._writer

    def start(self, config: Mapping[str, Any], step: int) -> None:
        if step:  # resumed: points logged after the checkpoint are dropped
            self._purge_after = step
            self.close()  # reopened, with the purge, at the next write
            return
        from torch.utils.tensorboard.summary import hparams

        clean = {
            key: value if isinstance(value, int | float | str | bool) else str(value)
            for key, value in config.items()
        }
        for summary in hparams(clean, dict(HPARAM_METRICS)):
            self.writer.file_writer.add_summary(summary)

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        for name, value in values.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def images(self, prefix: str, images: Mapping[str, np.ndarray], step: int) -> None:
        for name, image in images.items():
            self.writer.add_image(f"{prefix}/{name}", image, step, dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@hookimpl
def register_loggers(register):
    register("tensorboard", TensorBoard)
