"""Shared by the benchmark scripts: the machine's measured matmul peaks and the ``--json`` result line.

With ``--json`` every script still prints its table, then as its last line one JSON object:
``{"benchmark": NAME, "machine": {...}, "peaks_gflop_s": {"fp32": ..., "bf16": ...}, "variants": {VARIANT:
{"s_per_iter" or "images_per_s", "peak_gib", "gflop_per_iter", "pct_of_peak", ...}}, "conditions": {...}}``, so
results can be compared by a script across runs and machines. ``conditions`` holds the load average, how many CPUs'
worth *other* processes were using (sampled from /proc over half a second) and the thread settings when the script
started and when it ended, and ``others_cpus_mean``, the other processes' average use over the whole run. When the
other processes' use moved by more than :data:`MAX_OTHERS_CHANGE` CPUs between start and end, ``steady_load`` is
false and a warning says that ratios between variants are unreliable (printed too: a speed-up measured while the
machine's load changed is not reported without saying so). The script's own threads are left out: the 1-minute load
average, which counts them, rises by their number on an idle machine, which is not a change of conditions (where
/proc is missing, the load average's 1-minute value is compared, with :data:`MAX_LOAD_CHANGE`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import torch

from nicegan.core.process import cpu_times, others_between, others_busy

#: the largest change of other processes' CPU use (CPUs' worth) over a benchmark for its ratios to count as
#: measured at one load
MAX_OTHERS_CHANGE = 0.5
#: the same for the 1-minute load average, where /proc is missing
MAX_LOAD_CHANGE = 1.0
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NICEGAN_THREADS", "OMP_WAIT_POLICY")


def conditions_now() -> dict[str, Any]:
    """The load average and the thread settings at this moment."""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {"loadavg": load, "others_cpus": others_busy(0.5), "torch_threads": torch.get_num_threads(),
            "env": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ}}


_START = conditions_now()
_START_TIMES, _START_WALL = cpu_times(), time.monotonic()


def conditions() -> dict[str, Any]:
    """Start and end conditions of this run, and whether the load held (see the module docstring)."""
    end = conditions_now()
    times = cpu_times()
    mean = (others_between(_START_TIMES, times, time.monotonic() - _START_WALL)
            if _START_TIMES is not None and times is not None else None)
    a, b = _START["others_cpus"], end["others_cpus"]
    if a is not None and b is not None:
        steady = abs(b - a) <= MAX_OTHERS_CHANGE
        what = f"other processes used {a:.2f} -> {b:.2f} CPUs"
    else:
        steady = bool(_START["loadavg"]) and bool(end["loadavg"]) and \
            abs(end["loadavg"][0] - _START["loadavg"][0]) <= MAX_LOAD_CHANGE
        what = f"1-minute load {_START['loadavg'][:1]} -> {end['loadavg'][:1]}"
    out = {"start": _START, "end": end, "others_cpus_mean": mean, "steady_load": steady}
    if not steady:
        out["warning"] = f"the machine's load changed during the run ({what}): ratios between variants are unreliable"
    return out


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="also print one JSON object as the last line")


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 5, device: str = "cpu") -> float:
    """Measured GFLOP/s of an n x n matmul in ``dtype`` (the machine's practical peak for that type)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def matmul_peaks(device: str = "cpu", n: int = 2048) -> dict[str, float]:
    """fp32 and bf16 matmul peaks, GFLOP/s. The size grows from 256 to ``n`` while one product stays short, so a
    CPU without native bf16 (where it is emulated, ~100x slower) does not spend minutes on it."""
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        size = 256
        while size < n:
            t = time.perf_counter()
            matmul_gflops(dtype, size, reps=1, device=device)
            if time.perf_counter() - t > 0.1:
                break
            size *= 2
        peaks[name] = matmul_gflops(dtype, size, device=device)
        peaks[f"{name}_n"] = size
    return peaks


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                            "threads": torch.get_num_threads(), "torch": torch.__version__}
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next(line for line in fh if line.startswith("flags")).split()
        info["cpu_bf16"] = "avx512_bf16" in flags or "amx_bf16" in flags
        info["cpu_avx512"] = "avx512f" in flags
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def emit(name: str, variants: dict[str, dict[str, Any]], peaks: dict[str, float] | None = None,
         **extra: Any) -> None:
    """Print the ``--json`` line (after a warning line when the load changed during the run)."""
    cond = conditions()
    if "warning" in cond:
        print(f"WARNING: {cond['warning']}", flush=True)
    print(json.dumps({"benchmark": name, "machine": machine(), "peaks_gflop_s": peaks or {}, "variants": variants,
                      "conditions": cond, **extra}, allow_nan=True), flush=True)
