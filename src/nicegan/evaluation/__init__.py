"""Evaluation: one entry (:func:`evaluate`) over a small metric registry.

Metrics: ``fid_kid`` (FID/KID of the translations of a test split, per direction, with the model's translation
diagnostics), ``label_preservation`` and ``adaptation_accuracy`` (``builtin:digits`` only).
"""

from nicegan.evaluation import digits, translation  # noqa: F401  (registers each metric)
from nicegan.evaluation.registry import EvalContext, evaluate, list_metrics, register_metric, scalars

__all__ = ["EvalContext", "evaluate", "list_metrics", "register_metric", "scalars"]
