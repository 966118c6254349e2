"""Run logs: append-only ``metrics.jsonl`` and, when tensorboard is installed, TensorBoard scalars and images."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from nicegan.core.limits import LOG_LINE_BOUNDS, load_json
from nicegan.formats.run_folder import RunFolder

log = logging.getLogger("nicegan")


class RunLogger:
    """Writes one JSON object per line to ``RUN/metrics.jsonl`` and mirrors scalars/images to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.path = RunFolder(run_dir).metrics
        self._tb = None
        self._t0 = time.time()
        if enabled and resume_step is not None:
            repair_log(self.path, resume_step)
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.debug("tensorboard not installed: logging to metrics.jsonl only")
            else:
                self._tb = SummaryWriter(log_dir=str(RunFolder(run_dir).tensorboard))

    def write(self, record: dict[str, Any]) -> None:
        """Append a record (``step`` and ``event`` keys by convention) to metrics.jsonl."""
        if not self.enabled:
            return
        record = {"time": round(time.time() - self._t0, 3), **record}
        line = json.dumps(record, allow_nan=True) + "\n"
        with open(self.path, "a") as fh:  # one write per record: a kill leaves at most one torn line
            fh.write(line)

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


def repair_log(path: Path, resume_step: int) -> int:
    """Make ``metrics.jsonl`` consistent with a resume from ``resume_step``; returns the lines dropped.

    Records of steps after the checkpoint were logged by the interrupted process and are logged again by the
    resumed one, and a kill can tear the last line: both are dropped (the file is rewritten atomically).
    """
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    kept, dropped = [], 0
    for line in text.splitlines(keepends=True):
        try:
            rec = load_json(line, **LOG_LINE_BOUNDS, allow_nan=True)  # NaN: a diverged loss is logged as NaN
            ok = line.endswith("\n") and isinstance(rec, dict)
        except ValueError:  # BoundsError: torn, damaged or hostile
            ok = False
        step = rec.get("step") if ok else None
        if not ok or (isinstance(step, int) and step > resume_step):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
        log.info("metrics.jsonl: dropped %d record(s) logged after step %d by the interrupted run or torn by it",
                 dropped, resume_step)
    return dropped
