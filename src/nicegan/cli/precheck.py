"""Checks of a command's paths that need no torch, run before the command itself.

Loading torch takes 2-3 s on an idle machine and 18-34 s on a busy one; a mistyped path must not wait for it. Each
check says what the command would say a moment later (the same message), so a mistake reads the same either way;
what needs torch or the file's contents (is it a checkpoint? an image?) stays with the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from nicegan.core.errors import ConfigError, NiceganError

Check = Callable[[str], str | None]


def _missing(value: str) -> bool:
    p = Path(value).expanduser()
    return not p.exists() and not p.is_symlink()


def _exists(template: str) -> Check:
    """A path that must exist, reported with ``template`` (``{}`` = the path as the command would print it)."""
    return lambda v: template.format(Path(v).expanduser()) if _missing(v) else None


def _dataset(value: str) -> str | None:
    if value.startswith("builtin:"):
        return None  # an unknown built-in name is the data module's one-line error
    return _exists("data folder not found: {}")(value)


def _config(value: str) -> str | None:
    from nicegan.configs.presets import config_source_problem

    return config_source_problem(value)


CHECKPOINT = _exists("checkpoint not found: {}")
INPUT = _exists("input not found: {}")
#: command -> [(argument dest, check)]; ``data`` checks only its ``check`` subcommand, ``user-study`` its ``serve``
CHECKS: dict[str, list[tuple[str, Check]]] = {
    "train": [("data", _dataset), ("config", _config)],
    "resume": [("run_dir", _exists("run folder not found: {}")), ("data", _dataset)],
    "translate": [("checkpoint", CHECKPOINT), ("input", INPUT)],
    "export": [("source", CHECKPOINT)],
    "evaluate": [("checkpoint", CHECKPOINT), ("data", _dataset)],
    "eval-folders": [("real_dir", _exists("folder not found: {}")), ("fake_dir", _exists("folder not found: {}"))],
    "heatmaps": [("checkpoint", CHECKPOINT), ("input", INPUT)],
    "latents": [("checkpoint", CHECKPOINT), ("data", _dataset)],
    "interpolate": [("checkpoint", CHECKPOINT)],
    "serve": [("checkpoint", CHECKPOINT)],
    "data": [("dir", _dataset)],
    "user-study": [("sources", _exists("--sources folder not found: {}"))],
}


def check_paths(args: argparse.Namespace) -> None:
    """Raise the command's own one-line error for a path that does not exist (nothing else is judged here)."""
    if args.command == "data" and getattr(args, "data_command", None) != "check":
        return
    if args.command == "user-study" and getattr(args, "study_command", None) != "serve":
        return
    for dest, check in CHECKS.get(args.command, []):
        if dest == "data" and getattr(args, "dry_run", False):
            continue  # a dry run prints the resolved config and reads no data
        value = getattr(args, dest, None)
        if isinstance(value, str) and value:
            problem = check(value)
            if problem is not None:
                raise (ConfigError if dest == "config" else NiceganError)(problem)
