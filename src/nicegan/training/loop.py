"""The generic training loop: phases, per-phase optimizers and LR, logging, samples, checkpoints, NaN guard.

Models own the maths (``compute_loss``); this loop owns the mechanics. For each step it draws one unpaired batch and
runs every phase of the model in order: only that phase's nets are trainable (gradients still flow through the
frozen ones), zero grads, loss, finite check, backward, optimizer step, ``after_phase``. Runs are seeded and, on CPU,
bit-for-bit repeatable, including across a stop and resume.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nicegan.config import RunConfig
from nicegan.data import build_train_loader, open_domain
from nicegan.data.sources import ImageSource
from nicegan.data.transforms import test_transform
from nicegan.errors import CheckpointError, ConfigError, TrainingDiverged
from nicegan.models.base import TranslationModel
from nicegan.registry import create_model
from nicegan.training.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    atomic_save,
    capture_rng,
    latest_checkpoint,
    restore_rng,
    save_checkpoint,
)
from nicegan.training.distributed import DistInfo, env_dist_info
from nicegan.training.logging import RunLogger
from nicegan.training.optim import build_optimizers, set_lr
from nicegan.version import __version__
from nicegan.visual import save_png, visuals_grid

log = logging.getLogger("nicegan")


@dataclass
class TrainResult:
    """What a call of :func:`run_training` did."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    logs: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit ``cuda`` without a GPU is a config error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {spec} but no CUDA device is available (use --device cpu)")
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_nets(model: TranslationModel, nets: dict[str, dict[str, Tensor]], names: tuple[str, ...] | None = None,
              where: str = "checkpoint") -> None:
    """Load state dicts into ``model.nets`` (all, or ``names``); CheckpointError naming the first mismatch."""
    for name in names or tuple(model.nets):
        if name not in nets:
            raise CheckpointError(f"{where} has no weights for {name!r}")
        try:
            model.nets[name].load_state_dict(nets[name])
        except RuntimeError as e:
            detail = " ".join(str(e).split())[:200]
            raise CheckpointError(f"{where} does not fit the {model.name} model ({name}): {detail}") from None


def make_checkpoint(cfg: RunConfig, model: TranslationModel, optimizers: dict[str, torch.optim.Optimizer],
                    step: int, extra: dict[str, Any], dist: DistInfo) -> dict[str, Any]:
    """The checkpoint dict of the current state (see :mod:`nicegan.training.checkpoint`)."""
    lr = {p: o.param_groups[0]["lr"] for p, o in optimizers.items()}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "toolkit_version": __version__,
        "model": cfg.model_name, "config": cfg.to_dict(), "step": step,
        "nets": {k: v.state_dict() for k, v in model.nets.items()},
        "model_extra": model.extra_state(),
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: {"kind": cfg.train.lr_decay, "step": step, "lr": lr[k]} for k in optimizers},
        "rng": capture_rng(),
        "data": {"draws_per_domain": step * cfg.train.batch_size * dist.world,
                 "batch_size": cfg.train.batch_size, "world_size": dist.world},
        "extra": extra,
    }


def fixed_sample_batch(train: ImageSource, test: ImageSource, size: int, n: int = 4) -> Tensor:
    """First ``n`` training and first ``n`` test images (test transform): the same columns in every grid."""
    imgs = [test_transform(src.load(i), size) for src in (train, test) for i in range(min(n, len(src)))]
    return torch.stack(imgs)


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

    def __exit__(self, *exc: Any) -> None:
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


class Evaluator:
    """Periodic FID/KID (paper protocol, both directions) on the test split, tracking the best FID per direction."""

    def __init__(self, cfg: RunConfig, device: torch.device, cache_dir: Path) -> None:
        from nicegan.metrics import FeatureExtractor, get_protocol, resolve_weights

        self.cfg, self.cache_dir = cfg, cache_dir
        weights = resolve_weights(cfg.train.inception_weights or None)
        self.ext = FeatureExtractor(get_protocol("paper"), weights, device)

    def run(self, model: TranslationModel, extra: dict[str, Any], step: int) -> tuple[dict[str, float], list[str]]:
        """Scores (logged names) and the directions whose FID improved on the best so far (``extra["best"]``)."""
        from nicegan.data import DIGITS
        from nicegan.evaluation.translation import evaluate_model

        res = evaluate_model(model, self.cfg.data.root, self.ext, ("a2b", "b2a"),
                             limit=self.cfg.train.eval_limit or None, progress=False, cache_dir=self.cache_dir)
        values: dict[str, float] = {}
        best = extra.setdefault("best", {})
        improved = []
        for d, r in res.items():
            values.update({f"eval/fid_{d}": r.fid, f"eval/kid_x100_{d}": 100 * r.kid_mean})
            if d not in best or r.fid < best[d]["fid"]:
                best[d] = {"fid": r.fid, "step": step}
                improved.append(d)
        if self.cfg.data.root == DIGITS:
            from nicegan.evaluation.digits import label_preservation

            values.update(label_preservation(model))
        return values, improved


