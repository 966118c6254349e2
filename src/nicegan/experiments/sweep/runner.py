"""Running a sweep: plan the runs, skip the finished ones, hand the rest to an executor, report progress, and
write the results.

Layout of the output folder ``OUT``::

    OUT/sweep.json                      the resolved plan (sweep settings, every run's config)
    OUT/runs/<variant>/seed<k>/         a run folder (checkpoints/, metrics.jsonl, samples/, config.yaml)
        evals/step_0000250.json         the evaluation at that step
        failed.json                     the last failure of this run (removed when it is tried again)
    OUT/submitit/                       job logs and pickles (local and slurm executors)
    OUT/results.csv | .json | .md       the aggregated results
    OUT/plots/<metric>.png
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nicegan.core.errors import NiceganError
from nicegan.core.progress import hms, plural
from nicegan.experiments.sweep.executors import SlurmOptions, make_executor, run_inline, run_local, submit_all, wait_all
from nicegan.experiments.sweep.jobs import RunSpec, config_mismatch, finished
from nicegan.experiments.sweep.report import Collected, write_report
from nicegan.experiments.sweep.spec import Sweep

log = logging.getLogger("nicegan")


@dataclass
class SweepResult:
    out: Path
    ran: int  # runs that were handed to the executor
    skipped: int  # runs already finished
    failed: list[dict[str, Any]]
    collected: Collected | None  # None when the jobs were submitted without waiting


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / variant / f"seed{seed}"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan(sweep: Sweep, out: Path, device: str | None = None, threads: int | None = None,
         progress: bool | None = False) -> list[RunSpec]:
    """One :class:`RunSpec` per variant and seed (every config resolved: a bad one fails here, before any run)."""
    configs = sweep.resolve(device)
    specs = []
    for v in sweep.variants:
        for seed in sweep.seeds:
            cfg = copy.deepcopy(configs[v.name])  # a copy per run
            cfg["train"]["seed"] = seed
            specs.append(RunSpec(v.name, seed, str(run_dir(out, v.name, seed)), cfg, sweep.eval_steps,
                                 sweep.metrics, sweep.eval_limit, threads, progress, sweep.final_metrics,
                                 sweep.final_eval_limit))
    return specs


def meta(sweep: Sweep) -> dict[str, Any]:
    """The sweep's settings as recorded in sweep.json and results.json."""
    return {"name": sweep.name, "description": sweep.description, "source": sweep.source, "data": sweep.data,
            "steps": sweep.steps, "eval_steps": list(sweep.eval_steps), "seeds": list(sweep.seeds),
            "variants": [v.name for v in sweep.variants],
            "metrics": list(sweep.metrics) if sweep.metrics is not None else None, "eval_limit": sweep.eval_limit,
            "final_metrics": list(sweep.final_metrics), "final_eval_limit": sweep.final_eval_limit}


