"""``nicegan import-official``: convert an official NICE-GAN checkpoint (weights and optimizer state)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nicegan.cli.common import positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-official", help="convert an official NICE-GAN checkpoint",
                       description="Convert a checkpoint of the official code (alpc91/NICE-GAN-pytorch: keys gen2B, "
                       "gen2A, disA, disB, G_optimizer, D_optimizer, start_iter) into a nicegan checkpoint that "
                       "`nicegan translate` and `nicegan resume` accept. The architecture is read off the weights.")
    p.add_argument("official", metavar="OFFICIAL.pt")
    p.add_argument("--out", required=True, metavar="CKPT",
                   help="output checkpoint file, or a run folder (written as RUN/checkpoints/latest.pt)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--light", dest="light", action="store_const", const=True, help="assert a light model")
    group.add_argument("--full", dest="light", action="store_const", const=False, help="assert a full model")
    p.add_argument("--img-size", type=positive_int, help="training size of a light model (default 256)")
    p.add_argument("--data", metavar="DIR", help="dataset folder recorded for `nicegan resume`")
    p.add_argument("--config", default="nicegan-light", metavar="PRESET_OR_YAML",
                   help="training settings recorded for resume (default nicegan-light)")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", default=[])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.checkpoint import LATEST, checkpoint_dir, write
    from nicegan.errors import NiceganError
    from nicegan.files import writable_dir
    from nicegan.training.official import convert_official

    out = Path(args.out).expanduser()
    if out.suffix != ".pt":  # a run folder
        if (checkpoint_dir(out) / LATEST).exists():
            raise NiceganError(f"{out} already holds a run; choose another --out")
        out = checkpoint_dir(out) / LATEST
    elif out.exists():
        raise NiceganError(f"{out} exists; refusing to overwrite it")
    writable_dir(out.parent, "output folder")  # before the conversion, not after it
    ckpt = convert_official(args.official, light=args.light, img_size=args.img_size, config=args.config,
                            overrides=args.set, data_root=args.data)
    write(ckpt, out)
    m = ckpt.config["model"]
    log.info("wrote %s: nicegan %s, img_size %d, ch %d, n_res %d, n_dis %d, step %d", out,
             "light" if m["light"] else "full", m["img_size"], m["ch"], m["n_res"], m["n_dis"], ckpt.step)
    return 0