def _check_finite(step: int, phase: str, loss: Tensor, logs: dict[str, Tensor], run_dir: Path) -> None:
    values = torch.stack([loss.detach().float()] + [v.float() for v in logs.values()])
    if bool(torch.isfinite(values).all()):
        return
    bad = next((k for k, v in logs.items() if not torch.isfinite(v)), f"{phase}/total")
    value = next((float(v) for k, v in logs.items() if k == bad), float(loss.detach()))
    latest = latest_checkpoint(run_dir)
    kept = f"the last good checkpoint is kept: {latest}" if latest else "no checkpoint had been written yet"
    raise TrainingDiverged(f"training stopped at step {step}: loss {bad} is {value} (non-finite); {kept}")


def _set_trainable(model: TranslationModel, phase_nets: tuple[str, ...]) -> None:
    for name, net in model.nets.items():
        net.requires_grad_(name in phase_nets)


def run_training(cfg: RunConfig, run_dir: Path, ckpt: dict[str, Any] | None = None,
                 progress: bool | None = None, tensorboard: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train ``cfg`` in ``run_dir`` from scratch, or continue from ``ckpt`` (a loaded checkpoint dict).

    ``stop_at`` ends the call (with a checkpoint) at that step without changing the schedule, which still runs to
    ``train.max_steps``; ``nicegan resume`` continues exactly where it stopped.
    """
    run_dir = Path(run_dir)
    dist = env_dist_info()
    device = resolve_device(cfg.train.device)
    tc = cfg.train
    seed_everything(tc.seed)
    model = create_model(cfg.model_name, cfg.model).to(device)
    optimizers = build_optimizers(model, tc)
    step, extra = 0, {}
    if ckpt is not None:
        load_nets(model, ckpt["nets"], where=ckpt.get("path", "checkpoint"))
        try:
            for phase, opt in optimizers.items():
                opt.load_state_dict(ckpt["optimizers"][phase])
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"optimizer state in {ckpt.get('path')} does not fit the model: {e}") from None
        step, extra = int(ckpt["step"]), dict(ckpt.get("extra") or {})
        model.load_extra_state(ckpt.get("model_extra") or {})
        restore_rng(ckpt["rng"])

    size, root, strict = cfg.model.img_size, cfg.data.root, cfg.data.strict
    cache = run_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    src = {d: open_domain(root, "train", d, strict, cache) for d in "AB"}
    test = {d: open_domain(root, "test", d, strict, cache) for d in "AB"}
    if model.uses_labels and src["A"].labels is None:
        raise ConfigError(f"this {cfg.model_name} configuration trains a classifier on labelled domain A, but "
                          f"{root} has no labels (use --data builtin:digits)")
    loader = build_train_loader(src["A"], src["B"], img_size=size, margin=cfg.data.resize_margin,
                                flip=cfg.data.flip, seed=tc.seed, batch_size=tc.batch_size, start_step=step,
                                num_workers=cfg.data.num_workers, device=device, rank=dist.rank, world=dist.world,
                                with_labels=model.uses_labels)
    samples = {d: fixed_sample_batch(src[d], test[d], size).to(device) for d in "AB"}
    evaluator = Evaluator(cfg, device, cache) if tc.eval_every else None  # fails early if weights are missing
    logger = RunLogger(run_dir, enabled=dist.is_main, tensorboard=tensorboard)
    if dist.is_main:
        (run_dir / "config.yaml").write_text(cfg.to_yaml())
        logger.write({"event": "start", "step": step, "max_steps": tc.max_steps, "device": str(device),
                      "toolkit_version": __version__, "images_a": len(src["A"]), "images_b": len(src["B"])})

    show_bar = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm

    bar = tqdm(total=tc.max_steps, initial=step, unit="step", dynamic_ncols=True,
               disable=not (show_bar and dist.is_main))
    acc: dict[str, Tensor] = {}
    n_acc, t_window, last_logs = 0, time.perf_counter(), {}
    ckpt_path: Path | None = latest_checkpoint(run_dir)
    saved_step = step if ckpt is not None else -1
    sampled_step = -1
    model.train()
    it = iter(loader)

    def save(numbered: bool) -> None:
        nonlocal ckpt_path, saved_step
        if dist.is_main:
            payload = make_checkpoint(cfg, model, optimizers, step, extra, dist)
            ckpt_path = save_checkpoint(payload, run_dir, numbered=numbered, keep_last=tc.keep_last)
        saved_step = step

    def save_samples() -> None:
        if not dist.is_main:
            return
        model.eval()
        with torch.no_grad():
            for direction, dom in (("a2b", "A"), ("b2a", "B")):
                arr = visuals_grid(model.visuals(samples[dom], direction))
                save_png(arr, run_dir / "samples" / f"{direction}_{step:07d}.png")
                logger.image(f"samples/{direction}", step, arr)
        model.train()

    def evaluate() -> None:
        nonlocal evaluated_step
        evaluated_step = step
        if not dist.is_main:
            return
        values, improved = evaluator.run(model, extra, step)
        logger.scalars(step, values, event="eval")
        for direction in improved:
            atomic_save(make_checkpoint(cfg, model, optimizers, step, extra, dist),
                        run_dir / "checkpoints" / f"best_{direction}.pt")
        if not show_bar:
            log.info("eval at step %d: %s", step, "  ".join(f"{k} {v:.4g}" for k, v in values.items()))

    evaluated_step = -1
    with _GracefulStop() as stop:
        try:
            while step < tc.max_steps:
                batch = {k: v.to(device, non_blocking=True) for k, v in next(it).items()}
                step += 1
                lr = set_lr(optimizers, step, tc)
                for phase, nets in model.phases.items():
                    _set_trainable(model, nets)
                    opt = optimizers[phase]
                    loss, logs = model.compute_loss(phase, batch)
                    _check_finite(step, phase, loss, logs, run_dir)
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)  # free the grads now: less memory in the next phase
                    model.after_phase(phase)
                    for k, v in logs.items():
                        acc[k] = acc[k] + v if k in acc else v.clone()
                n_acc += 1
                bar.update(1)
                if (tc.log_every and step % tc.log_every == 0) or step == tc.max_steps:
                    dt = (time.perf_counter() - t_window) / n_acc
                    last_logs = {k: float(v) / n_acc for k, v in acc.items()}
                    logger.scalars(step, {**last_logs, "lr": lr, "sec_per_step": dt})
                    totals = {k.split("/")[0]: round(v, 3) for k, v in last_logs.items() if k.endswith("/total")}
                    bar.set_postfix(totals, refresh=False)
                    if not show_bar and dist.is_main:
                        eta = dt * (tc.max_steps - step)
                        log.info("step %d/%d  %s  %.3f s/step  eta %s", step, tc.max_steps,
                                 "  ".join(f"{k} {v:.4g}" for k, v in totals.items()), dt, _hms(eta))
                    acc, n_acc, t_window = {}, 0, time.perf_counter()
                if tc.sample_every and step % tc.sample_every == 0:
                    save_samples()
                    sampled_step = step
                if evaluator is not None and (step % tc.eval_every == 0 or step == tc.max_steps):
                    evaluate()
                if (tc.ckpt_every and step % tc.ckpt_every == 0) or step == tc.max_steps:
                    save(numbered=True)
                if stop.requested or step == stop_at:
                    break
        except TrainingDiverged as e:
            logger.write({"event": "diverged", "step": step, "message": str(e)})
            raise
        finally:
            bar.close()
            logger.close()
        if saved_step != step:  # stopped early (Ctrl-C or stop_at)
            save(numbered=False)
    if sampled_step != step:
        save_samples()
    return TrainResult(run_dir, step, ckpt_path, last_logs, interrupted=step < tc.max_steps)


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
