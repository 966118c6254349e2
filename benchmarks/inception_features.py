"""Throughput of FID feature extraction: images/s per protocol (preprocessing + Inception), on CPU or GPU.

    python benchmarks/inception_features.py [--device cpu] [--images 64] [--batch-size 32]

Prints a table: protocol, memory format, images/s of the whole pipeline (decode excluded: the images are in memory),
and of the network alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from nicegan.core.runtime import tune_malloc
from nicegan.evaluation.fid.features import FeatureExtractor
from nicegan.evaluation.fid.protocols import PROTOCOLS
from nicegan.evaluation.fid.weights import resolve_weights

try:
    from common import add_json_flag, emit
except ImportError:
    from benchmarks.common import add_json_flag, emit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    add_json_flag(p)
    args = p.parse_args()
    tune_malloc()
    weights = resolve_weights()
    rng = np.random.RandomState(0)
    images = [Image.fromarray(rng.randint(0, 255, (218, 178, 3), dtype=np.uint8)) for _ in range(args.images)]
    print(f"device {args.device}, {torch.get_num_threads()} threads, {args.images} images of 178x218, "
          f"batch {args.batch_size}")
    print(f"{'protocol':<16}{'layout':<16}{'pipeline img/s':>16}{'network img/s':>16}")
    variants = {}
    for name, proto in PROTOCOLS.items():
        for layout in ("channels_last", "contiguous"):
            ext = FeatureExtractor(proto, weights, args.device, args.batch_size, layout == "channels_last")
            ext.features(images[: args.batch_size], progress=False)  # warm-up
            t = time.perf_counter()
            ext.features(images, progress=False)
            pipeline = args.images / (time.perf_counter() - t)
            x = torch.stack([proto.prepare(im) for im in images[: args.batch_size]]).to(args.device)
            x = x.contiguous(memory_format=ext.memory_format)
            with torch.no_grad():
                t = time.perf_counter()
                for _ in range(2):
                    ext.net(x)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                network = 2 * len(x) / (time.perf_counter() - t)
            print(f"{name:<16}{layout:<16}{pipeline:>16.1f}{network:>16.1f}")
            variants[f"{name}_{layout}"] = {"images_per_s": pipeline, "network_images_per_s": network}
    if args.json:
        emit("inception_features", variants, config={"device": args.device, "images": args.images,
                                                      "batch_size": args.batch_size})


if __name__ == "__main__":
    main()
