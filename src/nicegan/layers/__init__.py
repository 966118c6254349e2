"""Building blocks shared by several models (nothing here imports from the rest of the package)."""

from nicegan.layers.norm import ILN, AdaILN, ResnetAdaILNBlock, clip_rho
from nicegan.layers.spectral import SNConv2d, SNLinear, SpectralNormMixin

__all__ = ["ILN", "AdaILN", "ResnetAdaILNBlock", "clip_rho", "SNConv2d", "SNLinear", "SpectralNormMixin"]
