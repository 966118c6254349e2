"""The metric registry and the one evaluation entry, :func:`evaluate`, used by ``nicegan evaluate`` and by training's
periodic evaluation.

A metric is a function of an :class:`EvalContext` returning its named outputs. It registers itself with
:func:`register_metric`, saying when it applies (e.g. only on ``builtin:digits``) and how its outputs become logged
scalars. Adding a metric is one decorated function in one module of this package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nicegan.core.errors import NiceganError
from nicegan.models.base import TranslationModel


@dataclass
class EvalContext:
    """What a metric may look at: the model (on its device), the dataset and the evaluation settings."""

    model: TranslationModel
    data_root: str
    directions: tuple[str, ...] = ("a2b", "b2a")
    split: str = "test"
    limit: int | None = None  # translate at most this many images per direction (FID/KID)
    progress: bool | None = None
    cache_dir: Path | None = None
    #: the FID Inception feature extractor (a :class:`nicegan.evaluation.fid.FeatureExtractor`); metrics that need it
    #: and find None refuse with a clear message
    extractor: Any = None
    #: multimodal models: seed of the style codes (test image i is translated with code i of this seed, the
    #: multimodal protocol of the MUNIT/DRIT papers: one random style per test image)
    style_seed: int = 0


@dataclass
class Report:
    """How one metric's outputs read in ``nicegan evaluate``: ``fields`` join the JSON record (and the run's
    metrics.jsonl; a dict under a key another metric also fills is merged into it), ``lines`` are printed, and
    ``warnings`` are logged."""

    fields: dict[str, Any]
    lines: list[str]
    warnings: list[str] = dataclasses.field(default_factory=list)


def _default_report(name: str, scalars: Callable[[dict[str, Any]], dict[str, float]]) -> Callable[[dict[str, Any]],
                                                                                                  Report]:
    """A metric that says nothing else reports its scalars under its name, one line each."""
    def report(outputs: dict[str, Any]) -> Report:
        values = scalars(outputs)
        return Report({name: values}, [f"{name} {k}: {v:.4g}" for k, v in values.items()])
    return report


@dataclass(frozen=True)
class Metric:
    """A registered metric."""

    name: str
    compute: Callable[[EvalContext], dict[str, Any]]
    applies: Callable[[EvalContext], bool]
    scalars: Callable[[dict[str, Any]], dict[str, float]]
    #: whether the metric reads images through ``ctx.extractor`` (the Inception network, costly to build): callers
    #: build it only when a metric they run says so
    needs_extractor: bool = False
    #: its outputs as ``nicegan evaluate`` shows and records them (default: its scalars under its name)
    report: Callable[[dict[str, Any]], Report] | None = None
    #: where its report goes among the others (lower first; ties in registration order)
    rank: int = 100


_METRICS: dict[str, Metric] = {}


def _float_outputs(outputs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in outputs.items() if isinstance(v, (int, float))}


def register_metric(name: str, *, applies: Callable[[EvalContext], bool] = lambda ctx: True,
                    scalars: Callable[[dict[str, Any]], dict[str, float]] = _float_outputs,
                    needs_extractor: bool = False, report: Callable[[dict[str, Any]], Report] | None = None,
                    rank: int = 100,
                    ) -> Callable[[Callable[[EvalContext], dict[str, Any]]], Callable[[EvalContext], dict[str, Any]]]:
    """Decorator registering ``fn(ctx) -> outputs`` as metric ``name``.

    Args:
        applies: whether the metric can run in a context (metrics that do not apply are skipped by default).
        scalars: the metric's outputs as flat ``name -> float`` scalars for run logs (default: its float outputs).
        needs_extractor: the metric needs ``ctx.extractor`` (the Inception feature extractor).
        report: how ``nicegan evaluate`` prints and records its outputs (default: its scalars under its name).
        rank: where that report goes among the others' (lower first; default 100, after the shipped metrics).
    """

    def deco(fn: Callable[[EvalContext], dict[str, Any]]) -> Callable[[EvalContext], dict[str, Any]]:
        if name in _METRICS:
            raise RuntimeError(f"metric name {name!r} registered twice")
        _METRICS[name] = Metric(name, fn, applies, scalars, needs_extractor,
                                report or _default_report(name, scalars), rank)
        return fn

    return deco


def list_metrics() -> list[str]:
    """Names of all registered metrics, in registration order."""
    return list(_METRICS)


def get_metric(name: str) -> Metric:
    if name not in _METRICS:
        raise NiceganError(f"unknown metric {name!r}; available: {', '.join(_METRICS)}")
    return _METRICS[name]


def _metrics(names: Iterable[str] | None) -> list[Metric]:
    """The registered metrics named (None: all of them); an unknown name is an error."""
    return [get_metric(m) for m in (list(_METRICS) if names is None else names)]


def needs_extractor(metrics: Iterable[str] | None) -> bool:
    """Whether running ``metrics`` (None: every registered metric) needs the Inception feature extractor; an unknown
    name is an error."""
    return any(m.needs_extractor for m in _metrics(metrics))


def applicable(ctx: EvalContext, metrics: Iterable[str] | None = None) -> list[str]:
    """The names among ``metrics`` (None: every registered metric) that apply to ``ctx``, for callers that name
    metrics some of their contexts cannot give (a sweep mixing models lists latent_mmd, which CycleGAN has not); an
    unknown name is an error."""
    return [m.name for m in _metrics(metrics) if m.applies(ctx)]


def evaluate(ctx: EvalContext, metrics: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``metrics`` (default: every registered metric that applies) on ``ctx``; metric name -> its outputs.

    A metric named explicitly that does not apply is an error (filter with :func:`applicable` first to skip those).
    The model's train/eval mode and the global random state are left as they were, so evaluating during training
    never changes the run.
    """
    import torch

    names = applicable(ctx) if metrics is None else list(metrics)
    out: dict[str, dict[str, Any]] = {}
    with torch.random.fork_rng(devices=[]):
        for name in names:
            metric = get_metric(name)
            if not metric.applies(ctx):
                raise NiceganError(f"metric {name!r} does not apply to the {ctx.model.name} model on {ctx.data_root}")
            out[name] = metric.compute(ctx)
    return out


def report(results: dict[str, dict[str, Any]]) -> Report:
    """Every metric's :class:`Report` of :func:`evaluate`'s results, merged in registration order: what ``nicegan
    evaluate`` prints and records, so a newly registered metric appears there without touching the command."""
    merged = Report({}, [], [])
    for name in sorted(results, key=lambda n: get_metric(n).rank):  # sorted() is stable: ties keep their order
        part = get_metric(name).report(results[name])  # type: ignore[misc]
        for key, value in part.fields.items():
            if isinstance(value, dict) and isinstance(merged.fields.get(key), dict):
                merged.fields[key] = {**merged.fields[key], **value}
            else:
                merged.fields[key] = value
        merged.lines += part.lines
        merged.warnings += part.warnings
    return merged


def scalars(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The outputs of :func:`evaluate` as one flat ``name -> float`` dict (what run logs record)."""
    flat: dict[str, float] = {}
    for name, outputs in results.items():
        flat.update(get_metric(name).scalars(outputs))
    return flat