class _Progress:
    """One log line per run start and end, with the time left estimated from the runs finished so far."""

    def __init__(self, total: int, parallel: int) -> None:
        self.total, self.parallel = total, max(1, parallel)
        self.started, self.ended, self.t0 = 0, 0, time.monotonic()
        self.durations: list[float] = []
        self.failed: list[dict[str, Any]] = []
        self.index: dict[tuple[str, int], int] = {}
        self.begun: dict[tuple[str, int], float] = {}

    def start(self, spec: RunSpec) -> None:
        self.started += 1
        self.index[(spec.variant, spec.seed)] = self.started
        self.begun[(spec.variant, spec.seed)] = time.monotonic()
        log.info("sweep: [%d/%d] start %s (%s)", self.started, self.total, spec.label, spec.run_dir)

    def finish(self, spec: RunSpec, outcome: dict[str, Any]) -> None:
        self.ended += 1
        key = (spec.variant, spec.seed)
        took = time.monotonic() - self.begun.get(key, self.t0)
        left = self.total - self.ended
        if outcome.get("status") == "done":
            self.durations.append(took)
        eta = (sum(self.durations) / len(self.durations) * -(-left // self.parallel)) if self.durations else None
        tail = f"{left} left, eta {hms(eta) if eta is not None else '?'}" if left else "all runs ended"
        n = self.index.get(key, self.ended)
        if outcome.get("status") == "done":
            log.info("sweep: [%d/%d] done %s in %s; %s", n, self.total, spec.label, hms(took), tail)
        else:
            self.failed.append(outcome)
            log.warning("sweep: [%d/%d] FAILED %s after %s: %s; %s", n, self.total, spec.label, hms(took),
                        outcome.get("error"), tail)


def _write_plan(out: Path, sweep: Sweep, specs: list[RunSpec]) -> None:
    from nicegan.core.files import replacing

    payload = {**meta(sweep), "runs": [asdict(s) for s in specs]}
    with replacing(out / "sweep.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")


def report(sweep: Sweep, out: Path, device: str | None = None) -> Collected:
    """Aggregate whatever evaluations the run folders hold (``--report-only``)."""
    out = Path(out).expanduser()
    if not out.is_dir():
        raise NiceganError(f"sweep folder not found: {out}")
    return write_report(meta(sweep), plan(sweep, out, device), out)


def run_sweep(sweep: Sweep, out: Path, executor: str = "inline", parallel: int | None = None,
              device: str | None = None, slurm: SlurmOptions | None = None, wait: bool = True,
              progress: bool | None = False) -> SweepResult:
    """Train and evaluate every run of ``sweep`` not finished yet in ``out``, then write the results.

    ``executor``: ``inline`` (this process, one run after the other), ``local`` (submitit subprocesses, at most
    ``parallel`` at once, each with ``cores // parallel`` torch threads) or ``slurm`` (one Slurm job per run, a job
    array with at most ``parallel`` running; ``wait=False`` submits and returns).
    """
    from nicegan.core.files import writable_dir
    from nicegan.training.runs import run_lock

    out = writable_dir(Path(out).expanduser(), "sweep folder")
    n_par = parallel or 1
    if executor == "local":
        threads: int | None = max(1, cpu_count() // n_par)
    elif executor == "slurm":
        threads = slurm.cpus if slurm else None
    else:
        threads = None
    specs = plan(sweep, out, device, threads, progress if executor == "inline" else False)
    with run_lock(out):  # one sweep process per folder (the runs lock their own folders too)
        clashes = [(s, why) for s in specs if (why := config_mismatch(s))]
        if clashes:
            s, why = clashes[0]
            more = f" (and {len(clashes) - 1} more run folders)" if len(clashes) > 1 else ""
            raise NiceganError(f"{s.run_dir} was trained with another config ({why}){more}; use another output "
                               "folder (out), or the sweep settings it was started with", option="out")
        _write_plan(out, sweep, specs)
        todo = [s for s in specs if not finished(s)]
        skipped = len(specs) - len(todo)
        log.info("sweep %s: %s (%s x %s), %d finished already, %d to run on %s%s", sweep.name,
                 plural(len(specs), "run"), plural(len(sweep.variants), "variant"), plural(len(sweep.seeds), "seed"),
                 skipped, len(todo), executor,
                 f" ({n_par} at a time, {plural(threads, 'torch thread')} each)" if executor == "local" else "")
        prog = _Progress(len(todo), n_par)
        if todo and executor == "inline":
            run_inline(todo, prog.start, prog.finish)
        elif todo and executor == "local":
            run_local(make_executor("local", out / "submitit", sweep.name), todo, n_par, prog.start, prog.finish)
        elif todo:
            ex = make_executor("slurm", out / "submitit", sweep.name, parallel, slurm)
            jobs = submit_all(ex, todo)
            log.info("sweep: submitted %d Slurm job(s): %s", len(jobs), ", ".join(j.job_id for j in jobs[:5])
                     + (" ..." if len(jobs) > 5 else ""))
            if not wait:
                return SweepResult(out, len(todo), skipped, [], None)
            wait_all(jobs, todo, prog.finish)
        collected = write_report(meta(sweep), specs, out)
    log.info("sweep %s: results in %s (results.md, results.csv, results.json, plots/)", sweep.name, out)
    return SweepResult(out, len(todo), skipped, prog.failed, collected)
