"""NICE-GAN training-step speed and memory: the official iteration vs nicegan's default path, in one process.

    python benchmarks/train_step.py --img-size 128 --light            # official vs ours, one configuration
    python benchmarks/train_step.py --img-size 256 --full --steps 2
    python benchmarks/train_step.py --sweep                            # scaling table of ours: size x batch

Variants, in this order, in the same process:
  official          benchmarks/official_nicegan.py, glibc's default allocator (how the official code runs)
  official+malloc   the same after nicegan.core.runtime.tune_malloc() (the allocator setting alone)
  ours              nicegan's default training path (the one the golden test checks), allocator tuned, as the CLI
  ours_ckpt         ours with activation checkpointing (--checkpoint-activations), same allocator; its gradients are
                    bitwise those of ours (tests/test_memory.py)
Every variant starts from the same weights and inputs; the first iteration's losses of official and ours are
compared. Peak memory = peak resident set size during the variant (Linux VmHWM, reset between variants).
FLOPs are counted with torch.utils.flop_counter for one iteration; the peak is a measured 2048^2 fp32 matmul.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from nicegan.configs.schema import TrainConfig
from nicegan.core.runtime import tune_malloc
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.nn.recompute import checkpoint_blocks
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step

try:
    from common import add_json_flag, emit, matmul_peaks
    from official_nicegan import OfficialNiceGAN
except ImportError:  # run from the repository root
    from benchmarks.common import add_json_flag, emit, matmul_peaks
    from benchmarks.official_nicegan import OfficialNiceGAN


def rss_peak_reset() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only: give freed heap memory back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def rss_peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


class Ours:
    """nicegan's default path: phases with frozen other nets, no_grad generators in D, head-less real encoding."""

    def __init__(self, cfg: NiceGANConfig, checkpointing: bool = False) -> None:
        self.model = NiceGAN(cfg)
        self.optimizers = build_optimizers(self.model, TrainConfig())
        if checkpointing:  # what train.checkpoint_activations does in the loop
            checkpoint_blocks(self.model.nets)

    def iteration(self, a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
        logs = train_step(self.model, self.optimizers, {"a": a, "b": b})  # the loop's own step function
        return float(logs["dis/total"]), float(logs["gen/total"])


def build(variant: str, cfg: NiceGANConfig, seed: int):
    torch.manual_seed(seed)  # official construction order: both draw the same initial weights
    if variant in ("ours", "ours_ckpt"):
        return Ours(cfg, checkpointing=variant == "ours_ckpt")
    return OfficialNiceGAN(cfg.img_size, cfg.ch, cfg.n_res, cfg.n_dis, cfg.light)


def run_variant(variant: str, cfg: NiceGANConfig, batch: int, steps: int, warmup: int) -> dict:
    rss_peak_reset()
    runner = build(variant, cfg, seed=0)
    g = torch.Generator().manual_seed(1)
    inputs = [(torch.rand(batch, 3, cfg.img_size, cfg.img_size, generator=g) * 2 - 1,
               torch.rand(batch, 3, cfg.img_size, cfg.img_size, generator=g) * 2 - 1) for _ in range(warmup + steps)]
    first = runner.iteration(*inputs[0])
    for a, b in inputs[1:warmup]:
        runner.iteration(a, b)
    times = []
    for a, b in inputs[warmup:]:
        t = time.perf_counter()
        runner.iteration(a, b)
        times.append(time.perf_counter() - t)
    peak = rss_peak_gib()
    with FlopCounterMode(display=False) as fc:
        runner.iteration(*inputs[-1])
    flops = fc.get_total_flops()
    del runner, inputs
    return {"variant": variant, "mean": statistics.mean(times), "min": min(times), "peak_gib": peak,
            "gflop": flops / 1e9, "first_losses": first}


def compare(args: argparse.Namespace) -> None:
    n_dis = args.n_dis or (7 if args.img_size >= 96 else 6)
    cfg = NiceGANConfig(img_size=args.img_size, ch=args.ch, n_res=args.n_res, n_dis=n_dis, light=args.light)
    peaks = matmul_peaks()
    peak = peaks["fp32"]
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}, fp32 matmul peak {peak:.1f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.1f} GFLOP/s")
    print(f"NICE-GAN {'light' if cfg.light else 'full'} {cfg.img_size}px ch {cfg.ch} n_res {cfg.n_res} n_dis {n_dis}, "
          f"batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed iterations")
    rows = [run_variant("official", cfg, args.batch_size, args.steps, args.warmup)]
    tune_malloc()
    rows.append(run_variant("official+malloc", cfg, args.batch_size, args.steps, args.warmup))
    rows.append(run_variant("ours", cfg, args.batch_size, args.steps, args.warmup))
    if not args.no_ckpt:
        rows.append(run_variant("ours_ckpt", cfg, args.batch_size, args.steps, args.warmup))
    base = rows[0]
    print(f"{'variant':<17}{'s/iter':>9}{'min':>8}{'speed-up':>10}{'peak GiB':>10}{'mem ratio':>10}{'GFLOP/it':>10}"
          f"{'GFLOP/s':>9}{'% peak':>8}")
    for r in rows:
        rate = r["gflop"] / r["mean"]
        print(f"{r['variant']:<17}{r['mean']:>9.2f}{r['min']:>8.2f}{base['mean'] / r['mean']:>9.2f}x"
              f"{r['peak_gib']:>10.2f}{r['peak_gib'] / base['peak_gib']:>10.2f}{r['gflop']:>10.1f}{rate:>9.1f}"
              f"{100 * rate / peak:>7.0f}%")
    (d0, g0), (d1, g1) = base["first_losses"], next(r for r in rows if r["variant"] == "ours")["first_losses"]
    print(f"first-iteration losses, official vs ours: D {d0:.6f} vs {d1:.6f}, G {g0:.6f} vs {g1:.6f}")
    if args.json:
        emit("train_step", {r["variant"]: _figures(r, peak) for r in rows}, peaks,
             config={"img_size": cfg.img_size, "light": cfg.light, "ch": cfg.ch, "n_res": cfg.n_res, "n_dis": n_dis,
                     "batch_size": args.batch_size})


