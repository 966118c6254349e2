"""``nicegan resume``: continue a run from its latest checkpoint with the config saved in it."""

from __future__ import annotations

import argparse
import logging

from nicegan.cli.common import add_device, add_fast_paths, add_progress, fast_path_values, positive_int, report_training

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resume", help="continue a run", description="Continue RUN from checkpoints/latest.pt. The "
                       "model, data and schedule come from the checkpoint; only these options may change them.")
    p.add_argument("run_dir", metavar="RUN", help="run folder")
    p.add_argument("--max-steps", type=positive_int, help="train up to this step (the LR schedule follows it)")
    p.add_argument("--stop-at", type=positive_int, metavar="STEP", help="save and stop at STEP")
    p.add_argument("--data", metavar="DIR", help="dataset folder, if it moved since the run started")
    add_device(p)
    add_progress(p)
    add_fast_paths(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.core.errors import NiceganError
    from nicegan.formats.bundle import is_bundle
    from nicegan.training.runs import resume_run

    if is_bundle(args.run_dir):
        raise NiceganError(f"{args.run_dir} is an inference bundle (translation weights only, no discriminators or "
                           "optimizer state): resume needs the run folder it was exported from")

    result = resume_run(args.run_dir, max_steps=args.max_steps, data_root=args.data, device=args.device,
                        progress=args.progress, stop_at=args.stop_at, fast_paths=fast_path_values(args))
    if result.logs or result.interrupted:
        report_training(result)
    else:
        log.info("%s is already at step %d (its max_steps); pass --max-steps to train further", result.run_dir,
                 result.step)
    return 0
