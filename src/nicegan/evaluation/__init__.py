"""Evaluation: label preservation on the builtin digits (metrics such as FID/KID live in nicegan.metrics)."""