def _figures(r: dict, peak: float) -> dict:
    rate = r["gflop"] / r["mean"]
    return {"s_per_iter": r["mean"], "s_per_iter_min": r["min"], "peak_gib": r["peak_gib"],
            "gflop_per_iter": r["gflop"], "pct_of_peak": 100 * rate / peak}


def sweep(args: argparse.Namespace) -> None:
    tune_malloc()
    print(f"ours, {torch.get_num_threads()} threads; {args.warmup} warm-up + {args.steps} timed iterations")
    print(f"{'img':>5}{'model':>7}{'batch':>7}{'s/iter':>9}{'s/img':>8}{'peak GiB':>10}")
    variants = {}
    for size, light, batches in ((64, True, (1, 2, 4)), (128, True, (1, 2, 4)), (128, False, (1,)),
                                 (256, True, (1, 2)), (256, False, (1,))):
        cfg = NiceGANConfig(img_size=size, ch=args.ch, n_res=args.n_res, n_dis=7 if size >= 96 else 6, light=light)
        for b in batches:
            r = run_variant("ours", cfg, b, args.steps, args.warmup)
            print(f"{size:>5}{'light' if light else 'full':>7}{b:>7}{r['mean']:>9.2f}{r['mean'] / b:>8.2f}"
                  f"{r['peak_gib']:>10.2f}", flush=True)
            variants[f"ours_{size}px_{'light' if light else 'full'}_b{b}"] = {
                "s_per_iter": r["mean"], "peak_gib": r["peak_gib"], "gflop_per_iter": r["gflop"]}
    if args.json:
        emit("train_step_sweep", variants, matmul_peaks())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--img-size", type=int, default=128)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--light", dest="light", action="store_true", default=True)
    g.add_argument("--full", dest="light", action="store_false")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--ch", type=int, default=64)
    p.add_argument("--n-res", type=int, default=6)
    p.add_argument("--n-dis", type=int)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--sweep", action="store_true", help="scaling table of ours over image and batch sizes")
    p.add_argument("--no-ckpt", action="store_true", help="leave out the activation-checkpointing variant")
    add_json_flag(p)
    args = p.parse_args()
    sweep(args) if args.sweep else compare(args)


if __name__ == "__main__":
    main()
