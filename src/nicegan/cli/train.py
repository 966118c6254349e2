"""``nicegan train``: start a run from a preset or YAML file, with typed overrides."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nicegan.cli.common import (
    add_device,
    add_fast_paths,
    add_progress,
    fast_path_values,
    non_negative_int,
    positive_int,
    report_training,
)
from nicegan.configs.presets import preset_names

if TYPE_CHECKING:  # the parser is built without torch: `nicegan --help` and the light commands start fast
    from nicegan.configs.schema import RunConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model", description="Train a new run. DIR holds trainA/ trainB/ "
                       "testA/ testB/ (any file names and formats, nested folders allowed), or use builtin:digits.")
    p.add_argument("--data", metavar="DIR", help="dataset folder, or builtin:digits")
    p.add_argument("--run-dir", metavar="RUN", help="folder for checkpoints, logs and samples (required unless "
                   "--dry-run)")
    p.add_argument("--config", metavar="PRESET_OR_YAML",
                   help=f"preset ({', '.join(preset_names())}) or YAML file; default: digits for builtin:digits, "
                   "else nicegan-light")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                   help="override config values, e.g. --set train.lr=2e-4 model.ch=32")
    p.add_argument("--max-steps", type=positive_int, help="shortcut for train.max_steps")
    p.add_argument("--seed", type=non_negative_int, help="shortcut for train.seed")
    p.add_argument("--stop-at", type=positive_int, metavar="STEP", help="save and stop at STEP without changing the "
                   "schedule (continue later with nicegan resume)")
    add_device(p)
    p.add_argument("--strict", action="store_true", help="undecodable images are an error (default: skipped)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    add_progress(p)
    add_fast_paths(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Preset/file + --set + shortcut flags -> validated RunConfig."""
    from nicegan.configs.schema import given, resolve_config
    from nicegan.data.digits import is_digits

    name = args.config or ("digits" if is_digits(args.data or "") else "nicegan-light")
    shortcuts = {"data.root": args.data, "data.strict": True if args.strict else None, "train.max_steps":
                 args.max_steps, "train.seed": args.seed, "train.device": args.device, **fast_path_values(args)}
    return resolve_config(name, [*args.set, *given(shortcuts)])


def run(args: argparse.Namespace) -> int:
    from nicegan.core.errors import NiceganError
    from nicegan.training.runs import start_run

    cfg = config_from_args(args)
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    if not args.run_dir:
        raise NiceganError("--run-dir is required (a folder for checkpoints, logs and samples)")
    if not cfg.data.root:
        raise NiceganError("--data is required (a folder with trainA/ trainB/ testA/ testB/, or builtin:digits)")
    report_training(start_run(cfg, args.run_dir, progress=args.progress, stop_at=args.stop_at))
    return 0
