"""Data-parallel throughput: 1 process x batch 2N vs torchrun N processes x batch 2 (CPU: gloo; GPU: nccl).

    python benchmarks/ddp_step.py [--nproc 2] [--img-size 64] [--steps 12] [--device cpu]

Trains NICE-GAN with the real CLI on a generated folder dataset and reads the seconds per step that the run logs
(metrics.jsonl, first logged window excluded as warm-up). On a CPU each process gets cores / nproc threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from common import add_json_flag, emit
except ImportError:
    from benchmarks.common import add_json_flag, emit


def make_data(root: Path, size: int, n: int = 24) -> None:
    rng = np.random.RandomState(0)
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True)
        for i in range(n if split.startswith("train") else 4):
            arr = rng.randint(0, 255, (size + 8, size + 8, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / split / f"{i}.png")


def sec_per_step(run: Path) -> float:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    times = [r["sec_per_step"] for r in recs if r.get("event") == "train"][1:]
    return float(np.mean(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ch", type=int, default=32)
    add_json_flag(p)
    args = p.parse_args()
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_data(data, args.img_size)
        common = ["--data", str(data), "--max-steps", str(args.steps), "--device", args.device, "--no-progress",
                  "--set", f"model.img_size={args.img_size}", "model.n_dis=6", f"model.ch={args.ch}",
                  "train.log_every=3", "train.sample_every=0", "data.resize_margin=8", "data.num_workers=0"]
        rows = []
        for nproc, batch in ((1, 2 * args.nproc), (args.nproc, 2)):
            run = Path(tmp) / f"run{nproc}"
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // nproc))}
            launcher = [sys.executable] if nproc == 1 else [
                sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
            cmd = launcher + ["-m", "nicegan", "-q", "train", "--run-dir", str(run), *common,
                              f"train.batch_size={batch}"]
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL if args.json else None)
            sps = sec_per_step(run)
            rows.append((nproc, batch, sps, nproc * batch / sps))
    print(f"NICE-GAN light {args.img_size}px ch {args.ch}, {args.device}, {cores} cores, global batch {2 * args.nproc}")
    print(f"{'processes':>10}{'batch/proc':>12}{'s/step':>9}{'images/s':>10}")
    for nproc, batch, sps, ips in rows:
        print(f"{nproc:>10}{batch:>12}{sps:>9.3f}{ips:>10.2f}")
    if args.json:
        emit("ddp_step", {f"{nproc}proc_x_batch{batch}": {"s_per_iter": sps, "images_per_s": ips}
                          for nproc, batch, sps, ips in rows},
             config={"img_size": args.img_size, "ch": args.ch, "device": args.device, "steps": args.steps})


if __name__ == "__main__":
    main()
