"""nicegan: unpaired image-to-image translation (NICE-GAN and the systems it compares with).

``from nicegan import Translator`` is the Python API (:mod:`nicegan.deploy.api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nicegan.core.version import __version__

if TYPE_CHECKING:
    from nicegan.deploy.api import Translator

__all__ = ["Translator", "__version__"]


def __getattr__(name: str) -> Any:
    # imported on first use: `import nicegan` (and the command line's start) stays free of torch
    if name == "Translator":
        from nicegan.deploy.api import Translator

        return Translator
    raise AttributeError(f"module 'nicegan' has no attribute {name!r}")
