"""Process-level settings: memory allocator tuning (applied by the command line), devices and seeding."""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import re
import sys

import numpy as np
import torch

from nicegan.errors import ConfigError

_TUNED = False


def tune_malloc() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS after every large free.

    PyTorch's CPU tensors come from ``malloc``. With glibc's defaults, buffers above 128 KiB-32 MiB are ``mmap``-ed
    and unmapped on free, and the heap top is trimmed, so each training step page-faults its whole working memory
    back in: measured on a 2-core VM, NICE-GAN at 128 px spent 48 s of 120 s CPU time in the kernel, and a step took
    12.3 s instead of 7.3 s. Every block stays in the never-trimmed heap here, weight-sized temporaries included
    (the big discriminator layers' 128 MiB weights): with a 32 MiB mapping threshold instead, the peak resident size
    at 128 px was 26 % lower but the step 50 % slower. The price is fragmentation: the official iteration's peak
    grew by 13 % with this setting (benchmarks/train_step.py).
    Returns True if applied (Linux with glibc only; a no-op elsewhere).
    """
    global _TUNED
    if _TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, 1 << 30) == 1 and mallopt(m_trim_threshold, (1 << 31) - 1) == 1
    _TUNED = ok
    return ok


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit ``cuda`` without a GPU is a config error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(spec, str) or not re.fullmatch(r"cpu|cuda(:\d{1,3})?", spec):
        raise ConfigError(f"unknown device {str(spec)[:40]!r}: use cpu, cuda, cuda:N or auto")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"the device is {spec} but no CUDA device is available (use --device cpu)")
    dev = torch.device(spec)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"the device is {spec} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
