"""The generic training loop: phases, per-phase optimizers and LR, logging, samples, checkpoints, NaN guard.

Models own the maths (their phases' losses); this loop owns the mechanics. Each step draws one unpaired batch and
runs :func:`nicegan.training.step.train_step` with this run's autocast, NaN guard and gradient averaging over ranks.
The run's state is one :class:`~nicegan.formats.checkpoint.Checkpoint` (``Trainer.state_dict`` /
``load_state_dict``). Runs are seeded and, on CPU, bit-for-bit repeatable, including across a stop and resume.

Opt-in fast paths (``train.*``): ``amp`` bf16/fp16 autocast (fp16 with a gradient scaler per phase),
``channels_last``, ``compile`` (``torch.compile`` of every net), ``fused_adam``, ``cudnn_benchmark``; and
``checkpoint_activations`` (memory on demand: :mod:`nicegan.nn.recompute`). Multi-process
training under torchrun: :mod:`nicegan.training.distributed`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nicegan.configs.schema import RunConfig
from nicegan.core.errors import CheckpointError, ConfigError, NiceganError, TrainingDiverged
from nicegan.core.files import describe_os_error, writable_dir
from nicegan.core.process import ThreadGovernor, announce_threads, current_policy
from nicegan.core.progress import hms, reporter, use_bar
from nicegan.core.runtime import resolve_device, seed_everything
from nicegan.core.version import __version__
from nicegan.core.visual import save_png, visuals_grid
from nicegan.data import build_train_loader, open_domain
from nicegan.data.check import dataset_summary
from nicegan.data.sources import ImageSource
from nicegan.data.transforms import test_transform
from nicegan.formats import checkpoint as ckpt_format
from nicegan.formats.checkpoint import Checkpoint, capture_rng, latest_checkpoint, restore_rng
from nicegan.formats.run_folder import RunFolder
from nicegan.models import create_model
from nicegan.models.base import ClassifierModel
from nicegan.nn.compiled import compile_nets, inductor_cache_dir
from nicegan.nn.recompute import checkpoint_blocks
from nicegan.training import distributed as D
from nicegan.training.evaluator import Evaluator
from nicegan.training.logging import RunLogger
from nicegan.training.optim import build_optimizers, set_lr
from nicegan.training.step import train_step

log = logging.getLogger("nicegan")

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainResult:
    """What a call of :func:`run_training` did."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    logs: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    max_steps: int | None = None  # the schedule's end (the step an uninterrupted run reaches)

    def stopped_line(self) -> str:
        """One line for a run stopped before its end (Ctrl-C or ``stop_at``): where, and the command continuing it."""
        import shlex

        of = f" of {self.max_steps:,}" if self.max_steps else ""
        return f"stopped at step {self.step:,}{of}; continue with: nicegan resume {shlex.quote(str(self.run_dir))}"


def fixed_sample_batch(train: ImageSource, test: ImageSource, size: int, n: int = 4) -> Tensor:
    """``n`` training and ``n`` test images (test transform): the same columns in every grid.

    The picks are spread evenly over each source, not its first files: class-sorted datasets (digits, folders named
    by class) would otherwise show one class only.
    """
    imgs = [test_transform(src.load(i), size) for src in (train, test) for i in _spread(len(src), n)]
    return torch.stack(imgs)


def _spread(length: int, n: int) -> list[int]:
    """``min(n, length)`` indices spread evenly from the first to the last."""
    k = min(n, length)
    return [0] if k == 1 else [round(i * (length - 1) / (k - 1)) for i in range(k)]


class _GracefulStop:
    """First Ctrl-C: finish the current step, save, stop. Second Ctrl-C: abort at once."""

    def __init__(self) -> None:
        self.requested = False
        self._prev: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step and saving a checkpoint (press Ctrl-C again to abort now)")

    def __enter__(self) -> _GracefulStop:
        if threading.current_thread() is threading.main_thread():
            self._prev = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


def _first_bad(logs: dict[str, Tensor]) -> tuple[str, float] | None:
    """The first non-finite loss term (name, value), or None; one device sync for all of them."""
    if bool(torch.isfinite(torch.stack([v.float() for v in logs.values()])).all()):
        return None
    return next((k, float(v)) for k, v in logs.items() if not torch.isfinite(v))


