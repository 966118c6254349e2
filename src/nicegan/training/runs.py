"""Starting and resuming runs in a run folder, without ever overwriting another run's checkpoints."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nicegan.configs.schema import RunConfig, given, resolve_config
from nicegan.core.errors import CheckpointError, ConfigError, NiceganError, TrainingDiverged
from nicegan.core.files import describe_os_error, remove_stale_temp_files
from nicegan.formats import checkpoint
from nicegan.formats.checkpoint import Checkpoint
from nicegan.formats.run_folder import RunFolder
from nicegan.training.distributed import env_dist_info
from nicegan.training.loop import TrainResult, run_training

log = logging.getLogger("nicegan")


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
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(run_dir / ".lock", "a+")  # noqa: SIM115 - held open while the run trains
    except OSError as e:
        raise NiceganError(describe_os_error(e, f"cannot use the run folder {run_dir}")) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise NiceganError(f"another nicegan process is training in {run_dir}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def _clean_stale(run_dir: Path) -> None:
    """Delete temporary files that writers killed mid-save left behind (rank 0, under the run lock: none is live)."""
    if not env_dist_info().is_main:
        return
    removed = remove_stale_temp_files(checkpoint.checkpoint_dir(run_dir), RunFolder(run_dir).cache)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted save (%s)", len(removed),
                 ", ".join(p.name for p in removed[:3]) + (" ..." if len(removed) > 3 else ""))


def start_run(cfg: RunConfig, run_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Train a new run in ``run_dir``; refuses a folder that already holds a run's checkpoint.

    If the run cannot start (bad data, bad config, Ctrl-C before the first step), a run folder this call created is
    removed again, under the lock, so a failed attempt leaves nothing behind; a run that trained a step keeps
    everything it wrote.
    """
    run_dir = Path(run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise NiceganError(f"run_dir {run_dir} exists and is not a folder", option="run_dir")
    created = not run_dir.exists()
    with run_lock(run_dir):  # a second process fails here, before it could touch anything
        try:
            existing = checkpoint.run_checkpoints(run_dir)
            if existing:  # checked under the lock: no other process can be writing one now
                raise NiceganError(f"{run_dir} already holds a run ({existing[0]}); continue it with "
                                   f"`nicegan resume {run_dir}` or choose another run_dir", option="run_dir")
            _clean_stale(run_dir)
            return run_training(cfg, run_dir, **kwargs)
        except (NiceganError, KeyboardInterrupt, OSError) as e:
            if created and not isinstance(e, TrainingDiverged) and not _trained(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
            raise


def _trained(run_dir: Path) -> bool:
    """Whether a run folder holds the result of any training step (a checkpoint or a logged step)."""
    if checkpoint.run_checkpoints(run_dir):
        return True
    return any(rec.get("event") == "train" for rec in RunFolder(run_dir).records())


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


def run_folder(path: str | Path) -> Path:
    """The run folder ``path`` names: the folder itself, or the run of ``RUN/checkpoints/latest.pt``."""
    p = Path(path).expanduser()
    if p.is_dir():
        return p
    if p.name == checkpoint.LATEST and p.parent.name == RunFolder.CHECKPOINTS and p.is_file():
        return p.parent.parent
    if p.exists():
        raise NiceganError(f"{p} is a file: resume takes the run folder (the one holding checkpoints/), e.g. "
                           f"nicegan resume {p.parent.parent if p.parent.name == RunFolder.CHECKPOINTS else p.parent}")
    raise NiceganError(f"run folder not found: {p}")


def resume_run(run_dir: str | Path, max_steps: int | None = None, data_root: str | None = None,
               device: str | None = None, fast_paths: dict[str, Any] | None = None, **kwargs: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its latest checkpoint with the config saved in it (from the newest
    intact numbered one if ``latest.pt`` is damaged)."""
    run_dir = run_folder(run_dir)
    if not checkpoint.run_checkpoints(run_dir):
        raise NiceganError(f"{run_dir} has no checkpoint to resume from (expected {run_dir}/checkpoints/latest.pt)")
    with run_lock(run_dir):
        _clean_stale(run_dir)
        ck = checkpoint.load_run(run_dir)
        cfg = resume_config(ck, max_steps, data_root, device, fast_paths)
        if max_steps is not None and max_steps < ck.step:
            raise NiceganError(f"max_steps={max_steps} is below the run's current step {ck.step}; give a larger "
                               "value to train further", option="max_steps")
        if ck.step >= cfg.train.max_steps:
            return TrainResult(run_dir, ck.step, Path(ck.path))
        return run_training(cfg, run_dir, ckpt=ck, **kwargs)
