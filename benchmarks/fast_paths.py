"""Which fp32 fast paths help NICE-GAN training on this machine: which combination a ``--fast`` preset should turn on.

    python benchmarks/fast_paths.py --img-size 128 --light --rounds 6
    python benchmarks/fast_paths.py --img-size 128 --full --no-compile --json

Variants (nicegan's own train_step, the same seeded weights and inputs), all in one process:
  ours                  the default path
  ours_channels_last    NHWC nets and inputs (train.channels_last)
  ours_fused_adam       fused Adam kernels (train.fused_adam)
  ours_ckpt             activation checkpointing (train.checkpoint_activations), for its time cost
  ours_compile          torch.compile of every net (train.compile, Inductor, through nicegan.nn.compiled); its
                        warm-up holds the compile time, reported and excluded
  ours_compile_fused_adam   both (what --fast would be if compile joined it)
The variants' steps are interleaved (round r runs one step of every variant, in turn), so a machine shared with other
jobs slows them alike; each variant's ratio to ``ours`` is the median over rounds of the per-round ratios, which is
what to read on a busy machine. The allocator is tuned as the command line does (nicegan.core.runtime.tune_malloc);
benchmarks/train_step.py measures the allocator setting itself (official vs official+malloc).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from nicegan.configs.schema import TrainConfig
from nicegan.core.runtime import tune_malloc
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.nn.compiled import compile_nets
from nicegan.nn.recompute import checkpoint_blocks
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step

try:
    from common import add_json_flag, emit, matmul_peaks
except ImportError:  # run from the repository root
    from benchmarks.common import add_json_flag, emit, matmul_peaks

#: variant -> train.* settings it switches on
VARIANTS: dict[str, dict[str, bool]] = {
    "ours": {},
    "ours_channels_last": {"channels_last": True},
    "ours_fused_adam": {"fused_adam": True},
    "ours_ckpt": {"checkpoint_activations": True},
    "ours_compile": {"compile": True},
    "ours_compile_fused_adam": {"compile": True, "fused_adam": True},
}


class Runner:
    """One variant: a model, its optimizers and its memory format, as the training loop sets them up."""

    def __init__(self, cfg: NiceGANConfig, settings: dict[str, bool]) -> None:
        self.fmt = torch.channels_last if settings.get("channels_last") else torch.contiguous_format
        torch.manual_seed(0)
        self.model = NiceGAN(cfg).to(memory_format=self.fmt)
        self.optimizers = build_optimizers(self.model, TrainConfig(),
                                           fused=True if settings.get("fused_adam") else None)
        if settings.get("checkpoint_activations"):
            checkpoint_blocks(self.model.nets)
        if settings.get("compile"):
            compile_nets(self.model.nets.values(), torch.device("cpu"))

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        batch = {k: v.contiguous(memory_format=self.fmt) for k, v in batch.items()}
        t = time.perf_counter()
        train_step(self.model, self.optimizers, batch)
        return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--img-size", type=int, default=128)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--light", dest="light", action="store_true", default=True)
    g.add_argument("--full", dest="light", action="store_false")
    p.add_argument("--ch", type=int, default=64)
    p.add_argument("--n-res", type=int, default=6)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (one step of every variant each)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (compile happens here)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variant")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="only these variants (ours is always run)")
    add_json_flag(p)
    args = p.parse_args(argv)
    tune_malloc()
    n_dis = 7 if args.img_size >= 96 else 6
    cfg = NiceGANConfig(img_size=args.img_size, ch=args.ch, n_res=args.n_res, n_dis=n_dis, light=args.light)
    names = [n for n in VARIANTS if not (args.no_compile and VARIANTS[n].get("compile"))
             and (not args.variants or n == "ours" or n in args.variants)]
    runners = {n: Runner(cfg, VARIANTS[n]) for n in names}
    gen = torch.Generator().manual_seed(1)
    size = args.img_size
    batches = [{k: torch.rand(1, 3, size, size, generator=gen) * 2 - 1 for k in "ab"}
               for _ in range(args.warmup + args.rounds)]
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}; NICE-GAN {'light' if cfg.light else 'full'} "
          f"{size}px, batch 1; {args.warmup} warm-up + {args.rounds} timed rounds, variants interleaved", flush=True)
    warm = {n: 0.0 for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for i, batch in enumerate(batches):
        for n in names:
            s = runners[n].step(batch)
            if i < args.warmup:
                warm[n] += s
            else:
                times[n].append(s)
    med = {n: statistics.median(times[n]) for n in names}
    ratio = {n: statistics.median(t / b for t, b in zip(times[n], times["ours"], strict=True)) for n in names}
    print(f"{'variant':<20}{'s/iter':>9}{'min':>8}{'vs ours':>9}{'warm-up s':>11}")
    for n in names:
        print(f"{n:<20}{med[n]:>9.2f}{min(times[n]):>8.2f}{ratio[n]:>8.2f}x{warm[n]:>11.1f}")
    if "ours_compile" in names:
        print(f"compile time (warm-up beyond {args.warmup} plain steps): "
              f"{max(0.0, warm['ours_compile'] - args.warmup * med['ours_compile']):.1f} s")
    if args.json:
        variants: dict[str, dict[str, Any]] = {
            n: {"s_per_iter": med[n], "s_per_iter_min": min(times[n]), "time_vs_ours": ratio[n],
                "warmup_s": warm[n], "settings": VARIANTS[n]} for n in names}
        emit("fast_paths", variants, matmul_peaks(),
             config={"img_size": size, "light": cfg.light, "ch": cfg.ch, "n_res": cfg.n_res, "n_dis": n_dis,
                     "rounds": args.rounds, "warmup": args.warmup})


if __name__ == "__main__":
    main()
