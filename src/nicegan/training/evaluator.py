"""Periodic evaluation during training: every applicable metric on the test split, and the best FID per direction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nicegan.configs.schema import RunConfig
from nicegan.evaluation import EvalContext, evaluate, scalars
from nicegan.models.base import TranslationModel


class Evaluator:
    """FID/KID (paper protocol, both directions) and the digits metrics, tracking the best FID per direction."""

    def __init__(self, cfg: RunConfig, device: torch.device, cache_dir: Path) -> None:
        from nicegan.evaluation.fid import make_extractor

        self.cfg, self.cache_dir = cfg, cache_dir
        self.ext = make_extractor("paper", cfg.train.inception_weights or None, device)  # fails before training

    def run(self, model: TranslationModel, extra: dict[str, Any], step: int) -> tuple[dict[str, float], list[str]]:
        """Scores (logged names) and the directions whose FID improved on the best so far (``extra["best"]``)."""
        ctx = EvalContext(model, self.cfg.data.root, limit=self.cfg.train.eval_limit or None, progress=False,
                          cache_dir=self.cache_dir, extractor=self.ext)
        results = evaluate(ctx)
        best = extra.setdefault("best", {})
        improved = []
        for d, r in results["fid_kid"]["results"].items():
            if d not in best or r.fid < best[d]["fid"]:
                best[d] = {"fid": r.fid, "step": step}
                improved.append(d)
        return scalars(results), improved
