"""Style codes of multimodal models (:class:`~nicegan.models.base.StyleModel`): seeded draws from the prior,
codes encoded from reference images (example-guided translation), interpolation between two codes.

Seeded draws: code ``i`` of seed ``s`` comes from its own generator, seeded with ``(s, i)``, so it does not depend
on how many codes are drawn, on the batch size or on the device: ``nicegan translate --styles 4 --style-seed 7``
writes ``NAME_s2.png`` with the same code 2 that ``--styles 3 --style-seed 7`` uses, and ``nicegan evaluate`` gives
test image ``i`` code ``i`` of its seed. The prior of every StyleModel in the toolkit (MUNIT, DRIT) is N(0, I).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.data.transforms import test_transform
from nicegan.inference.batches import StyleFn, inference_context
from nicegan.models.base import StyleModel, TranslationModel

#: the largest ``--style-seed`` (NumPy's seed sequence takes any non-negative integer; this keeps it a 64-bit one)
MAX_STYLE_SEED = 2**63 - 1
#: the most style codes one call draws (``--styles K``)
MAX_STYLES = 1024


def require_style_model(model: TranslationModel, option: str = "style codes") -> StyleModel:
    """``model`` if it is multimodal, else a one-line :class:`NiceganError` naming ``option``."""
    if not isinstance(model, StyleModel):
        raise NiceganError(f"the {model.name} model has no style codes, so {option} does not apply (multimodal "
                           "models such as munit have them)")
    return model


def check_style_seed(seed: int) -> int:
    """``seed`` if it is a valid style seed, else a one-line error."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_STYLE_SEED:
        raise NiceganError(f"the style seed must be a whole number from 0 to {MAX_STYLE_SEED}, got {seed!r}")
    return int(seed)


def prior_styles(model: TranslationModel, seed: int, count: int, start: int = 0) -> Tensor:
    """Codes ``start .. start + count - 1`` of ``seed`` drawn from the model's N(0, I) prior: ``count x style_dim``
    (float32, CPU)."""
    dim = require_style_model(model).style_dim
    seed = check_style_seed(seed)
    if count < 0 or start < 0:
        raise ValueError(f"cannot draw {count} style codes from index {start}")
    codes = torch.empty(count, dim)
    for k in range(count):
        state = np.random.SeedSequence([seed, start + k]).generate_state(2, dtype=np.uint32)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        codes[k] = torch.randn(dim, generator=gen)
    return codes


def seeded_style_fn(model: TranslationModel, seed: int) -> StyleFn:
    """A :data:`StyleFn` giving image ``i`` of a stream code ``i`` of ``seed`` (one random style per image)."""
    require_style_model(model)
    check_style_seed(seed)
    return lambda start, n: prior_styles(model, seed, n, start)


def style_bank(model: TranslationModel, count: int, seed: int) -> Tensor:
    """``count`` seeded codes (``--styles K``): ``count x style_dim``."""
    require_style_model(model, "--styles")
    if not 1 <= count <= MAX_STYLES:
        raise NiceganError(f"--styles must be from 1 to {MAX_STYLES}, got {count}")
    return prior_styles(model, seed, count)


def style_of_image(model: TranslationModel, image: Image.Image, domain: str, size: int | None = None) -> Tensor:
    """The style code (``style_dim``) of a reference image of ``domain``, from that domain's style encoder, at
    ``size`` (default: the training size; the image is resized to a square as the test transform does)."""
    style_model = require_style_model(model, "--style-from")
    if domain not in ("a", "b"):
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    size = size or model.cfg.img_size
    model.check_input_size(size)
    x = test_transform(image, size)[None].to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with inference_context(model):
            code = style_model.encode_style(x, domain)
    finally:
        model.train(was_training)
    return code.reshape(-1).float().cpu().clone()


def target_domain(direction: str) -> str:
    """The domain a translation in ``direction`` produces (whose style codes it takes)."""
    return "b" if direction == "a2b" else "a"


def interpolate_codes(first: Tensor, second: Tensor, steps: int) -> Tensor:
    """``steps`` codes on the line from ``first`` to ``second`` (both ends included): ``steps x style_dim``."""
    if steps < 2:
        raise NiceganError("--steps must be at least 2")
    t = torch.linspace(0, 1, steps)[:, None]
    return (1 - t) * first.reshape(1, -1) + t * second.reshape(1, -1)
