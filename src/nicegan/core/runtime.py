"""Process-level settings: memory allocator tuning (applied by the command line), devices and seeding."""

from __future__ import annotations

import random
import re

import numpy as np
import torch

from nicegan.core.errors import ConfigError
from nicegan.core.process import tune_malloc  # noqa: F401  (re-exported: callers import it from here)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit ``cuda`` without a GPU is a config error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(spec, str) or not re.fullmatch(r"cpu|cuda(:\d{1,3})?", spec):
        raise ConfigError(f"unknown device {str(spec)[:40]!r}: use cpu, cuda, cuda:N or auto")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"the device is {spec} but no CUDA device is available (use device=cpu)", option="device")
    dev = torch.device(spec)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"the device is {spec} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
