"""Speed on a busy machine: the default thread choice against fixed thread counts, idle and beside a busy process.

    python benchmarks/busy_machine.py                 # demo training step and translation, idle and busy
    python benchmarks/busy_machine.py --rounds 3 --json

Every variant runs in a fresh process (thread settings are read when torch loads), in interleaved rounds:
  auto      nicegan's default (usable CPUs that other processes leave free, re-checked while training)
  fixed-N   --threads N, for N = 1 .. usable CPUs (fixed-<cpus> is what torch would use by itself)
Conditions: ``idle`` (nothing else started) and ``busy`` (this script starts one CPU-bound competing process, a
Python busy loop, for the whole condition). Workloads: ``train``, the demo's training step (``nicegan train`` on
builtin:digits with the digits preset; seconds per step, median of the logged windows after the first); and
``translate``, a folder of 64 digit images through the Python API (seconds per image, after one warm-up batch).
Each measurement records the load average and the thread settings at its start and end; a ratio is reported as
unreliable when the 1-minute load moved by more than ``--max-load-change`` during the condition.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nicegan.core.process import usable_cpus

try:
    from common import add_json_flag, emit
except ImportError:  # imported as benchmarks.busy_machine
    from benchmarks.common import add_json_flag, emit

TRANSLATE = r"""
import json, sys, time
from nicegan.core.process import configure_threads
policy = configure_threads(int(sys.argv[2]) if sys.argv[2] != "auto" else None)
import torch
from nicegan.deploy.api import Translator
t = Translator.load(sys.argv[1], device="cpu")
x = torch.rand(16, 3, 32, 32) * 2 - 1
t(x[:4], "a2b")
start = time.perf_counter()
for _ in range(4):
    t(x, "a2b")
print(json.dumps({"s_per_image": (time.perf_counter() - start) / 64, "threads": torch.get_num_threads(),
                  "policy": policy.describe()}))
"""

BUSY = "import time\nend = time.time() + float(__import__('sys').argv[1])\nwhile time.time() < end:\n    pass\n"


def _load() -> float:
    return os.getloadavg()[0]


def _env(threads: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NICEGAN_THREADS",
                                                           "_NICEGAN_SET_OMP")}
    if threads != "auto":
        env["NICEGAN_THREADS"] = threads
    return env


def train_speed(threads: str, steps: int, work: Path) -> dict[str, Any]:
    """Seconds per demo training step with ``threads`` ("auto" or a count), in a fresh process."""
    run = Path(tempfile.mkdtemp(dir=work))
    load0 = _load()
    cmd = [sys.executable, "-m", "nicegan", "-q", "train", "--data", "builtin:digits", "--config", "digits",
           "--run-dir", str(run / "r"), "--max-steps", str(steps), "--no-progress",
           "--set", "train.log_every=2", "train.sample_every=0", "train.eval_every=0", "train.ckpt_every=0"]
    subprocess.run(cmd, env=_env(threads), check=True, capture_output=True, text=True, timeout=3600)
    windows = [json.loads(line)["sec_per_step"] for line in (run / "r" / "metrics.jsonl").read_text().splitlines()
               if '"sec_per_step"' in line]
    return {"s_per_step": statistics.median(windows[1:] or windows), "windows": windows, "load_start": load0,
            "load_end": _load()}


def translate_speed(threads: str, bundle: Path) -> dict[str, Any]:
    load0 = _load()
    out = subprocess.run([sys.executable, "-c", TRANSLATE, str(bundle), threads], env=_env(threads), check=True,
                         capture_output=True, text=True, timeout=1800)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_start": load0, "load_end": _load()}


def make_bundle(work: Path) -> Path:
    """A demo-sized NICE-GAN bundle (untrained weights translate at the same speed as trained ones)."""
    run = work / "bundle_run"
    subprocess.run([sys.executable, "-m", "nicegan", "-q", "train", "--data", "builtin:digits", "--config", "digits",
                    "--run-dir", str(run), "--max-steps", "1", "--no-progress", "--threads", "1"], check=True,
                   capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "nicegan", "-q", "export", str(run), "--out", str(work / "bundle")],
                   check=True, capture_output=True, timeout=600)
    return work / "bundle"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds per condition (default 2)")
    p.add_argument("--steps", type=int, default=12, help="training steps per measurement (default 12)")
    p.add_argument("--busy-steps", type=int, default=6, help="training steps per busy measurement (default 6)")
    p.add_argument("--max-load-change", type=float, default=1.0)
    p.add_argument("--workloads", default="train,translate")
    add_json_flag(p)
    args = p.parse_args()
    cpus = usable_cpus()
    variants = ["auto", *[str(n) for n in range(1, cpus + 1)]]
    workloads = args.workloads.split(",")
    results: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = make_bundle(work) if "translate" in workloads else None
        for condition in ("idle", "busy"):
            competitor = None
            if condition == "busy":
                competitor = subprocess.Popen([sys.executable, "-c", BUSY, "7200"])
                time.sleep(5)  # let the load average see it
            cond_load = [_load()]
            try:
                for _ in range(args.rounds):
                    for v in variants:
                        for w in workloads:
                            steps = args.busy_steps if condition == "busy" else args.steps
                            r = train_speed(v, steps, work) if w == "train" else translate_speed(v, bundle)
                            results.setdefault(condition, {}).setdefault(w, {}).setdefault(v, []).append(r)
                            print(f"{condition:5s} {w:9s} {('fixed-' + v) if v != 'auto' else v:8s} "
                                  f"{r.get('s_per_step', r.get('s_per_image')):.4f} s  load "
                                  f"{r['load_start']:.2f} -> {r['load_end']:.2f}", flush=True)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
            cond_load.append(_load())
            results[condition]["load"] = {"start": cond_load[0], "end": cond_load[1]}  # type: ignore[assignment]
    table = summarize(results, workloads, variants, args.max_load_change)
    if args.json:
        rows = {f"{c}_{w}_{v}": {"s_per_iter": s["median"][v], "runs": results[c][w][v]}
                for key, s in table.items() for c, w in [key.split(".")] for v in variants}
        emit("busy_machine", rows, cpus=cpus, summary=table)


def summarize(results: dict[str, Any], workloads: list[str], variants: list[str],
              max_change: float) -> dict[str, Any]:
    """Median per variant, and auto against the best fixed count (busy) and against torch's own default (idle)."""
    summary: dict[str, Any] = {}
    print("\ncondition workload  variant   median        ratio")
    for condition, per in results.items():
        load = per["load"]
        steady = abs(load["end"] - load["start"]) <= max_change
        for w in workloads:
            key = "s_per_step" if w == "train" else "s_per_image"
            med = {v: statistics.median(r[key] for r in per[w][v]) for v in variants}
            fixed = {v: m for v, m in med.items() if v != "auto"}
            best = min(fixed, key=fixed.get)  # type: ignore[arg-type]
            ref = best if condition == "busy" else variants[-1]
            ratio = med[ref] / med["auto"]
            what = f"auto / fixed-{ref} speed {ratio:.2f}x" + ("" if steady else
                                                                  " (UNRELIABLE: the load changed)")
            summary[f"{condition}.{w}"] = {"median": med, "reference": f"fixed-{ref}", "speed_ratio": ratio,
                                           "steady_load": steady, "load": load}
            for v in variants:
                print(f"{condition:9s} {w:9s} {('fixed-' + v) if v != 'auto' else v:9s} {med[v]:.4f} s"
                      + (f"    {what}" if v == "auto" else ""))
    return summary


if __name__ == "__main__":
    main()
