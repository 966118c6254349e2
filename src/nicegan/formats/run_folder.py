"""The run folder: the one owner of its layout. Every other module asks a :class:`RunFolder` for its paths.

``RUN/``
    ``checkpoints/`` (``latest.pt``, ``step_XXXXXXX.pt``, ``best_*.pt``: :mod:`nicegan.formats.checkpoint`),
    ``metrics.jsonl`` (one JSON record per line: ``start``, ``train``, ``eval``, ``evaluate`` ... events),
    ``config.yaml`` (the resolved run config, for people: the checkpoint holds its own copy), ``cache/`` (dataset scans,
    feature caches), ``samples/`` (translation grids during training), ``tb/`` (TensorBoard), ``report/`` (the demo's
    report).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nicegan.core.limits import LOG_LINE_BOUNDS, BoundsError, load_json


@dataclass(frozen=True)
class RunFolder:
    """A run folder's paths (nothing is created or checked by building one)."""

    path: Path

    CHECKPOINTS = "checkpoints"
    METRICS = "metrics.jsonl"
    CONFIG = "config.yaml"
    CACHE = "cache"
    SAMPLES = "samples"
    TENSORBOARD = "tb"
    REPORT = "report"

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def cache(self) -> Path:
        return self.path / self.CACHE

    @property
    def samples(self) -> Path:
        return self.path / self.SAMPLES

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    def is_run(self) -> bool:
        """Whether this folder holds a ``checkpoints/`` folder (a run, as opposed to a bundle or anything else)."""
        return self.checkpoints.is_dir()

    @classmethod
    def of(cls, path: str | os.PathLike) -> RunFolder | None:
        """The run a checkpoint path belongs to: RUN itself (a folder holding ``checkpoints/``), RUN for
        ``RUN/checkpoints/<file>``, else None (a bundle, a loose checkpoint file)."""
        p = Path(path)
        if p.is_dir():
            return cls(p) if (p / cls.CHECKPOINTS).is_dir() else None
        return cls(p.parent.parent) if p.parent.name == cls.CHECKPOINTS else None

    def records(self, tail_bytes: int | None = None) -> Iterator[dict[str, Any]]:
        """The records of ``metrics.jsonl`` in order (lines that are not JSON objects are skipped: a run killed
        mid-write leaves a partial last line); ``tail_bytes`` reads only the end of a long log. Nothing when the
        file is missing or unreadable."""
        try:
            with open(self.metrics, "rb") as fh:
                if tail_bytes is not None:
                    fh.seek(0, 2)
                    fh.seek(max(0, fh.tell() - tail_bytes))
                data = fh.read()
        except OSError:
            return
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                rec = load_json(line, **LOG_LINE_BOUNDS, allow_nan=True)  # a diverged loss is logged as NaN
            except BoundsError:  # torn by a kill, damaged, or nested deep enough to crash json's parser
                continue
            if isinstance(rec, dict):
                yield rec
