"""Periodic evaluation during training: FID/KID on the test split and the best checkpoint per direction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nicegan.config import RunConfig
from nicegan.models.base import TranslationModel


class Evaluator:
    """FID/KID (paper protocol, both directions) on the test split, tracking the best FID per direction."""

    def __init__(self, cfg: RunConfig, device: torch.device, cache_dir: Path) -> None:
        from nicegan.metrics import FeatureExtractor, get_protocol, resolve_weights

        self.cfg, self.cache_dir = cfg, cache_dir
        weights = resolve_weights(cfg.train.inception_weights or None)  # fails before training if missing
        self.ext = FeatureExtractor(get_protocol("paper"), weights, device)

    def run(self, model: TranslationModel, extra: dict[str, Any], step: int) -> tuple[dict[str, float], list[str]]:
        """Scores (logged names) and the directions whose FID improved on the best so far (``extra["best"]``)."""
        from nicegan.data import DIGITS
        from nicegan.evaluation.translation import evaluate_model

        res = evaluate_model(model, self.cfg.data.root, self.ext, ("a2b", "b2a"),
                             limit=self.cfg.train.eval_limit or None, progress=False, cache_dir=self.cache_dir)
        values: dict[str, float] = {}
        best = extra.setdefault("best", {})
        improved = []
        for d, r in res.items():
            values.update({f"eval/fid_{d}": r.fid, f"eval/kid_x100_{d}": 100 * r.kid_mean})
            if d not in best or r.fid < best[d]["fid"]:
                best[d] = {"fid": r.fid, "step": step}
                improved.append(d)
        if self.cfg.data.root == DIGITS:
            from nicegan.evaluation.digits import adaptation_accuracy, label_preservation

            values.update(label_preservation(model))
            values.update(adaptation_accuracy(model))
        return values, improved
