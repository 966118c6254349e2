"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse
import logging

from nicegan.training.loop import TrainResult

log = logging.getLogger("nicegan")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_device(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--device", default=default, metavar="cpu|cuda",
                   help="cpu, cuda or cuda:N (default: cuda when available)")


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                   help="plain log lines instead of a progress bar")


def report_training(result: TrainResult, command_hint: str = "") -> None:
    """Summarise a finished (or stopped) training call for the user."""
    if result.interrupted:
        log.info("stopped at step %d; checkpoint %s; continue with: nicegan resume %s",
                 result.step, result.checkpoint, result.run_dir)
    else:
        log.info("done: step %d, checkpoint %s", result.step, result.checkpoint)
        log.info("samples: %s/samples   logs: %s/metrics.jsonl", result.run_dir, result.run_dir)
