"""``nicegan demo``: train NICE-GAN on builtin:digits on this machine and write a report."""

from __future__ import annotations

import argparse
import logging

from nicegan.cli.common import add_device, add_progress, positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train on the built-in digits and write a report (offline, CPU friendly)",
                       description="Train NICE-GAN on builtin:digits (MNIST <-> optdigits, 32 px; offline), then "
                       "write a report: label preservation (per class, confusion matrices), translations (per "
                       "class), CAM heatmaps, loss curves and the latent MMD.")
    p.add_argument("--run-dir", metavar="RUN", help="run folder (default: a new ./nicegan-demo[-N])")
    p.add_argument("--max-steps", type=positive_int, help="training steps (default: the digits preset's)")
    p.add_argument("--stop-at", type=positive_int, metavar="STEP", help="stop training at STEP (with a checkpoint; "
                   "`nicegan resume RUN` continues it) and write the report of that step")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                   help="override config values of the digits preset")
    add_device(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.experiments.demo import run_demo

    res = run_demo(args.run_dir, args.max_steps, args.device, progress=args.progress, overrides=args.set,
                   stop_at=args.stop_at)
    m = res.metrics
    log.info("")
    log.info("label preservation on held-out digits (translated vs. untranslated baseline):")
    log.info("  A->B (MNIST->optdigits): %5.1f %%  vs %5.1f %%", 100 * m["digits/a2b_accuracy"],
             100 * m["digits/a2b_baseline"])
    log.info("  B->A (optdigits->MNIST): %5.1f %%  vs %5.1f %%", 100 * m["digits/b2a_accuracy"],
             100 * m["digits/b2a_baseline"])
    log.info("  (chance 10 %%; ceiling: the classifiers score %.1f %% (B) and %.1f %% (A) on real test digits)",
             100 * m["digits/classifier_b_test_accuracy"], 100 * m["digits/classifier_a_test_accuracy"])
    log.info("report: %s", res.report)
    log.info("images: %s", res.report.parent)
    if res.stopped:  # last, where a user who pressed Ctrl-C looks
        log.info("%s", res.stopped)
    return 0
