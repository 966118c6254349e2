"""``nicegan user-study serve|report``: the paper's human-preference study, blinded, with votes in SQLite."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nicegan.cli.common import add_listen, add_progress, non_negative_int, positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from nicegan.web.study import DEFAULT_QUESTION  # no web framework imported: only the page's default text

    p = sub.add_parser("user-study", help="blinded human-preference study of several methods' translations",
                       description="Serve a blinded preference study of K methods' outputs for the same inputs "
                       "(as in the NICE-GAN paper), then report preference shares with 95 % intervals.")
    cmds = p.add_subparsers(dest="study_command", metavar="serve|report")
    cmds.required = True

    s = cmds.add_parser("serve", help="serve the study page; votes go to an SQLite database",
                        description="Each trial shows a source image and the methods' outputs for it (all methods, "
                        "or two with --pairs) in random order; the participant clicks the best. Outputs are matched "
                        "to sources by relative file name (any image extension), as nicegan translate writes them. "
                        "Give each participant a link ending in ?pid=THEIR_ID (without one the browser makes up an "
                        "id and keeps it). Restarting with the same options and --db continues the study.")
    s.add_argument("--methods", nargs="+", required=True, metavar="NAME=DIR",
                   help="two or more methods, each a name and the folder of its outputs")
    s.add_argument("--sources", required=True, metavar="DIR", help="the input images the methods translated")
    s.add_argument("--db", required=True, metavar="FILE", help="SQLite file of the votes (created if new)")
    s.add_argument("--trials", type=positive_int, metavar="N",
                   help="trials per participant, attention checks included (default: 20, or fewer when there are "
                   "fewer distinct trials)")
    s.add_argument("--checks", type=non_negative_int, metavar="N",
                   help="how many of the trials are attention checks, repeating an earlier trial (default: 2)")
    s.add_argument("--pairs", action="store_true", help="show two methods per trial instead of all of them")
    s.add_argument("--common-only", action="store_true",
                   help="use only the inputs every method has an output for (default: a missing output is an error)")
    s.add_argument("--question", metavar="TEXT", help=f"the question above the images (default: {DEFAULT_QUESTION!r}); "
                   "it must not name a method")
    add_listen(s, port=7861)
    add_progress(s)
    s.set_defaults(func=run_serve)

    r = cmds.add_parser("report", help="preference shares, win matrix and attention checks of a study's votes",
                        description="Print each method's preference share (picked when shown) with a 95 % Wilson "
                        "interval, the pairwise win matrix and the attention-check results; optionally write a bar "
                        "chart and the raw votes.")
    r.add_argument("db", metavar="DB", help="the study's SQLite file")
    r.add_argument("--out", metavar="PNG", help="write a bar chart of the shares with error bars")
    r.add_argument("--csv", metavar="FILE", help="write every vote as CSV")
    r.add_argument("--exclude-failed-checks", action="store_true",
                   help="leave out participants who picked differently on an attention check and its original")
    r.add_argument("--json", action="store_true", help="print the numbers as JSON instead of the table")
    r.set_defaults(func=run_report)


def run_serve(args: argparse.Namespace) -> int:
    from nicegan.core.errors import NiceganError
    from nicegan.web.common import browser_url, check_port, is_loopback, require_web, run_app
    from nicegan.web.study import DEFAULT_QUESTION, create_app, open_study

    require_web("the user study")  # before scanning folders: a missing extra should not cost a long check first
    if args.question is not None and not args.question.strip():
        raise NiceganError("--question is empty")
    check_port(args.host, args.port)  # before the database exists: a taken port must leave no empty study behind
    server = open_study(args.methods, args.sources, args.db, pairs=args.pairs, trials=args.trials,
                        checks=args.checks, common_only=args.common_only,
                        question=args.question or DEFAULT_QUESTION, progress=args.progress)
    study = server.study
    shown = "pairs of methods" if study.pairs else f"all {len(study.methods)} methods"
    log.info("user study: %d methods, %d inputs, %d trials per participant (%d attention checks), %s per trial",
             len(study.methods), len(study.items), study.trials, study.checks, shown)
    log.info("votes: %s (nicegan user-study report %s)", server.db.path, server.db.path)
    url = browser_url(args.host, args.port)
    log.info("open %s  - give each participant their own link, e.g. %s?pid=P01  (Ctrl-C stops)", url, url)
    if not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach this machine on port %d can take part", args.host,
                    args.port)
    run_app(create_app(server), args.host, args.port)  # until Ctrl-C, the normal end of a study
    log.info("stopped; the votes are kept in %s", server.db.path)
    return 0


def run_report(args: argparse.Namespace) -> int:
    import json
    import sqlite3

    from nicegan.cli.common import png_output
    from nicegan.core.errors import NiceganError
    from nicegan.core.files import describe_os_error
    from nicegan.web.study_db import StudyDB, report_from_db, save_chart

    out = png_output(args.out) if args.out else None
    csv_path = Path(args.csv).expanduser() if args.csv else None
    if csv_path is not None and csv_path.is_dir():
        raise NiceganError(f"--csv {csv_path} is a folder; give a file name")
    db = StudyDB.open_existing(args.db)
    for target in (out, csv_path):
        if target is not None and target.resolve() == db.path.resolve():
            raise NiceganError(f"{target} is the study database itself; choose another file")
    try:
        rep = report_from_db(db, exclude_failed=args.exclude_failed_checks)
    except sqlite3.Error as e:  # damaged after its header and meta table
        raise NiceganError(f"cannot read the votes in {db.path}: {e}") from None
    if args.json:
        print(json.dumps({
            "participants": len(rep.participants), "votes": rep.votes, "pairs": rep.pairs,
            "shares": {s.name: {"picked": s.chosen, "shown": s.shown,
                                "share": s.share if s.shown else None, "ci95": list(s.interval)} for s in rep.shares},
            "wins": {a: dict(zip(rep.methods, row, strict=True)) for a, row in zip(rep.methods, rep.wins, strict=True)},
            "checks": {"answered": rep.checks_answered, "consistent": rep.checks_consistent, "failed": rep.failed},
            "excluded": rep.excluded}))
    else:
        print(rep.text())
    for target in (out, csv_path):
        if target is not None:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise NiceganError(describe_os_error(e, f"cannot create the folder of {target}")) from None
    if out is not None:
        save_chart(rep, out)
        log.info("chart: %s", out)
    if csv_path is not None:
        n = db.write_csv(csv_path)
        log.info("%d votes: %s", n, csv_path)
    return 0
