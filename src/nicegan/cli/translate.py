"""``nicegan translate``: translate an image or a folder with a checkpoint."""

from __future__ import annotations

import argparse
import logging

from nicegan.cli.common import add_checkpoint, add_device, add_progress, positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate images", description="Translate one image or every image below "
                       "a folder (recursively). Output files keep the input names (PNG by default).")
    add_checkpoint(p)
    p.add_argument("--input", required=True, metavar="FILE_OR_DIR")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--direction", required=True, choices=["a2b", "b2a"])
    p.add_argument("--size", type=positive_int, help="network input size (default: the training size)")
    p.add_argument("--keep-size", action="store_true", help="write outputs at each input's own size")
    p.add_argument("--heatmap", action="store_true", help="also write <name>_heatmap.png (attention over the input)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--format", default="png", choices=["png", "jpg"], help="output format (default png, lossless)")
    add_device(p, default="auto")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.inference import load_model, translate_paths

    model, cfg, step = load_model(args.checkpoint, args.device)
    size = args.size or cfg.model.img_size
    report = translate_paths(model, args.input, args.output, args.direction, size, keep_size=args.keep_size,
                             heatmap=args.heatmap, batch_size=args.batch_size, fmt=args.format,
                             progress=args.progress)
    log.info("translated %d image(s) %s with %s (step %d) into %s", len(report.written), args.direction,
             cfg.model_name, step, args.output)
    for key, value in report.diagnostics.items():
        log.info("%s: %.6g", key, value)
    return 0
