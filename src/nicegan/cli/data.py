"""``nicegan data check DIR`` and ``nicegan data download NAME DIR``: look at a dataset before training on it, and
fetch the standard unpaired ones."""

from __future__ import annotations

import argparse
import json
import logging

from nicegan.cli.common import add_progress, non_negative_int, positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from nicegan.core.limits import DOWNLOAD_DEADLINE as DEADLINE
    from nicegan.core.limits import DOWNLOAD_MIN_RATE as MIN_RATE

    p = sub.add_parser("data", help="check a dataset folder, or download a standard one",
                       description="Dataset tools: 'check' reports what training would see in a folder with trainA/ "
                       "trainB/ testA/ testB/; 'download' fetches a standard unpaired dataset into that layout.")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    c = data_sub.add_parser("check", help="what training would see in a dataset folder",
                            description="Per folder: files, usable images, sizes, modes, unreadable files and "
                            "entries that are not regular files (training skips them), then exact duplicates "
                            "(SHA-256 of the bytes) between train and test of a domain (a warning: test leakage), "
                            "between the domains and within a folder. Exit status 2 when training could not use "
                            "the dataset (a folder missing or without usable images).")
    c.add_argument("dir", metavar="DIR", help="folder with trainA/ trainB/ testA/ testB/")
    c.add_argument("--img-size", type=positive_int, metavar="N",
                   help="also count images under N pixels on a side (training upscales them)")
    c.add_argument("--strict", action="store_true", help="any unreadable entry makes the dataset unusable (as "
                   "'nicegan train --strict' would)")
    c.add_argument("--json", action="store_true", help="print the full report as JSON")
    add_progress(c)
    c.set_defaults(func=run_check)

    d = data_sub.add_parser("download", help="download a standard unpaired dataset",
                            description="Download NAME into DIR/NAME with trainA/ trainB/ testA/ testB/. The transfer "
                            "resumes after an interruption (DIR/NAME.part is kept: run the same command again), is "
                            "checked against a pinned SHA-256 when one is known, else against the announced size and "
                            "by reading the whole archive back; the SHA-256 is always printed so it can be pinned "
                            "with --sha256. 'nicegan data download --list' shows the known names and addresses.")
    d.add_argument("name", metavar="NAME", nargs="?", help="dataset name (see --list)")
    d.add_argument("dir", metavar="DIR", nargs="?", help="parent folder: the dataset goes into DIR/NAME")
    d.add_argument("--list", action="store_true", help="list the known datasets and exit")
    d.add_argument("--url", help="download from this address instead (a mirror; any NAME is then allowed)")
    d.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the archive")
    d.add_argument("--force", action="store_true", help="replace an existing non-empty DIR/NAME")
    d.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds a connection or read may stall before it fails, and the period --min-rate is "
                   "averaged over (default 30)")
    d.add_argument("--retries", type=non_negative_int, default=3, metavar="N",
                   help="automatic resumptions of a dropped connection (default 3)")
    d.add_argument("--deadline", type=float, default=DEADLINE, metavar="S",
                   help="seconds the whole transfer, retries included, may take; the partial file is kept for the "
                   f"next run (default {DEADLINE:g}, {DEADLINE / 3600:g} h)")
    d.add_argument("--min-rate", type=float, default=MIN_RATE / 1000, metavar="KB_S",
                   help="slowest average rate in kB/s over each --timeout period; slower counts as a dropped "
                   f"connection (default {MIN_RATE / 1000:g}; 0: any rate)")
    add_progress(d)
    d.set_defaults(func=run_download)


def run_check(args: argparse.Namespace) -> int:
    from nicegan.core.errors import DataError
    from nicegan.data.check import check_dataset, format_report, warn_about

    report = check_dataset(args.dir, progress=args.progress, min_size=args.img_size)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print("\n".join(format_report(report, more="--json lists them all")))
    warn_about(report)
    problems = report.problems(strict=args.strict)
    if problems:  # a problem only --strict makes ends in "(strict)": that word becomes the flag
        raise DataError(f"{report.root} is not usable for training: {'; '.join(problems)}",
                        option="strict" if any(p.endswith("(strict)") for p in problems) else None)
    if not args.json:
        print(report.summary())
    return 0


def run_download(args: argparse.Namespace) -> int:
    from nicegan.core.errors import NiceganError
    from nicegan.data.download import DATASETS, MIRROR_ENV, download

    if args.list:
        for info in DATASETS.values():
            pin = f"sha256 {info.sha256}" if info.sha256 else "no pinned sha256"
            note = f"; {info.note}" if info.note else ""
            print(f"{info.name:<24}{info.url}  ({info.source}; {pin}{note})")
        print(f"(set {MIRROR_ENV}=URL to fetch every NAME from URL/NAME.zip instead)")
        return 0
    if not args.name or not args.dir:
        raise NiceganError("give NAME and DIR (e.g. nicegan data download horse2zebra datasets), or --list")
    res = download(args.name, args.dir, url=args.url, sha256=args.sha256, force=args.force, timeout=args.timeout,
                   retries=args.retries, progress=args.progress, deadline=args.deadline,
                   min_rate=args.min_rate * 1000)
    counts = ", ".join(f"{k} {n}" for k, n in res.counts.items())
    print(f"{res.name}: {res.size:,} bytes from {res.url}")
    if res.pinned:
        print(f"sha256 {res.sha256} (matches the pinned value)")
    else:
        print(f"sha256 {res.sha256} (nothing pinned: size and archive checked; pin it with --sha256 {res.sha256})")
    print(f"extracted into {res.target}: {counts} files")
    print(f"next: nicegan data check {res.target}")
    return 0
