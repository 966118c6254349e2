"""Evaluation: one entry (:func:`evaluate`) over a small metric registry.

Metrics: ``fid_kid`` (FID/KID of the translations of a test split, per direction, with the model's translation
diagnostics), ``label_preservation`` and ``adaptation_accuracy`` (``builtin:digits`` / ``digits-val`` only),
``latent_mmd`` (models with a latent code per domain: MMD^2 between the domains' codes and within each),
``diversity`` (multimodal models: distance between one input's translations with different styles).
"""

from nicegan.evaluation import analysis, digits, diversity, translation  # noqa: F401  (registers each metric)
from nicegan.evaluation.registry import (
    EvalContext,
    Report,
    applicable,
    evaluate,
    list_metrics,
    needs_extractor,
    register_metric,
    report,
    scalars,
)

__all__ = ["EvalContext", "Report", "applicable", "evaluate", "list_metrics", "needs_extractor", "register_metric",
           "report", "scalars"]
