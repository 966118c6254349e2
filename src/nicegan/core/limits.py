"""Bounds on untrusted input: nested data (YAML configs, checkpoint payloads) checked without expanding it, and the
default limits of a download. Nothing here imports torch: the command line reads these while it builds its parser.
"""

from __future__ import annotations

import os
from typing import Any

from nicegan.core.errors import NiceganError

#: seconds a dataset download, retries included, may take by default (the CycleGAN archives are at most a few hundred
#: MB: well within this even at DOWNLOAD_MIN_RATE); the partial file is kept, so running the command again continues
DOWNLOAD_DEADLINE = 4 * 3600.0
#: the slowest average rate (bytes per second, over each read-timeout period) a download may keep by default
DOWNLOAD_MIN_RATE = 10_000.0


def exceeds(tree: Any, max_nodes: int, max_depth: int, *, keys: bool = False) -> bool:
    """Whether ``tree`` has more than ``max_nodes`` nodes or is nested deeper than ``max_depth`` levels.

    Shared references (YAML aliases, pickle's memo) are counted every time they are reached, as any later walk
    would reach them; the walk stops at the first node over the budget, so a tree that would expand to billions of
    nodes costs ``max_nodes`` steps. ``keys`` counts dict keys as nodes too.
    """
    budget, stack = max_nodes, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > max_depth:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            if keys:
                stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)
    return False


#: the longest integer literal :func:`load_json` accepts: far above any count, size or step (2**63 has 19 digits),
#: far below Python's own 4,300-digit limit, whose ValueError would otherwise escape as a traceback
MAX_JSON_INT_DIGITS = 40


class BoundsError(ValueError):
    """Untrusted JSON that is not valid, or is over one of :func:`load_json`'s bounds; the message is one line."""


def load_json(raw: bytes | str, *, max_bytes: int, max_nodes: int, max_depth: int,
              allow_nan: bool = False) -> Any:
    """Parse untrusted JSON (a bundle's config.json, a study's stored metadata, an HTTP body, a sweep record)
    within bounds, or raise :class:`BoundsError` whose message is one predicate ("is over ...", "holds ..."): at
    most ``max_bytes`` bytes, ``max_nodes`` values
    (keys counted), ``max_depth`` levels of nesting (thousands of ``[`` in a few KB raise RecursionError inside the
    parser: refused here), integers of at most :data:`MAX_JSON_INT_DIGITS` digits, and no NaN or Infinity unless
    ``allow_nan``. The caller checks what the parsed value means."""
    import json

    if len(raw) > max_bytes:
        raise BoundsError(f"is over {max_bytes:,} bytes")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BoundsError("is not UTF-8 text") from None
    # Depth first, without recursing: a cheap count of open brackets bounds the nesting from above, and the exact
    # scan below runs only where that bound is over (strings may hold brackets).
    if raw.count("[") + raw.count("{") > max_depth and _depth(raw) > max_depth:
        raise BoundsError(f"is nested deeper than {max_depth} levels")

    def parse_int(text: str) -> int:
        if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
            raise BoundsError(f"holds an integer of {len(text.lstrip('-')):,} digits (at most "
                              f"{MAX_JSON_INT_DIGITS})")
        return int(text)

    def parse_constant(name: str) -> float:
        if not allow_nan:
            raise BoundsError(f"holds {name}, which JSON does not allow")
        return float(name.replace("Infinity", "inf"))

    try:
        tree = json.loads(raw, parse_int=parse_int, parse_constant=parse_constant)
    except json.JSONDecodeError as e:
        raise BoundsError(f"is not valid JSON ({' '.join(str(e).split())[:120]})") from None
    except RecursionError:
        raise BoundsError(f"is nested deeper than {max_depth} levels") from None
    if exceeds(tree, max_nodes, max_depth, keys=True):
        raise BoundsError(f"holds over {max_nodes:,} values")
    return tree


class DamagedFileError(NiceganError, ValueError):
    """A JSON file the toolkit wrote and reads back (a sweep's evaluation record, a download's resume record, a
    cache) that is not valid JSON or is over its reader's bounds: damaged, truncated or edited. A ``ValueError``
    too, so that readers which recompute an unreadable file go on catching it as before."""


#: bounds of the JSON files the toolkit writes and reads back, each far over the largest real one: an evaluation
#: record or a failure record is a few KB (a traceback and the run config at most some 100 KB), a
#: ``metrics.jsonl`` line under 2 KB, a download's resume record under 1 KB, the image scan cache about 150 bytes
#: and 5 values per image (7 million images fit)
RECORD_BOUNDS = {"max_bytes": 16 << 20, "max_nodes": 1_000_000, "max_depth": 32}
LOG_LINE_BOUNDS = {"max_bytes": 1 << 20, "max_nodes": 100_000, "max_depth": 16}
SMALL_RECORD_BOUNDS = {"max_bytes": 1 << 20, "max_nodes": 10_000, "max_depth": 8}
SCAN_CACHE_BOUNDS = {"max_bytes": 1 << 30, "max_nodes": 40_000_000, "max_depth": 4}


def read_json_file(path: str | os.PathLike, *, max_bytes: int, max_nodes: int, max_depth: int,
                   allow_nan: bool = True) -> Any:
    """A JSON file the toolkit wrote, read through :func:`load_json` (NaN allowed by default: the toolkit writes
    a diverged loss as NaN). Reads at most ``max_bytes + 1`` bytes, so a huge or sparse file costs no memory.

    :class:`DamagedFileError` (one line naming the file) for anything :func:`load_json` refuses; ``OSError`` (a
    missing or unreadable file) is the caller's to handle."""
    with open(path, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    try:
        return load_json(raw, max_bytes=max_bytes, max_nodes=max_nodes, max_depth=max_depth, allow_nan=allow_nan)
    except BoundsError as e:
        raise DamagedFileError(f"{os.fspath(path)} is damaged: it {e}") from None


def _depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, brackets inside strings not counted (one pass, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest
