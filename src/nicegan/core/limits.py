"""Bounds on untrusted input: nested data (YAML configs, checkpoint payloads) checked without expanding it, and the
default limits of a download. Nothing here imports torch: the command line reads these while it builds its parser.
"""

from __future__ import annotations

from typing import Any

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
