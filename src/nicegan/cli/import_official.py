"""``nicegan import-official``: the files of any official code base this toolkit implements, made ours."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nicegan.cli.common import positive_int

log = logging.getLogger("nicegan")

#: kept in step with nicegan.training.importers.FORMAT_NAMES (a test checks), so --help needs no torch import
FORMATS = ("nicegan", "cyclegan", "ugatit", "munit", "unit", "unit-master", "drit", "cogan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-official", help="convert the checkpoint files of an official implementation",
        description="Convert the files an official implementation writes (NICE-GAN, CycleGAN, U-GAT-IT, MUNIT, UNIT "
        "version_02, DRIT, CoGAN) into a run folder that `nicegan resume` continues (when the files hold every net) "
        "or an inference bundle (e.g. one released generator). Which code wrote the files is detected from their "
        "contents; the architecture is read off the weights, and what cannot be (usually the training size) is "
        "assumed at the official default and said.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="the official file(s) of one checkpoint (or a folder holding them)")
    p.add_argument("--out", required=True, metavar="OUT",
                   help="a new folder (run folder or bundle); for NICE-GAN also a .pt checkpoint file")
    p.add_argument("--format", dest="fmt", choices=FORMATS, metavar="NAME",
                   help=f"which official code wrote the files (default: detected): {', '.join(FORMATS)}")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--light", dest="light", action="store_const", const=True, help="assert a light model")
    group.add_argument("--full", dest="light", action="store_const", const=False, help="assert a full model")
    p.add_argument("--img-size", type=positive_int, help="training size, where the weights do not tell it")
    p.add_argument("--data", metavar="DIR", help="dataset folder recorded for `nicegan resume`")
    p.add_argument("--config", default=None, metavar="PRESET_OR_YAML",
                   help="training settings recorded for resume (default: the method's preset)")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", default=[])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for f in args.files:  # before torch is imported: a wrong path is reported at once
        if not Path(f).expanduser().exists():
            from nicegan.core.errors import CheckpointError

            raise CheckpointError(f"official checkpoint not found: {f}")
    from nicegan.training.importers import import_official

    report = import_official(args.files, args.out, fmt=args.fmt, config=args.config, overrides=args.set,
                             data_root=args.data, img_size=args.img_size, light=args.light)
    arch = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in report.settings.items())
    what = "a run folder" if report.kind == "run" else f"a bundle ({', '.join(report.directions)})"
    if report.kind == "run" and report.out.suffix == ".pt":
        what = "a checkpoint"
    log.info("wrote %s: %s, official %s files, step %d, %s parameters (%s)", report.out, what, report.format,
             report.step, f"{report.parameters:,}", arch)
    for note in report.notes:
        log.info("note: %s", note, extra={"option": "img_size" if "img_size" in note else None})
    return 0