class Trainer:
    """One training run: builds everything from the config (and a checkpoint), then :meth:`run`."""

    def __init__(self, cfg: RunConfig, run_dir: Path, ckpt: Checkpoint | None = None,
                 progress: bool | None = None, tensorboard: bool = True) -> None:
        self.cfg, self.tc, self.run_dir = cfg, cfg.train, Path(run_dir)
        tc = self.tc
        self.dist = D.env_dist_info()
        self.device = D.rank_device(resolve_device(tc.device), self.dist)
        D.init(self.dist, self.device)
        if tc.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        self.memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format

        seed_everything(tc.seed)  # identical initial weights on every rank
        self.model = create_model(cfg.model_name, cfg.model).to(self.device, memory_format=self.memory_format)
        self.optimizers = build_optimizers(self.model, tc, fused=True if tc.fused_adam else None)
        self.scalers = ({p: torch.amp.GradScaler(self.device.type) for p in self.model.phases}
                        if tc.amp == "fp16" else {})
        self.step: int = 0
        self.extra: dict[str, Any] = {}
        if ckpt is not None:
            self.load_state_dict(ckpt)
        else:
            D.broadcast_module(self.model)
            if self.dist.active:  # each rank its own stream of training randomness (noise, pools)
                seed_everything(tc.seed * self.dist.world + self.dist.rank)
        if tc.checkpoint_activations:  # memory on demand (nicegan.nn.recompute); gradients bit for bit the same
            checkpoint_blocks(self.model.nets)
        if tc.compile:
            compile_nets(self.model.nets.values(), self.device)

        size, root, strict = cfg.model.img_size, cfg.data.root, cfg.data.strict
        if self.dist.is_main:  # a read-only or full run folder fails now, not at the first save hours later
            writable_dir(ckpt_format.checkpoint_dir(self.run_dir), "checkpoint folder")
        self.cache = writable_dir(RunFolder(self.run_dir).cache, "run cache folder")
        src = {d: open_domain(root, "train", d, strict, self.cache, progress) for d in "AB"}
        test = {d: open_domain(root, "test", d, strict, self.cache, progress) for d in "AB"}
        if self.dist.is_main:  # the same line `nicegan data check` ends with
            counts = {f"{split}{d}": len(part[d]) for split, part in (("train", src), ("test", test)) for d in "AB"}
            log.info("%s", dataset_summary(root, counts))
        labelled = isinstance(self.model, ClassifierModel)  # its classifier learns from labelled A batches
        if labelled and src["A"].labels is None:
            raise ConfigError(f"this {cfg.model_name} configuration trains a classifier on labelled domain A, but "
                              f"{root} has no labels (use data builtin:digits)", option="data")
        self.loader = build_train_loader(
            src["A"], src["B"], img_size=size, margin=cfg.data.resize_margin, flip=cfg.data.flip, seed=tc.seed,
            batch_size=tc.batch_size, start_step=self.step, num_workers=cfg.data.num_workers, device=self.device,
            rank=self.dist.rank, world=self.dist.world, with_labels=labelled)
        self.samples = {d: self._to_device(fixed_sample_batch(src[d], test[d], size)) for d in "AB"}
        main = self.dist.is_main
        self.evaluator = Evaluator(cfg, self.device, self.cache) if tc.eval_every and main else None
        self.logger = RunLogger(self.run_dir, enabled=main, tensorboard=tensorboard,
                                resume_step=self.step if ckpt is not None else None)
        self.progress = progress
        self.show_bar = use_bar(progress) and main
        if main:
            RunFolder(self.run_dir).config.write_text(cfg.to_yaml())
            self.logger.write({"event": "start", "step": self.step, "max_steps": tc.max_steps,
                               "device": str(self.device), "world_size": self.dist.world,
                               "toolkit_version": __version__, "images_a": len(src["A"]), "images_b": len(src["B"])})

    def state_dict(self, rng_per_rank: list[dict[str, Any]] | None = None,
                   model_extra_per_rank: list[dict[str, Any]] | None = None) -> Checkpoint:
        """The checkpoint record of the current state (``*_per_rank``: gathered from every rank under torchrun)."""
        return Checkpoint(
            model=self.cfg.model_name, config=self.cfg.to_dict(), step=self.step,
            nets={k: v.state_dict() for k, v in self.model.nets.items()},
            optimizers={k: o.state_dict() for k, o in self.optimizers.items()},
            scalers={k: s.state_dict() for k, s in self.scalers.items()},
            model_extra=self.model.extra_state(), model_extra_per_rank=model_extra_per_rank or [],
            rng=capture_rng(), rng_per_rank=rng_per_rank or [], extra=self.extra)

    def load_state_dict(self, ck: Checkpoint) -> None:
        """Restore nets, optimizers, scalers, step, model extra state and random generators from ``ck``."""
        where = ck.path or "checkpoint"
        ckpt_format.load_nets(self.model.nets, ck.nets, where=where, model=self.cfg.model_name)
        try:
            for phase, opt in self.optimizers.items():
                opt.load_state_dict(ck.optimizers[phase])
                ckpt_format.check_optimizer_state(opt, where)
            for phase, scaler in self.scalers.items():
                if phase in ck.scalers:
                    scaler.load_state_dict(ck.scalers[phase])
        except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as e:
            detail = " ".join(str(e).split())[:200]
            raise CheckpointError(f"optimizer state in {where} does not fit the model: {detail}") from None
        self.step, self.extra = ck.step, dict(ck.extra)
        extras = ck.model_extra_per_rank
        same_world = self.dist.active and len(extras) == self.dist.world
        self.model.load_extra_state((extras[self.dist.rank] if same_world else ck.model_extra) or {})
        per_rank = ck.rng_per_rank
        if self.dist.active and len(per_rank) == self.dist.world:
            restore_rng(per_rank[self.dist.rank], where)
        elif self.dist.active:
            log.warning("the checkpoint was written by %d process(es), this run has %d: random streams restart",
                        max(1, len(per_rank)), self.dist.world)
            seed_everything(self.tc.seed * self.dist.world + self.dist.rank + 7919 * self.step)
        else:
            restore_rng(ck.rng, where)

    def _to_device(self, x: Tensor) -> Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.tc.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AMP_DTYPES[self.tc.amp])

    def _kept_checkpoint(self) -> str:
        latest = latest_checkpoint(self.run_dir)
        return f"the last good checkpoint is kept: {latest}" if latest else "no checkpoint had been written yet"

    def _check_finite(self, phase: str, logs: dict[str, Tensor]) -> None:
        """Stop every rank together when a loss term is NaN or infinite; the last good checkpoint stays."""
        bad = _first_bad(logs)
        if not D.all_true(bad is None, self.device):
            name, value = bad or ("on another rank", float("nan"))
            raise TrainingDiverged(f"training stopped at step {self.step}: loss {name} is {value} (non-finite); "
                                   f"{self._kept_checkpoint()}")

    def _average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        D.average_gradients(params, self.dist.world)

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step of :func:`nicegan.training.step.train_step` with this run's mechanics."""
        return train_step(self.model, self.optimizers, batch, scalers=self.scalers, autocast=self._autocast,
                          check=self._check_finite, reduce_grads=self._average_gradients)

    def save(self, numbered: bool) -> Path | None:
        """Checkpoint (rank 0 writes; every rank contributes its RNG state and model extra state, e.g. pools)."""
        rngs = extras = None
        if self.dist.active:
            rngs = D.gather_objects(capture_rng())
            extras = D.gather_objects(self.model.extra_state())
        if not self.dist.is_main:
            return None
        return ckpt_format.save(self.state_dict(rngs, extras), self.run_dir, numbered=numbered,
                                keep_last=self.tc.keep_last)

    def save_samples(self) -> None:
        if not self.dist.is_main:
            return
        self.model.eval()
        with torch.no_grad():
            for direction, dom in (("a2b", "A"), ("b2a", "B")):
                arr = visuals_grid(self.model.visuals(self.samples[dom], direction))
                save_png(arr, RunFolder(self.run_dir).samples / f"{direction}_{self.step:07d}.png")
                self.logger.image(f"samples/{direction}", self.step, arr)
        self.model.train()

    def evaluate(self) -> None:
        if self.evaluator is not None:
            values, improved = self.evaluator.run(self.model, self.extra, self.step)
            self.logger.scalars(self.step, values, event="eval")
            for direction in improved:
                ckpt_format.save_best(self.state_dict(), self.run_dir, direction)
            if not self.show_bar:
                log.info("eval at step %d: %s", self.step, "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
        D.barrier()  # the other ranks wait for rank 0's evaluation

    def _log(self, acc: dict[str, Tensor], n: int, dt: float, lr: float, bar: Any) -> dict[str, float]:
        logs = D.mean_over_ranks({k: float(v) / n for k, v in acc.items()}, self.device)
        self.logger.scalars(self.step, {**logs, "lr": lr, "sec_per_step": dt})
        totals = {k.split("/")[0]: round(v, 3) for k, v in logs.items() if k.endswith("/total")}
        bar.set_postfix(totals, refresh=False)
        if not self.show_bar and self.dist.is_main:
            eta = hms(dt * (self.tc.max_steps - self.step))
            log.info("step %d/%d  %s  %.3f s/step  eta %s", self.step, self.tc.max_steps,
                     "  ".join(f"{k} {v:.4g}" for k, v in totals.items()), dt, eta)
        return logs

    def run(self, stop_at: int | None = None) -> TrainResult:
        """Train to ``train.max_steps`` (or ``stop_at``); always ends with a checkpoint at the last step."""
        tc = self.tc
        if self.dist.is_main:
            if self.device.type == "cpu":
                announce_threads()
            log.info("training %s from step %d to %d on %s (%s)", self.cfg.model_name, self.step, tc.max_steps,
                     self.device, self.run_dir)
            if tc.compile:  # a silent first step of minutes would look like a hang
                log.info("torch.compile: the first step compiles the networks (a few minutes on a CPU the first "
                         "time, seconds when the kernels are cached)")
        bar = reporter(tc.max_steps, "training", unit="step", progress=self.progress, initial=self.step,
                       leave=True, quiet=not self.dist.is_main)
        acc: dict[str, Tensor] = {}
        n_acc, t_window, last_logs = 0, time.perf_counter(), {}
        compiling = tc.compile
        ckpt_path = latest_checkpoint(self.run_dir)
        saved, sampled = self.step, -1
        self.model.train()
        it = iter(self.loader)
        # follows other processes' load with the thread count (CPU only, auto policy only, never under DDP: the
        # ranks' threads were split on purpose)
        governor = ThreadGovernor(current_policy() if self.device.type == "cpu" and self.dist.world == 1 else None)
        with _GracefulStop() as stop:
            try:
                while self.step < tc.max_steps:
                    governor.tick()
                    batch = {k: self._to_device(v) for k, v in next(it).items()}
                    self.step += 1
                    lr = set_lr(self.optimizers, self.step, tc)
                    t_step = time.perf_counter()
                    for k, v in self.train_step(batch).items():
                        acc[k] = acc[k] + v if k in acc else v.clone()
                    n_acc += 1
                    if compiling:  # the first step of a compiled run compiles the networks: say so, time apart
                        compiling = False
                        t_window = time.perf_counter()
                        if self.dist.is_main:
                            log.info("torch.compile: the first step took %.1f s (compiling the networks; the kernels "
                                     "are cached in %s for later runs)", t_window - t_step, inductor_cache_dir())
                    bar.update(1)
                    step = self.step
                    if (tc.log_every and step % tc.log_every == 0) or step == tc.max_steps:
                        last_logs = self._log(acc, n_acc, (time.perf_counter() - t_window) / n_acc, lr, bar)
                        acc, n_acc, t_window = {}, 0, time.perf_counter()
                    if tc.sample_every and step % tc.sample_every == 0:
                        self.save_samples()
                        sampled = step
                    if tc.eval_every and (step % tc.eval_every == 0 or step == tc.max_steps):
                        self.evaluate()
                    if (tc.ckpt_every and step % tc.ckpt_every == 0) or step == tc.max_steps:
                        ckpt_path, saved = self.save(numbered=True) or ckpt_path, step
                    if not D.all_true(not stop.requested and step != stop_at, self.device):
                        break
            except TrainingDiverged as e:
                self.logger.write({"event": "diverged", "step": self.step, "message": str(e)})
                raise
            except OSError as e:  # a full or read-only disk under a sample, a log line or a checkpoint
                raise NiceganError(f"{describe_os_error(e)} at step {self.step}; "
                                   f"{self._kept_checkpoint()}") from None
            finally:
                bar.close()
                self.logger.close()
            if saved != self.step:  # stopped early (Ctrl-C or stop_at)
                ckpt_path = self.save(numbered=False) or ckpt_path
        if sampled != self.step:
            self.save_samples()
        return TrainResult(self.run_dir, self.step, ckpt_path, last_logs, interrupted=self.step < tc.max_steps,
                           max_steps=tc.max_steps)


def run_training(cfg: RunConfig, run_dir: Path, ckpt: Checkpoint | None = None, progress: bool | None = None,
                 tensorboard: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train ``cfg`` in ``run_dir`` from scratch, or continue from ``ckpt`` (a loaded checkpoint).

    ``stop_at`` ends the call (with a checkpoint) at that step without changing the schedule, which still runs to
    ``train.max_steps``; ``nicegan resume`` continues exactly where it stopped.
    """
    try:
        return Trainer(cfg, run_dir, ckpt, progress, tensorboard).run(stop_at)
    finally:
        D.shutdown()
