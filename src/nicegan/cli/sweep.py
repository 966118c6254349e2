"""``nicegan sweep``: train and evaluate a grid of runs (variants x seeds) and aggregate them over seeds."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from nicegan.cli.common import add_device, add_progress, non_negative_int, positive_int
from nicegan.configs.sweeps import sweep_names

log = logging.getLogger("nicegan")


def _int_list(minimum: int) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated whole numbers >= ``minimum``."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(x) for x in text.replace(" ", ",").split(",") if x]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
        if not values or any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers >= {minimum}, got {text!r}")
        return values

    return parse


def _names(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return values


def _names_or_none(text: str) -> list[str]:
    return [] if text.strip().lower() == "none" else _names(text)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="train and evaluate a grid of runs over seeds; tables and plots with error bars",
        description="Train every variant of a sweep file with every seed, evaluate each run at the sweep's steps, "
        "and write OUT/results.csv, results.md (mean ± std and a 95 % t-interval over seeds), results.json and "
        "plots/. Run it again to resume: finished runs are skipped, interrupted ones continue from their "
        "checkpoint. See docs/sweep.md.")
    p.add_argument("sweep", metavar="SWEEP", help=f"a sweep YAML file or a shipped sweep ({', '.join(sweep_names())})")
    p.add_argument("--out", metavar="OUT", help="output folder (default: ./sweep-NAME)")
    p.add_argument("--report-only", action="store_true", help="only aggregate the evaluations already in OUT")
    p.add_argument("--dry-run", action="store_true", help="resolve every variant's config, list the runs and exit")
    p.add_argument("--executor", default="auto", choices=["auto", "inline", "local", "slurm"],
                   help="inline: in this process, one run after the other; local: submitit subprocesses, --parallel "
                   "at a time; slurm: one Slurm job per run (default auto: inline, or local with --parallel > 1)")
    p.add_argument("--parallel", type=positive_int, metavar="N", help="runs at a time (local: each gets "
                   "cores // N torch threads; slurm: the job array's limit, default none)")
    g = p.add_argument_group("replacing the sweep file's settings (for quick runs)")
    g.add_argument("--steps", type=positive_int, metavar="N", help="step budget of every run (the file's eval "
                   "steps below N are kept, N is added)")
    g.add_argument("--eval-steps", type=_int_list(1), metavar="S1,S2", help="evaluation steps")
    g.add_argument("--seeds", type=_int_list(0), metavar="K1,K2", help="seeds")
    g.add_argument("--variants", type=_names, metavar="NAME,...", help="only these variants")
    g.add_argument("--metrics", type=_names, metavar="NAME,...", help="metrics to evaluate (default: the file's, "
                   "else every one that applies, e.g. label_preservation,fid_kid)")
    g.add_argument("--eval-limit", type=non_negative_int, metavar="N", help="score at most N test images per "
                   "direction (0: all)")
    g.add_argument("--final-metrics", type=_names_or_none, metavar="NAME,...|none", help="metrics evaluated at the "
                   "last step only (the file's final_metrics; none: no such metrics)")
    add_device(p)
    add_progress(p)
    s = p.add_argument_group("slurm (--executor slurm; needs srun/sbatch, i.e. a cluster's login node)")
    s.add_argument("--slurm-partition", metavar="NAME")
    s.add_argument("--slurm-gpus", type=non_negative_int, metavar="N", help="GPUs per run")
    s.add_argument("--slurm-cpus", type=positive_int, metavar="N", help="CPUs per run (also its torch threads)")
    s.add_argument("--slurm-mem-gb", type=positive_int, metavar="GB", help="memory per run")
    s.add_argument("--slurm-time", type=positive_int, metavar="MIN", help="time limit per run in minutes")
    s.add_argument("--slurm-param", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="an extra #SBATCH option, e.g. account=myproj or qos=normal (repeatable)")
    s.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                   help="a shell line run before each job, e.g. 'source ~/venv/bin/activate' (repeatable)")
    s.add_argument("--no-wait", action="store_true", help="submit the jobs and exit (aggregate later with "
                   "--report-only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nicegan.core.errors import NiceganError
    from nicegan.experiments.sweep import load_sweep, plan, report, run_sweep
    from nicegan.experiments.sweep.executors import SlurmOptions

    sweep = load_sweep(args.sweep).with_changes(
        steps=args.steps, eval_steps=args.eval_steps, seeds=args.seeds, variants=args.variants,
        metrics=args.metrics, eval_limit=args.eval_limit, final_metrics=args.final_metrics)
    out = Path(args.out or f"sweep-{sweep.name}")
    executor = args.executor
    if executor == "auto":
        executor = "local" if (args.parallel or 1) > 1 else "inline"
    if args.no_wait and executor != "slurm":
        raise NiceganError("--no-wait is for --executor slurm")
    if executor == "inline" and (args.parallel or 1) > 1:
        raise NiceganError("--executor inline runs one run at a time; use --executor local for --parallel")
    if args.dry_run:
        for spec in plan(sweep, out, args.device):
            print(f"{spec.variant}\tseed {spec.seed}\t{spec.run_dir}")
        from nicegan.core.progress import plural

        print(f"{plural(sweep.n_runs, 'run')}, {plural(sweep.steps, 'step')} each, evaluated at "
              f"{', '.join(map(str, sweep.eval_steps))}")
        return 0
    if args.report_only:
        col = report(sweep, out, args.device)
        log.info("sweep %s: %d evaluations of %d runs aggregated into %s", sweep.name, len(col.rows),
                 len(col.runs), out / "results.md")
        return 0
    slurm = SlurmOptions(args.slurm_partition, args.slurm_gpus, args.slurm_cpus, args.slurm_mem_gb, args.slurm_time,
                         dict(args.slurm_param), list(args.slurm_setup))
    res = run_sweep(sweep, out, executor, args.parallel, args.device, slurm, wait=not args.no_wait,
                    progress=args.progress)
    if res.failed:
        detail = "; ".join(f"{f['variant']} seed {f['seed']}: {f.get('error')}" for f in res.failed[:3])
        more = " ..." if len(res.failed) > 3 else ""
        raise NiceganError(f"{len(res.failed)} of {res.ran} runs failed ({detail}{more}); the others are in "
                           f"{out / 'results.md'}; run the same command again to retry them")
    return 0
