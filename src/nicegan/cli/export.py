"""``nicegan export``: write an inference bundle (optionally with ONNX or TorchScript graphs) from a trained model."""

from __future__ import annotations

import argparse
import logging

from nicegan.cli.common import add_threads

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    # The defaults live in nicegan.deploy.export (not imported here: building the parser must not load torch).
    p = sub.add_parser("export", help="write an inference bundle (safetensors, ONNX or TorchScript)",
                       description="Write an inference bundle: config.json, model.safetensors with only the nets "
                       "translation needs (loaded without pickle) and a README.md card. --format onnx or "
                       "torchscript adds model_<direction>.onnx/.pt, checked against PyTorch before the bundle is "
                       "moved into place. Every command taking --checkpoint also takes a bundle.")
    p.add_argument("source", metavar="RUN_OR_CKPT", help="run folder, checkpoint file or bundle")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle folder (new, empty, or an earlier bundle)")
    p.add_argument("--direction", default="both", choices=["a2b", "b2a", "both"])
    p.add_argument("--format", dest="fmt", default="safetensors", choices=["safetensors", "onnx", "torchscript"])
    p.add_argument("--opset", type=int, help="ONNX opset, 13 to 20 (default 17)")
    p.add_argument("--tolerance", type=float, help="largest accepted absolute difference between a graph and "
                   "PyTorch on images in [-1, 1] (default 1e-4)")
    add_threads(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.deploy.export import export

    report = export(args.source, args.out, direction=args.direction, fmt=args.fmt, opset=args.opset,
                    tolerance=args.tolerance)
    print("\n".join(report.summary_lines()), flush=True)
    return 0
