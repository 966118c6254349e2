"""Run logs: append-only ``metrics.jsonl`` and, when tensorboard is installed, TensorBoard scalars and images."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("nicegan")


class RunLogger:
    """Writes one JSON object per line to ``RUN/metrics.jsonl`` and mirrors scalars/images to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._tb = None
        self._t0 = time.time()
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.debug("tensorboard not installed: logging to metrics.jsonl only")
            else:
                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def write(self, record: dict[str, Any]) -> None:
        """Append a record (``step`` and ``event`` keys by convention) to metrics.jsonl."""
        if not self.enabled:
            return
        record = {"time": round(time.time() - self._t0, 3), **record}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")

    def scalars(self, step: int, values: dict[str, float], event: str = "train") -> None:
        self.write({"event": event, "step": step, **values})
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def image(self, tag: str, step: int, arr: np.ndarray) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, arr, step, dataformats="HWC")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
