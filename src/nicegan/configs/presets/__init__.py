"""The shipped presets (``<name>.yaml``): read by :mod:`nicegan.configs.schema`, listed here without importing torch."""

from __future__ import annotations

from importlib import resources


def preset_names() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))
