"""``nicegan heatmaps``, ``nicegan latents``, ``nicegan interpolate``: the paper's analyses, with pictures."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from nicegan.cli.common import add_checkpoint, add_device, dataset_root, non_negative_int, png_output, positive_int

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

    p = sub.add_parser("interpolate", help="translations along a line between two images' latent codes, or between "
                       "two style codes for one image (PNG)", description="Latent interpolation: IMAGE1 IMAGE2 of one "
                       "domain, decoded along the line between their latent codes. Style interpolation (multimodal "
                       "models): IMAGE1 alone with --style-seeds or --style-from, translated with the codes along the "
                       "line between two style codes of the other domain.")
    add_checkpoint(p)
    p.add_argument("image1")
    p.add_argument("image2", nargs="?", help="latent interpolation: the second image (leave it out for styles)")
    p.add_argument("--domain", default="a", choices=["a", "b"], help="domain of the input image(s)")
    p.add_argument("--steps", type=positive_int, default=8)
    p.add_argument("--style-seeds", nargs=2, type=non_negative_int, metavar=("S1", "S2"), help="style "
                   "interpolation between the random style codes of two seeds (the style `translate --style-seed S` "
                   "uses)")
    p.add_argument("--style-from", nargs=2, metavar=("REF1", "REF2"), help="style interpolation between the style "
                   "codes of two reference images of the other domain")
    p.add_argument("--output", required=True, metavar="PNG")
    add_device(p, default="cpu")
    p.set_defaults(func=run_interpolate)


def _load_images(path: Path, n: int | None = None) -> list:
    from nicegan.core.errors import NiceganError
    from nicegan.data.images import ImageDecodeError, load_rgb
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
    from nicegan.core.progress import plural

    log.info("wrote %s (%s: rows real, heatmap overlay, translation)", out, plural(len(images), "image"))
    return 0


def run_latents(args: argparse.Namespace) -> int:
    import numpy as np

    from nicegan.data import open_domain
    from nicegan.evaluation.analysis import domain_codes, latent_analysis, save_tsne_plot
    from nicegan.inference import load_model

    output = png_output(args.output)
    model, cfg, step = load_model(args.checkpoint, args.device)
    root = dataset_root(args.data, cfg.data.root)
    sources = {dom: open_domain(root, args.split, dom) for dom in "AB"}
    codes, labels = domain_codes(model, sources, args.n, cfg.model.img_size)
    both = None if labels["A"] is None or labels["B"] is None else np.concatenate([labels["A"], labels["B"]])
    rep = latent_analysis(codes["A"], codes["B"], labels=both)
    out = save_tsne_plot(rep, output, f"{cfg.model_name} step {step}: latent codes ({args.split} split)\n"
                         f"MMD^2 A-B {rep.mmd2_ab:.4f}, within A {rep.mmd2_within_a:.4f}, within B "
                         f"{rep.mmd2_within_b:.4f}")
    result = {"mmd2_ab": rep.mmd2_ab, "mmd2_within_a": rep.mmd2_within_a, "mmd2_within_b": rep.mmd2_within_b,
              "bandwidth": rep.bandwidth, "n_a": rep.n_a, "n_b": rep.n_b, "coloured_by": "class" if both is not None
              else "domain", "plot": str(out)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"MMD^2 between the domains' latent codes: {rep.mmd2_ab:.5f}  (between alternate halves of A: "
              f"{rep.mmd2_within_a:.5f}, of B: {rep.mmd2_within_b:.5f}; Gaussian kernel, bandwidth "
              f"{rep.bandwidth:.4g})")
        log.info("t-SNE plot: %s (%s)", out, "colour: digit class, marker: domain" if both is not None
                 else "colour: domain")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    from nicegan.core.errors import NiceganError
    from nicegan.evaluation.analysis import interpolation_grid, save_png
    from nicegan.inference import load_model

    output = png_output(args.output)
    styled = args.style_seeds is not None or args.style_from is not None
    if styled and args.image2 is not None:
        raise NiceganError("style interpolation translates one image: drop IMAGE2, or drop --style-seeds/--style-from "
                           "for latent interpolation between two images")
    if args.style_seeds is not None and args.style_from is not None:
        raise NiceganError("give --style-seeds or --style-from, not both")
    if not styled and args.image2 is None:
        raise NiceganError("give IMAGE2 (latent interpolation between two images) or --style-seeds/--style-from "
                           "(style interpolation for one image)")
    model, cfg, _ = load_model(args.checkpoint, args.device)
    if styled:
        return _interpolate_styles(args, model, cfg, output)
    img1, img2 = _load_images(args.image1, 1)[0], _load_images(args.image2, 1)[0]
    arr = interpolation_grid(model, img1, img2, args.domain, cfg.model.img_size, args.steps)
    out = save_png(arr, output)
    log.info("wrote %s (row 1: into the other domain, row 2: back into domain %s)", out, args.domain.upper())
    return 0


def _interpolate_styles(args: argparse.Namespace, model, cfg, output: Path) -> int:
    """One row: the input, then its translations along the line between two style codes of the other domain."""
    from nicegan.evaluation.analysis import save_png, style_interpolation_grid
    from nicegan.inference.styles import prior_styles, require_style_model, style_of_image

    require_style_model(model, "--style-seeds" if args.style_seeds is not None else "--style-from")
    target = "b" if args.domain == "a" else "a"
    if args.style_seeds is not None:
        ends = [prior_styles(model, seed, 1)[0] for seed in args.style_seeds]
        what = f"style seeds {args.style_seeds[0]} and {args.style_seeds[1]}"
    else:
        ends = [style_of_image(model, _load_images(Path(ref), 1)[0], target) for ref in args.style_from]
        what = f"the styles of {args.style_from[0]} and {args.style_from[1]}"
    image = _load_images(Path(args.image1), 1)[0]
    arr = style_interpolation_grid(model, image, args.domain, ends[0], ends[1], cfg.model.img_size, args.steps)
    out = save_png(arr, output)
    log.info("wrote %s (the input, then %d translations into domain %s between %s)", out, args.steps,
             target.upper(), what)
    return 0
