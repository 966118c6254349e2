"""nicegan: unpaired image-to-image translation (NICE-GAN and the systems it compares with)."""

from nicegan.version import __version__

__all__ = ["__version__"]
