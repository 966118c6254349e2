"""The shipped presets (``<name>.yaml``): read by :mod:`nicegan.configs.schema`, listed here without importing torch."""

from __future__ import annotations

import reprlib
from importlib import resources
from pathlib import Path

#: values in error messages are cut short (a hostile value's full repr can be gigabytes)
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80  # as the schema's messages


def preset_names() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def config_source_problem(name_or_path: str) -> str | None:
    """Why ``name_or_path`` names neither a shipped preset nor an existing file (None when it does)."""
    if (resources.files(__name__) / f"{name_or_path}.yaml").is_file():
        return None
    path = Path(name_or_path).expanduser()
    if path.exists() or path.is_symlink():
        return None
    return f"no preset or config file named {_REPR.repr(name_or_path)} (presets: {', '.join(preset_names())})"
