"""The shipped sweep files (``<name>.yaml``), found by name like the presets; listed without importing torch."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable


def sweep_names() -> list[str]:
    """Names of the sweeps shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def shipped_sweep(name: str) -> Traversable | None:
    """The shipped sweep file called ``name``, or None."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    f = resources.files(__name__) / f"{name}.yaml"
    return f if f.is_file() else None
