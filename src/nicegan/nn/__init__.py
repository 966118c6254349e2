"""Building blocks shared by several models (nothing here imports from the rest of the package)."""

from nicegan.nn.norm import ILN, AdaILN, ResnetAdaILNBlock, clip_rho
from nicegan.nn.spectral import SNConv2d, SNLinear, SpectralNormMixin

__all__ = ["ILN", "AdaILN", "ResnetAdaILNBlock", "clip_rho", "SNConv2d", "SNLinear", "SpectralNormMixin"]
