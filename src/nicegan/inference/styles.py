"""Style codes of multimodal models (:class:`~nicegan.models.base.StyleModel`): seeded draws from the prior,
codes encoded from reference images (example-guided translation), interpolation between two codes.

Seeded draws: code ``i`` of seed ``s`` comes from its own generator, seeded with ``(s, i)``, so it does not depend
on how many codes are drawn, on the batch size or on the device: ``nicegan translate --styles 4 --style-seed 7``
writes ``NAME_s2.png`` with the same code 2 that ``--styles 3 --style-seed 7`` uses, and ``nicegan evaluate`` gives
test image ``i`` code ``i`` of its seed. The prior of every StyleModel in the toolkit (MUNIT, DRIT) is N(0, I).

:func:`resolve_style` is the one place a user's choice of style (a seed, a code or a reference image) becomes a code:
``nicegan translate --style-seed S``, ``Translator(..., style=S)`` and the web app's "style seed" box all take code 0
of seed ``S``, so one seed names one style everywhere. Nothing outside this module seeds a generator for styles
(tests/test_style_resolver.py checks it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.data.images import ImageDecodeError, load_rgb, to_rgb
from nicegan.data.transforms import test_transform
from nicegan.inference.batches import StyleFn, inference_context
from nicegan.inference.images import check_image
from nicegan.models.base import StyleModel, TranslationModel

#: the largest ``--style-seed`` (NumPy's seed sequence takes any non-negative integer; this keeps it a 64-bit one)
MAX_STYLE_SEED = 2**63 - 1
#: the most style codes one call draws (``--styles K``)
MAX_STYLES = 1024

#: what names one style: a seed (int), a style code (``style_dim`` floats, tensor or array) or a reference image of
#: the target domain (PIL image or path)
StyleSpec = int | np.integer | Tensor | np.ndarray | str | Path | Image.Image


def require_style_model(model: TranslationModel, option: str = "style codes") -> StyleModel:
    """``model`` if it is multimodal, else a one-line :class:`NiceganError` naming ``option`` (a setting's neutral
    name, e.g. ``"styles"``, is also the error's ``option``)."""
    if not isinstance(model, StyleModel):
        raise NiceganError(f"the {model.name} model has no style codes, so {option} does not apply (multimodal "
                           "models such as munit have them)", option=_named(option))
    return model


def _named(option: str) -> str | None:
    """``option`` as an error's ``option`` when it is a setting's neutral name (``style_seed``), not a phrase."""
    return option if option.isidentifier() else None


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


def drawn_style(model: TranslationModel) -> Tensor:
    """One code from the model's N(0, I) prior drawn with torch's global generator (``style_dim``, float32, CPU):
    what the Python API uses when no style is given and an image is translated in tiles, so that its tiles agree."""
    return torch.randn(require_style_model(model).style_dim)


def seeded_style_fn(model: TranslationModel, seed: int) -> StyleFn:
    """A :data:`StyleFn` giving image ``i`` of a stream code ``i`` of ``seed`` (one random style per image)."""
    require_style_model(model)
    check_style_seed(seed)
    return lambda start, n: prior_styles(model, seed, n, start)


def style_bank(model: TranslationModel, count: int, seed: int) -> Tensor:
    """``count`` seeded codes (``--styles K``): ``count x style_dim``."""
    require_style_model(model, "styles")
    if not 1 <= count <= MAX_STYLES:
        raise NiceganError(f"styles must be from 1 to {MAX_STYLES}, got {count}", option="styles")
    return prior_styles(model, seed, count)


def style_of_image(model: TranslationModel, image: Image.Image, domain: str, size: int | None = None) -> Tensor:
    """The style code (``style_dim``) of a reference image of ``domain``, from that domain's style encoder, at
    ``size`` (default: the training size; the image is resized to a square as the test transform does)."""
    style_model = require_style_model(model, "style_from")
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


def resolve_style(model: TranslationModel, style: StyleSpec, direction: str, option: str = "style") -> Tensor:
    """The one style code (``style_dim``, float32, CPU) that ``style`` names for a translation in ``direction``.

    An int is a style seed: code 0 of that seed (:func:`prior_styles`), the code ``nicegan translate --style-seed``
    gives every input and the web app gives its upload. A tensor or array of ``style_dim`` finite floats is the
    code itself. A PIL image or a path is a reference image of the target domain: its encoded style. ``option``
    names the setting in error messages (``style``, ``--style-from``, ``style_seed``).
    """
    style_model = require_style_model(model, option)
    if isinstance(style, (int, np.integer)) and not isinstance(style, bool):
        return prior_styles(model, int(style), 1)[0]
    if isinstance(style, (str, Path)):
        try:
            style = load_rgb(Path(style).expanduser())
        except ImageDecodeError as e:
            raise NiceganError(f"{option} {style}: cannot read it: {e}", option=_named(option)) from None
    if isinstance(style, Image.Image):
        check_image(*style.size)  # before a lazily opened image is decoded
        try:
            reference = to_rgb(style)
        except (OSError, ValueError) as e:  # a lazily opened image whose pixels cannot be decoded
            raise NiceganError(f"{option}: cannot decode the reference image ({' '.join(str(e).split())[:120]})",
                               option=_named(option)) from None
        return style_of_image(model, reference, target_domain(direction))
    if isinstance(style, (Tensor, np.ndarray)):
        code = torch.as_tensor(np.asarray(style) if isinstance(style, np.ndarray) else style.detach().cpu())
        dim = style_model.style_dim
        if code.numel() != dim or not code.is_floating_point() or not torch.isfinite(code).all():
            raise NiceganError(f"a style code must be {dim} finite floats, got {tuple(code.shape)} {code.dtype}")
        return code.reshape(dim).float()
    raise NiceganError(f"{option} must be a seed (int), a style code (tensor or array) or a reference image (path "
                       f"or PIL image), got {type(style).__name__}", option=_named(option))


def target_domain(direction: str) -> str:
    """The domain a translation in ``direction`` produces (whose style codes it takes)."""
    return "b" if direction == "a2b" else "a"


def interpolate_codes(first: Tensor, second: Tensor, steps: int) -> Tensor:
    """``steps`` codes on the line from ``first`` to ``second`` (both ends included): ``steps x style_dim``."""
    if steps < 2:
        raise NiceganError(f"steps must be at least 2, got {steps}", option="steps")
    t = torch.linspace(0, 1, steps)[:, None]
    return (1 - t) * first.reshape(1, -1) + t * second.reshape(1, -1)
