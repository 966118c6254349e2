"""One run of a sweep as a job: train to each evaluation step, evaluate, write ``evals/step_XXXXXXX.json``.

:func:`run_job` is what every executor runs (in this process, in a local subprocess or on a Slurm node); it is a
module-level function of one picklable :class:`RunSpec` of plain data. It picks up wherever the run folder stands:
evaluations already written are kept, a run with a checkpoint resumes from it (resuming is exact), and an
interrupted evaluation is done again from the checkpoint of its step.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from nicegan.core.errors import NiceganError
from nicegan.core.limits import RECORD_BOUNDS, DamagedFileError, read_json_file
from nicegan.formats.run_folder import RunFolder

log = logging.getLogger("nicegan")

EVALS = "evals"
FAILED = "failed.json"
#: config fields that may differ between a run folder and the sweep without making it another run
VOLATILE = {"train.device", "train.amp", "train.channels_last", "train.compile", "train.fused_adam",
            "train.cudnn_benchmark"}


@dataclass(frozen=True)
class RunSpec:
    """Everything a job needs, as plain (picklable) data."""

    variant: str
    seed: int
    run_dir: str
    config: dict[str, Any]  # the resolved run config (RunConfig.to_dict()), seed included
    eval_steps: tuple[int, ...]
    metrics: tuple[str, ...] | None = None  # None: every metric that applies
    eval_limit: int | None = None
    threads: int | None = None  # torch threads in the job (None: leave torch's default)
    progress: bool | None = False
    final_metrics: tuple[str, ...] = ()  # evaluated at the last eval step only, at most final_eval_limit images
    final_eval_limit: int | None = None

    @property
    def label(self) -> str:
        return f"{self.variant} seed {self.seed}"

    def is_final(self, step: int) -> bool:
        return bool(self.final_metrics) and step == self.eval_steps[-1]

    def settings(self, step: int) -> dict[str, Any]:
        """The evaluation settings the evaluation file of ``step`` must match to count as done."""
        out: dict[str, Any] = {"metrics": list(self.metrics) if self.metrics is not None else None,
                               "limit": self.eval_limit}
        if self.is_final(step):
            out.update(final_metrics=list(self.final_metrics), final_limit=self.final_eval_limit)
        return out


def eval_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / EVALS / f"step_{step:07d}.json"


_DAMAGED: set[str] = set()


def read_eval(run_dir: str | Path, step: int) -> dict[str, Any] | None:
    """The evaluation record of ``step``, or None when it is missing or unreadable (then it is computed again)."""
    path = eval_path(run_dir, step)
    try:
        rec = read_json_file(path, **RECORD_BOUNDS)
    except OSError:
        return None
    except DamagedFileError as e:  # computed again; said once, as the record is read several times per sweep
        if str(path) not in _DAMAGED:
            _DAMAGED.add(str(path))
            log.warning("%s; that evaluation is done again", e)
        return None
    return rec if isinstance(rec, dict) and rec.get("step") == step and isinstance(rec.get("metrics"), dict) else None


def eval_done(spec: RunSpec, step: int) -> bool:
    rec = read_eval(spec.run_dir, step)
    return rec is not None and rec.get("settings") == spec.settings(step)


def finished(spec: RunSpec) -> bool:
    """Whether every evaluation of the run is written (with the sweep's evaluation settings)."""
    return all(eval_done(spec, s) for s in spec.eval_steps)


def config_mismatch(spec: RunSpec) -> str | None:
    """How the config a run folder was trained with differs from the sweep's (None: the same, or no run yet)."""
    import yaml

    path = RunFolder(spec.run_dir).config
    try:
        stored = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(stored, dict):
        return None
    old, new = _flat(stored), _flat(spec.config)
    diff = [k for k in sorted(set(old) | set(new)) if k not in VOLATILE and old.get(k) != new.get(k)]
    if not diff:
        return None
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:3]) + (" ..." if len(diff) > 3 else "")


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for section, values in d.items():
        if isinstance(values, dict):
            out.update({f"{section}.{k}": (list(v) if isinstance(v, tuple) else v) for k, v in values.items()})
        else:
            out[section] = values
    return out


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    from nicegan.core.files import replacing

    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")


def _checkpoint_step(run_dir: Path) -> int | None:
    from nicegan.formats import checkpoint

    if not checkpoint.run_checkpoints(run_dir):
        return None
    return checkpoint.load_run(run_dir).step


def _train_to(spec: RunSpec, step: int) -> None:
    """Bring the run's checkpoint to ``step`` (start, or resume from where it stands)."""
    from nicegan.configs.schema import resolve_config
    from nicegan.training.runs import resume_run, start_run

    run_dir = Path(spec.run_dir)
    current = _checkpoint_step(run_dir)
    if current == step:
        return
    if current is not None and current > step:
        raise NiceganError(f"step {step} of {run_dir} is not evaluated (with this sweep's evaluation settings) and "
                           f"the run is already at step {current}; evaluate with the settings it was evaluated "
                           "with, or use a new output folder (out)", option="out")
    kwargs = {"progress": spec.progress, "tensorboard": False, "stop_at": step}
    if current is None:
        res = start_run(resolve_config(spec.config), run_dir, **kwargs)
    else:
        log.info("sweep: %s resumes at step %d", spec.label, current)
        res = resume_run(run_dir, device=spec.config["train"]["device"], **kwargs)  # this sweep call's device
    if res.step != step:  # the trainer stopped early on Ctrl-C / SIGTERM after saving: stop the sweep too
        raise KeyboardInterrupt


