"""Starting and resuming runs in a run folder, without ever overwriting another run's checkpoints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nicegan import checkpoint
from nicegan.checkpoint import Checkpoint, latest_checkpoint
from nicegan.config import RunConfig, given, resolve_config
from nicegan.errors import CheckpointError, ConfigError, NiceganError
from nicegan.training.distributed import env_dist_info
from nicegan.training.loop import TrainResult, run_training


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``RUN/.lock`` so two processes never train into the same run folder."""
    if not env_dist_info().is_main:  # rank 0 holds the lock for the whole job
        yield
        return
    try:
        import fcntl
    except ImportError:  # not on POSIX: no locking
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise NiceganError(f"another nicegan process is training in {run_dir}") from None
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def start_run(cfg: RunConfig, run_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Train a new run in ``run_dir``; refuses a folder that already holds a run's checkpoint."""
    run_dir = Path(run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise NiceganError(f"--run-dir {run_dir} exists and is not a folder")
    existing = latest_checkpoint(run_dir)
    if existing is not None:
        raise NiceganError(f"{run_dir} already holds a run ({existing}); continue it with `nicegan resume {run_dir}` "
                           "or choose another --run-dir")
    with run_lock(run_dir):
        return run_training(cfg, run_dir, **kwargs)


def resume_config(ck: Checkpoint, max_steps: int | None = None, data_root: str | None = None,
                  device: str | None = None, fast_paths: dict[str, Any] | None = None) -> RunConfig:
    """The run config stored in a checkpoint, with the few fields a resume may change.

    ``fast_paths``: ``train.amp`` / ``channels_last`` / ``compile`` / ``fused_adam`` / ``cudnn_benchmark`` values
    (keys with the ``train.`` prefix), which change speed, not the model (a checkpoint written with one setting
    resumes with another).
    """
    changes = {"train.max_steps": max_steps, "train.device": device, "data.root": data_root, **(fast_paths or {})}
    try:
        return resolve_config(ck.config, given(changes))
    except ConfigError as e:
        raise CheckpointError(f"the config stored in {ck.path} cannot be used: {e}") from None


def resume_run(run_dir: str | Path, max_steps: int | None = None, data_root: str | None = None,
               device: str | None = None, fast_paths: dict[str, Any] | None = None, **kwargs: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its latest checkpoint with the config saved in it."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise NiceganError(f"run folder not found: {run_dir}")
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise NiceganError(f"{run_dir} has no checkpoint to resume from (expected {run_dir}/checkpoints/latest.pt)")
    with run_lock(run_dir):
        ck = checkpoint.load(latest)
        cfg = resume_config(ck, max_steps, data_root, device, fast_paths)
        if ck.step >= cfg.train.max_steps:
            return TrainResult(run_dir, ck.step, latest)
        return run_training(cfg, run_dir, ckpt=ck, **kwargs)
