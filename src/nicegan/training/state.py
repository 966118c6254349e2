"""Building and restoring training state: devices, seeding, nets from checkpoints, checkpoint payloads."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nicegan.config import RunConfig
from nicegan.errors import CheckpointError, ConfigError
from nicegan.models.base import TranslationModel
from nicegan.training.checkpoint import FORMAT, FORMAT_VERSION, capture_rng
from nicegan.training.distributed import DistInfo
from nicegan.version import __version__


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit ``cuda`` without a GPU is a config error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {spec} but no CUDA device is available (use --device cpu)")
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
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
                    step: int, extra: dict[str, Any], dist: DistInfo, scalers: dict[str, Any] | None = None,
                    rng_per_rank: list[dict[str, Any]] | None = None,
                    model_extra_per_rank: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The checkpoint dict of the current state (see :mod:`nicegan.training.checkpoint`)."""
    lr = {p: o.param_groups[0]["lr"] for p, o in optimizers.items()}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "toolkit_version": __version__,
        "model": cfg.model_name, "config": cfg.to_dict(), "step": step,
        "nets": {k: v.state_dict() for k, v in model.nets.items()},
        "model_extra": model.extra_state(),
        "model_extra_per_rank": model_extra_per_rank or [],
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: {"kind": cfg.train.lr_decay, "step": step, "lr": lr[k]} for k in optimizers},
        "scalers": {k: s.state_dict() for k, s in (scalers or {}).items()},
        "rng": capture_rng(),
        "rng_per_rank": rng_per_rank or [],
        "data": {"draws_per_domain": step * cfg.train.batch_size * dist.world,
                 "batch_size": cfg.train.batch_size, "world_size": dist.world},
        "extra": extra,
    }
