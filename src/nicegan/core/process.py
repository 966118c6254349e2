"""Process settings the command line applies before torch is loaded: the heap, and how many threads to use.

Nothing here imports torch at module level, so a command can settle them and still report a wrong argument before
torch is loaded (which takes 10-30 s on a busy machine).

Threads. PyTorch's CPU kernels run on an OpenMP pool as wide as the machine's cores, whose threads spin while they
wait for each other. When another process holds a core, every parallel region waits for the thread that lost its
core: measured on a 2-core machine with one competing busy process, the demo's training step took 12.9 s with 2
threads and 0.52-0.66 s with 1 (docs: performance). So the default here is not the core count but the CPUs this
process may use (its affinity mask and cgroup quota) that other processes are not already using, re-checked between
training steps (:class:`ThreadGovernor`). ``--threads N`` or ``NICEGAN_THREADS`` fix the count instead (as does an
``OMP_NUM_THREADS`` set by the user).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("nicegan")

_TUNED = False


def cpu_compiler() -> str | None:
    """The C++ compiler torch.compile (Inductor) would build CPU kernels with: ``$CXX``, else g++, clang++ or c++ on
    the PATH; None when there is none."""
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx.split()[0])
    return next((shutil.which(c) for c in ("g++", "clang++", "c++") if shutil.which(c)), None)


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


# --- threads ---------------------------------------------------------------------------------------------------

ENV = "NICEGAN_THREADS"
#: seconds between two looks at the machine's load while training (one look reads two small /proc files)
RECHECK_SECONDS = 10.0


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers, Slurm)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(n, quota) if quota else n)


def _cgroup_quota() -> int | None:
    """The cgroup's CPU limit in whole CPUs (rounded up), or None when there is none."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()  # cgroup v2: "max 100000" or "200000 100000"
        if text and text[0] != "max":
            return max(1, -(-int(text[0]) // int(text[1])))
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return max(1, -(-quota // period)) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def cpu_times() -> tuple[float, float] | None:
    """(busy seconds of the whole machine, busy seconds of this process), or None where /proc is missing."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / hz, (int(own[11]) + int(own[12])) / hz  # utime + stime of every thread


def others_busy(seconds: float = 0.15) -> float | None:
    """How many CPUs' worth other processes are using now, sampled over ``seconds`` (None without /proc)."""
    first = cpu_times()
    if first is None:
        return None
    t0 = time.monotonic()
    time.sleep(seconds)
    second = cpu_times()
    return others_between(first, second, time.monotonic() - t0) if second else None


def others_between(a: tuple[float, float], b: tuple[float, float], wall: float) -> float:
    """CPUs' worth other processes used between two :func:`cpu_times` samples taken ``wall`` seconds apart."""
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / max(wall, 1e-3))


def free_cpus(cpus: int, busy: float | None) -> int:
    """The thread count for ``cpus`` usable CPUs when others use ``busy`` CPUs' worth: what they leave, at least 1.

    A core counts as taken once another process uses more than a third of it: a thread sharing a core with a busy
    process makes every parallel region wait for it, which costs more than the core it would add."""
    if busy is None:
        return cpus
    return max(1, min(cpus, cpus - int(busy + 2 / 3)))


@dataclass
class ThreadPolicy:
    """The thread count a command runs with, and why."""

    threads: int
    cpus: int  #: usable CPUs (affinity, cgroup quota)
    source: str  #: "threads" (asked for), NICEGAN_THREADS, OMP_NUM_THREADS or "auto"
    busy: float | None = None  #: other processes' load when chosen (auto only)

    @property
    def auto(self) -> bool:
        return self.source == "auto"

    def describe(self) -> str:
        if not self.auto:
            return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.source})"
        load = "" if self.busy is None else f", other processes using {self.busy:.1f}"
        return (f"{self.threads} thread{'s' if self.threads != 1 else ''} (auto: {self.cpus} usable CPU"
                f"{'s' if self.cpus != 1 else ''}{load}; re-checked while training; threads=N or {ENV} fixes it)")


def _parse(value: str, where: str) -> int:
    from nicegan.core.errors import ConfigError

    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"{where} must be a whole number of threads, got {value[:40]!r}", option=where) from None
    if not 1 <= n <= 1024:
        raise ConfigError(f"{where} must be between 1 and 1024, got {n}", option=where)
    return n


