"""glibc heap settings for PyTorch's CPU tensors, applied by the command line before any work.

Nothing here imports torch, so a command can apply them and still report a wrong argument before torch is loaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

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
