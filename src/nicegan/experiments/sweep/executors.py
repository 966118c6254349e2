"""Where a sweep's runs execute: in this process (``inline``), in local subprocesses or on a Slurm cluster.

The last two hand :func:`nicegan.experiments.sweep.jobs.run_job` to submitit (the ``sweep`` extra), which pickles
the call, runs it in another process or as a Slurm job, and brings its result back; nicegan only decides how many
run at once. The job function and its :class:`~nicegan.experiments.sweep.jobs.RunSpec` are plain, picklable data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nicegan.core.errors import NiceganError
from nicegan.experiments.sweep.jobs import RunSpec, run_job

log = logging.getLogger("nicegan")

EXECUTORS = ("inline", "local", "slurm")
#: a local job's time limit (submitit's default is 2 minutes): a run is never cut short on this machine
LOCAL_TIMEOUT_MIN = 60 * 24 * 30
POLL_SECONDS = 0.5

OnStart = Callable[[RunSpec], None]
OnFinish = Callable[[RunSpec, dict[str, Any]], None]


@dataclass
class SlurmOptions:
    """What a Slurm job asks for (None: the cluster's default)."""

    partition: str | None = None
    gpus: int | None = None  # per job (one job = one run)
    cpus: int | None = None  # per job; the run uses this many torch threads
    mem_gb: float | None = None
    time_min: int | None = None
    params: dict[str, str] = field(default_factory=dict)  # extra #SBATCH lines, e.g. account, qos, constraint
    setup: list[str] = field(default_factory=list)  # shell lines before the job (module load, venv activation)


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise NiceganError('the local and slurm executors need submitit: pip install "nicegan[sweep]" (or use '
                           "executor=inline)", option="executor") from None
    return submitit


def make_executor(kind: str, folder: Path, name: str, parallel: int | None = None,
                  slurm: SlurmOptions | None = None) -> Any:
    """The submitit executor of ``kind`` ("local" or "slurm"), its logs and pickles in ``folder``.

    Slurm: one job per run, submitted as one job array with at most ``parallel`` jobs running at a time (None:
    submitit's default). Building it needs Slurm's ``srun`` on PATH (a cluster's login node).
    """
    submitit = _submitit()
    if kind == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        return ex
    if kind != "slurm":
        raise NiceganError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}")
    s = slurm or SlurmOptions()
    try:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    except RuntimeError as e:  # submitit checks for srun
        raise NiceganError(f"executor=slurm needs a Slurm cluster ({' '.join(str(e).split())}); run the sweep "
                           "on its login node, or use executor=local", option="executor") from None
    params: dict[str, Any] = {"name": f"nicegan-{name}", "nodes": 1, "tasks_per_node": 1}
    given = {"timeout_min": s.time_min, "slurm_partition": s.partition, "gpus_per_node": s.gpus,
             "cpus_per_task": s.cpus, "mem_gb": s.mem_gb, "slurm_array_parallelism": parallel}
    params.update({k: v for k, v in given.items() if v is not None})
    if s.params:
        params["slurm_additional_parameters"] = dict(s.params)
    if s.setup:
        params["slurm_setup"] = list(s.setup)
    ex.update_parameters(**params)
    return ex


def run_inline(specs: list[RunSpec], on_start: OnStart, on_finish: OnFinish) -> None:
    """One run after the other in this process."""
    for spec in specs:
        on_start(spec)
        on_finish(spec, run_job(spec))


def _outcome(job: Any, spec: RunSpec) -> dict[str, Any]:
    """A finished job's result; a job that died (killed, out of memory, timed out) becomes a failed run."""
    try:
        result = job.result()
    except Exception as e:  # submitit's FailedJobError / UncompletedJobError carry the job's own traceback
        lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()]
        return {"status": "failed", "variant": spec.variant, "seed": spec.seed,
                "error": f"job {job.job_id} failed: {lines[-1] if lines else type(e).__name__}"[:1000]}
    return result if isinstance(result, dict) else {"status": "failed", "variant": spec.variant, "seed": spec.seed,
                                                    "error": f"job {job.job_id} returned {result!r}"[:300]}


def run_local(executor: Any, specs: list[RunSpec], parallel: int, on_start: OnStart, on_finish: OnFinish) -> None:
    """At most ``parallel`` local jobs at a time; the next is submitted when one ends. Ctrl-C cancels the running
    ones (their runs resume from their last checkpoint next time)."""
    queue, running = list(specs), []
    try:
        while queue or running:
            while queue and len(running) < parallel:
                spec = queue.pop(0)
                on_start(spec)
                with _stderr_into(Path(executor.folder) / CONTROLLER_LOG):
                    running.append((spec, executor.submit(run_job, spec)))
            time.sleep(POLL_SECONDS)
            for item in [r for r in running if r[1].done()]:
                running.remove(item)
                on_finish(item[0], _outcome(item[1], item[0]))
    except BaseException:
        for _, job in running:
            job.cancel(check=False)
        raise


#: where the stderr of submitit's local job controllers goes (they print a KeyboardInterrupt traceback when a job is
#: cancelled, e.g. on Ctrl-C; the sweep's own output stays one line per event)
CONTROLLER_LOG = "controllers.log"


@contextlib.contextmanager
def _stderr_into(path: Path) -> Iterator[None]:
    """File descriptor 2 points to ``path`` inside the block, so that processes started there inherit it."""
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    try:
        with open(path, "ab") as fh:
            os.dup2(fh.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def submit_all(executor: Any, specs: list[RunSpec]) -> list[Any]:
    """Submit every run at once (a Slurm job array); returns the jobs."""
    with executor.batch():
        jobs = [executor.submit(run_job, spec) for spec in specs]
    return jobs


def wait_all(jobs: list[Any], specs: list[RunSpec], on_finish: OnFinish, poll: float = 30.0) -> None:
    """Report the submitted jobs as they finish (Ctrl-C stops waiting; the jobs go on)."""
    pending = list(zip(specs, jobs, strict=True))
    while pending:
        for item in [p for p in pending if p[1].done()]:
            pending.remove(item)
            on_finish(item[0], _outcome(item[1], item[0]))
        if pending:
            time.sleep(poll)