def choose_threads(requested: int | None = None) -> ThreadPolicy:
    """``threads``, else ``NICEGAN_THREADS``, else a user's ``OMP_NUM_THREADS``, else the free usable CPUs."""
    cpus = usable_cpus()
    if requested is not None:
        return ThreadPolicy(_parse(str(requested), "threads"), cpus, "threads")
    if os.environ.get(ENV, "").strip():
        return ThreadPolicy(_parse(os.environ[ENV].strip(), ENV), cpus, ENV)
    if os.environ.get("OMP_NUM_THREADS", "").strip() and not os.environ.get("_NICEGAN_SET_OMP"):
        return ThreadPolicy(_parse(os.environ["OMP_NUM_THREADS"].strip(), "OMP_NUM_THREADS"), cpus,
                            "OMP_NUM_THREADS")
    busy = others_busy() if cpus > 1 else None
    return ThreadPolicy(free_cpus(cpus, busy), cpus, "auto", busy)


def apply_threads(policy: ThreadPolicy) -> None:
    """Make ``policy`` the process's: the OpenMP variables torch reads when it loads, or torch itself if loaded."""
    os.environ["OMP_NUM_THREADS"] = str(policy.threads)
    os.environ["MKL_NUM_THREADS"] = str(policy.threads)
    os.environ["_NICEGAN_SET_OMP"] = "1"  # ours, not the user's: a child process chooses again
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(policy.threads)


class ThreadGovernor:
    """Re-checks the machine's load between steps and follows it with torch's thread count (auto policy only)."""

    def __init__(self, policy: ThreadPolicy | None, every: float = RECHECK_SECONDS) -> None:
        self.policy = policy if policy is not None and policy.auto and policy.cpus > 1 else None
        self.every = every
        self._last = cpu_times() if self.policy else None
        self._t = time.monotonic()

    def tick(self) -> int | None:
        """Call between steps; returns the new thread count when it changed."""
        if self.policy is None or time.monotonic() - self._t < self.every:
            return None
        now, t = cpu_times(), time.monotonic()
        if now is None or self._last is None:
            self.policy = None
            return None
        busy = others_between(self._last, now, t - self._t)
        self._last, self._t = now, t
        n = free_cpus(self.policy.cpus, busy)
        if n == self.policy.threads:
            return None
        import torch

        log.info("threads: %d -> %d (other processes now use %.1f of %d CPUs)", self.policy.threads, n, busy,
                 self.policy.cpus)
        self.policy.threads, self.policy.busy = n, busy
        torch.set_num_threads(n)
        return n


_POLICY: ThreadPolicy | None = None


def configure_threads(requested: int | None = None) -> ThreadPolicy:
    """Choose and apply the thread policy of this command (kept for :func:`current_policy`)."""
    global _POLICY, _ANNOUNCED
    _POLICY, _ANNOUNCED = choose_threads(requested), False
    apply_threads(_POLICY)
    return _POLICY


_ANNOUNCED = False


def announce_threads() -> None:
    """Log the command's thread choice once, when it starts computing (after its arguments were checked, so a
    mistake's one-line error stays the first thing a user reads)."""
    global _ANNOUNCED
    if _POLICY is not None and not _ANNOUNCED:
        _ANNOUNCED = True
        named = _POLICY.source in ("threads", "auto")  # "(threads)" or "threads=N" in the line: the command's flag
        log.info("threads: %s", _POLICY.describe(), extra={"option": "threads" if named else None})


def current_policy() -> ThreadPolicy | None:
    """The policy the command line chose for this process, if any (the training loop's governor follows it)."""
    return _POLICY
