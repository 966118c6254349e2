"""The FID Inception network (``pt_inception-2015-12-05``: TensorFlow's 2015 Inception, as ported by pytorch-fid).

Built from torchvision's InceptionV3 skeleton with pytorch-fid's FID-specific blocks (average pools that exclude
padding, a max pool in the last block), exactly the network pytorch-fid 0.3.0, torch-fidelity and clean-fid use.
It takes images already resized to 299 x 299 and normalised to [-1, 1] (each protocol does that its own way, see
:mod:`nicegan.evaluation.fid.protocols`) and returns the 2048-d pool features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

FEATURE_DIM = 2048


class FIDInception(nn.Module):
    """Inception blocks up to the final average pool (pytorch-fid's ``output_blocks=[3]``)."""

    def __init__(self) -> None:
        super().__init__()
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE_1(1280)
        net.Mixed_7c = FIDInceptionE_2(2048)
        self.net = net
        self.requires_grad_(False)
        self.eval()

    def load_weights(self, state_dict: dict[str, Tensor]) -> None:
        """Load pytorch-fid-layout weights; the 1008-way ``fc`` (unused for features) may be absent."""
        missing, unexpected = self.net.load_state_dict(state_dict, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(f"Inception weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")

    def forward(self, x: Tensor) -> Tensor:
        n = self.net
        x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))
        x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))
        for block in (n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e,
                      n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = block(x)
        return torch.flatten(n.avgpool(x), 1)


def conv_module_names() -> list[str]:
    """Names of the 94 BasicConv2d modules in registration order (the order of the TF graph's convolutions)."""
    from torchvision.models.inception import BasicConv2d

    return [name for name, m in FIDInception().net.named_modules() if isinstance(m, BasicConv2d)]