def _extractor(weights: str, device: str) -> Any:
    from nicegan.evaluation.fid import make_extractor

    key = (weights, device)
    if key not in _EXTRACTORS:  # one Inception network per process, shared by the runs an inline sweep evaluates
        _EXTRACTORS.clear()
        _EXTRACTORS[key] = make_extractor("paper", weights or None, device)
    return _EXTRACTORS[key]


_EXTRACTORS: dict[tuple[str, str], Any] = {}


def _applying(names: tuple[str, ...] | None, ctx: Any, label: str) -> list[str] | None:
    """The sweep's metrics that apply to this run's model, the others logged as skipped (a sweep mixes models:
    CycleGAN has no latent codes for latent_mmd); an unknown name is still an error. None: every metric that
    applies."""
    from nicegan.evaluation import applicable

    if names is None:
        return None
    keep = applicable(ctx, names)
    skipped = [m for m in names if m not in keep]
    if skipped:
        log.info("sweep: %s: %s not applicable to %s, skipped", label, ", ".join(skipped), ctx.model.name)
    return keep


def evaluate_step(spec: RunSpec, step: int) -> dict[str, Any]:
    """Evaluate the run's latest checkpoint (which is at ``step``) and write its evaluation file."""
    from nicegan.core.version import __version__
    from nicegan.evaluation import EvalContext, evaluate, needs_extractor, scalars
    from nicegan.formats import checkpoint
    from nicegan.inference import load_model

    run_dir = Path(spec.run_dir)
    t0 = time.perf_counter()
    path = checkpoint.latest_checkpoint(run_dir)
    model, cfg, at = load_model(path or run_dir, spec.config["train"]["device"])
    if at != step:
        raise NiceganError(f"{path} is at step {at}, expected {step}")
    device = str(next(model.parameters()).device)
    final = spec.final_metrics if spec.is_final(step) else ()
    wants_inception = needs_extractor(spec.metrics) or needs_extractor(final)
    ext = _extractor(cfg.train.inception_weights, device) if wants_inception else None
    ctx = EvalContext(model, cfg.data.root, limit=spec.eval_limit, progress=spec.progress,
                      cache_dir=RunFolder(run_dir).cache, extractor=ext)
    values = scalars(evaluate(ctx, _applying(spec.metrics, ctx, spec.label)))
    if final:  # the costly metrics, at the budget's end only and on their own image limit
        values.update(scalars(evaluate(replace(ctx, limit=spec.final_eval_limit), _applying(final, ctx, spec.label))))
    record = {"variant": spec.variant, "seed": spec.seed, "step": step, "metrics": values,
              "settings": spec.settings(step), "seconds": round(time.perf_counter() - t0, 2), "checkpoint": str(path),
              "device": device, "toolkit_version": __version__}
    _write_json(eval_path(run_dir, step), record)
    log.info("sweep: %s step %d: %s", spec.label, step, "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
    return record


def _ensure_logging() -> None:
    """In a job process (submitit) nothing routes the ``nicegan`` logger yet: send it to stderr (the job's log)."""
    logger = logging.getLogger("nicegan")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_job(spec: RunSpec) -> dict[str, Any]:
    """Train and evaluate one run of a sweep; returns ``{"status": "done" | "failed", ...}``.

    An error is recorded in ``RUN/failed.json`` (message and traceback) and returned, so the other runs of the
    sweep go on; Ctrl-C (KeyboardInterrupt) propagates.
    """
    _ensure_logging()
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    run_dir = Path(spec.run_dir)
    t0 = time.perf_counter()
    failed = run_dir / FAILED
    if failed.exists():
        failed.unlink()
    try:
        for step in spec.eval_steps:
            if eval_done(spec, step):
                continue
            _train_to(spec, step)
            evaluate_step(spec, step)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # any failure of one run is recorded and the sweep goes on
        message = " ".join(str(e).split())[:1000] or type(e).__name__
        if not isinstance(e, (NiceganError, OSError)):
            message = f"{type(e).__name__}: {message}"
        outcome = {"status": "failed", "error": message, "seconds": time.perf_counter() - t0}
        try:
            _write_json(failed, {**outcome, "spec": asdict(spec), "traceback": traceback.format_exc(),
                                 "pid": os.getpid(), "time": time.time()})
        except OSError as w:
            log.warning("could not record the failure in %s: %s", failed, w)
        return {**outcome, "variant": spec.variant, "seed": spec.seed}
    return {"status": "done", "variant": spec.variant, "seed": spec.seed, "seconds": time.perf_counter() - t0}
