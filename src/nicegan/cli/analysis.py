"""``nicegan heatmaps``, ``nicegan latents``, ``nicegan interpolate``: the paper's analyses, with pictures."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from nicegan.cli.common import add_checkpoint, add_device, dataset_root, png_output, positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("heatmaps", help="encoder CAM heatmaps over real images (grid PNG)")
    add_checkpoint(p)
    p.add_argument("--input", required=True, metavar="FILE_OR_DIR", help="images of the source domain")
    p.add_argument("--direction", default="a2b", choices=["a2b", "b2a"], help="a2b: the input is domain A")
    p.add_argument("--output", required=True, metavar="PNG")
    p.add_argument("-n", type=positive_int, default=16, help="at most this many images")
    add_device(p, default="cpu")
    p.set_defaults(func=run_heatmaps)

    p = sub.add_parser("latents", help="t-SNE of both domains' latent codes and their MMD (PNG)")
    add_checkpoint(p)
    p.add_argument("--data", metavar="DIR", help="dataset (default: the checkpoint's)")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("-n", type=positive_int, default=100, help="images per domain")
    p.add_argument("--output", required=True, metavar="PNG")
    p.add_argument("--json", action="store_true")
    add_device(p, default="cpu")
    p.set_defaults(func=run_latents)

    p = sub.add_parser("interpolate", help="translations along a line between two images' latent codes (PNG)")
    add_checkpoint(p)
    p.add_argument("image1")
    p.add_argument("image2")
    p.add_argument("--domain", default="a", choices=["a", "b"], help="domain of the two images")
    p.add_argument("--steps", type=positive_int, default=8)
    p.add_argument("--output", required=True, metavar="PNG")
    add_device(p, default="cpu")
    p.set_defaults(func=run_interpolate)


def _load_images(path: Path, n: int | None = None) -> list:
    from nicegan.data.images import ImageDecodeError, load_rgb
    from nicegan.errors import NiceganError
    from nicegan.inference import input_files

    files, _, _ = input_files(path)
    images = []
    for f in files:
        if n is not None and len(images) == n:
            break
        try:
            images.append(load_rgb(f))
        except ImageDecodeError as e:
            log.warning("skipping %s: %s", f, e)
    if not images:
        raise NiceganError(f"no usable images in {path}")
    return images


def run_heatmaps(args: argparse.Namespace) -> int:
    from nicegan.evaluation.analysis import heatmap_grid, save_png
    from nicegan.inference import load_model

    output = png_output(args.output)
    model, cfg, _ = load_model(args.checkpoint, args.device)
    images = _load_images(args.input, args.n)
    out = save_png(heatmap_grid(model, images, args.direction, cfg.model.img_size), output)
    log.info("wrote %s (%d images: rows real, heatmap overlay, translation)", out, len(images))
    return 0


def run_latents(args: argparse.Namespace) -> int:
    from nicegan.data import open_domain
    from nicegan.evaluation.analysis import encode_images, latent_analysis, save_tsne_plot
    from nicegan.inference import load_model

    output = png_output(args.output)
    model, cfg, step = load_model(args.checkpoint, args.device)
    root = dataset_root(args.data, cfg.data.root)
    codes = {}
    for dom in "AB":
        src = open_domain(root, args.split, dom)
        pick = [round(i * (len(src) - 1) / max(1, min(args.n, len(src)) - 1)) for i in range(min(args.n, len(src)))]
        codes[dom] = encode_images(model, [src.load(i) for i in pick], dom.lower(), cfg.model.img_size)
    rep = latent_analysis(codes["A"], codes["B"])
    out = save_tsne_plot(rep, output, f"{cfg.model_name} step {step}: latent codes ({args.split} split)")
    result = {"mmd2_ab": rep.mmd2_ab, "mmd2_within_a": rep.mmd2_within_a, "bandwidth": rep.bandwidth,
              "n_a": rep.n_a, "n_b": rep.n_b, "plot": str(out)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"MMD^2 between the domains' latent codes: {rep.mmd2_ab:.5f}  (between two halves of A: "
              f"{rep.mmd2_within_a:.5f}; Gaussian kernel, bandwidth {rep.bandwidth:.4g})")
        log.info("t-SNE plot: %s", out)
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    from nicegan.evaluation.analysis import interpolation_grid, save_png
    from nicegan.inference import load_model

    output = png_output(args.output)
    model, cfg, _ = load_model(args.checkpoint, args.device)
    img1, img2 = _load_images(args.image1, 1)[0], _load_images(args.image2, 1)[0]
    arr = interpolation_grid(model, img1, img2, args.domain, cfg.model.img_size, args.steps)
    out = save_png(arr, output)
    log.info("wrote %s (row 1: into the other domain, row 2: back into domain %s)", out, args.domain.upper())
    return 0
