"""One owner for styles and for tensors in the Python API (issue 23).

A style seed means one style everywhere: ``nicegan translate --style-seed S``, ``Translator(..., style=S)`` and the
web app's style seed box all take code 0 of ``S`` from :func:`nicegan.inference.styles.resolve_style`, and a
full-resolution (tiled) translation uses that one code for every tile. Tensors given to the Translator are
translated as tensors: not rounded to 8 bits, and returned on their own device.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan import Translator
from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.inference import styles
from nicegan.web.serve import MAX_SEED, ServeLimits, TranslationService, UploadError, render_page
from tests.conftest import REPO, perturbed_checkpoint
from tests.test_serve import noise, png

LIMITS = ServeLimits(max_upload_bytes=500_000, max_pixels=250_000)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MUNIT checkpoint whose weights are not a fresh draw (so styles change the output visibly)."""
    return perturbed_checkpoint("munit", tmp_path_factory.mktemp("styles") / "munit.pt", seed=1, step=3)


@pytest.fixture(scope="module")
def translator(saved: Path) -> Translator:
    return Translator.load(saved, device="cpu")


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


# --- one seed, one style ---------------------------------------------------------------------------------------------


def test_a_seed_gives_the_same_translation_on_the_command_line_the_api_and_the_web(saved: Path, tmp_path: Path,
                                                                                   translator: Translator) -> None:
    img = noise(32, 32, seed=4)  # the training size: no resize, so every path sees the same pixels
    img.save(tmp_path / "x.png")
    service = TranslationService(translator, LIMITS)
    outs = {}
    for seed in (7, 8):
        out = tmp_path / f"cli{seed}"
        assert main(["-q", "translate", "--checkpoint", str(saved), "--input", str(tmp_path / "x.png"), "--output",
                     str(out), "--direction", "a2b", "--style-seed", str(seed), "--no-progress"]) == 0
        with Image.open(out / "x.png") as cli:
            outs["cli", seed] = pixels(cli)
        outs["api", seed] = pixels(translator(img, "a2b", style=seed))
        web = service.translate(png(img), **service.options({"direction": "a2b", "style_seed": str(seed)}))
        assert web.style_seed == seed
        outs["web", seed] = pixels(web.image)
    for seed in (7, 8):
        assert np.array_equal(outs["cli", seed], outs["api", seed]), "the command line and the API disagree"
        assert np.array_equal(outs["web", seed], outs["api", seed]), "the web app and the API disagree"
    assert not np.array_equal(outs["api", 7], outs["api", 8]), "another seed, another style"

    # the canonical meaning: code 0 of the seed, drawn from SeedSequence([seed, 0])
    state = np.random.SeedSequence([7, 0]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    code = torch.randn(translator.model.style_dim, generator=gen)
    assert torch.equal(styles.resolve_style(translator.model, 7, "a2b"), code)
    assert np.array_equal(pixels(translator(img, "a2b", style=code)), outs["api", 7])


def test_the_web_seed_bounds_are_the_resolvers(translator: Translator) -> None:
    assert MAX_SEED == styles.MAX_STYLE_SEED
    service = TranslationService(translator, LIMITS)
    assert f'max="{styles.MAX_STYLE_SEED}"' in render_page(service)
    assert service.options({"style_seed": str(MAX_SEED)})["style_seed"] == MAX_SEED
    img = noise(32, 32, seed=2)
    top = service.translate(png(img), **service.options({"style_seed": str(MAX_SEED)}))
    assert np.array_equal(pixels(top.image), pixels(translator(img, "a2b", style=MAX_SEED)))
    for bad in (str(MAX_SEED + 1), "-1", "1.5", "\u0663", "9" * 5000):  # an Arabic-Indic 3; more digits than int()
        with pytest.raises(UploadError, match="style_seed must be a whole number"):
            service.options({"style_seed": bad})
    with pytest.raises(NiceganError, match="style seed must be a whole number"):
        translator(img, "a2b", style=MAX_SEED + 1)
    drawn = service.translate(png(img), **service.options({}))
    assert 0 <= drawn.style_seed < 2**53, "a drawn seed must survive JavaScript's JSON numbers"


def record_styles(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Wrap ``model.translate`` so that every batch's style codes are recorded (one row per image or tile); a batch
    translated without a style fails the test."""
    seen: list[torch.Tensor] = []
    translate = model.translate

    def spy(x: torch.Tensor, direction: str, style: torch.Tensor | None = None) -> torch.Tensor:
        assert style is not None, "a tile batch was left to draw its own style"
        seen.append(style.reshape(len(x), -1).clone())
        return translate(x, direction, style=style)

    monkeypatch.setattr(model, "translate", spy)
    return seen


def test_full_resolution_on_the_web_uses_one_style_for_every_tile(translator: Translator,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[int] = []
    prior = styles.prior_styles

    def counting(model: torch.nn.Module, seed: int, count: int, start: int = 0) -> torch.Tensor:
        resolved.append(seed)
        return prior(model, seed, count, start)

    monkeypatch.setattr(styles, "prior_styles", counting)
    model = translator.model
    seen = record_styles(model, monkeypatch)
    service = TranslationService(translator, LIMITS)
    img = noise(90, 70, seed=6)
    result = service.translate(png(img), **service.options({"style_seed": "11", "full_resolution": "1"}))
    assert result.image.size == img.size
    codes = torch.cat(seen)
    assert len(codes) > 1, "the image should need several tiles"
    assert resolved == [11], "one style per image, resolved once"
    assert torch.equal(codes, prior(model, 11, 1).expand(len(codes), -1)), "every tile has code 0 of the seed"
    monkeypatch.undo()
    assert np.array_equal(pixels(result.image), pixels(translator(img, "a2b", keep_size=True, style=11)))


def test_the_api_without_a_style_gives_the_tiles_of_an_image_one_style(translator: Translator,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model = translator.model
    seen = record_styles(model, monkeypatch)
    torch.manual_seed(3)
    out = translator(noise(90, 70, seed=6), "a2b", keep_size=True, batch_size=2)
    codes = torch.cat(seen)
    assert out.size == (90, 70) and len(seen) > 1, "several tile batches"
    assert torch.equal(codes, codes[:1].expand(len(codes), -1)), "every tile of the image has the same style"


def test_style_seeds_are_drawn_in_one_place_only() -> None:
    """No front end seeds a generator for styles: they all go through nicegan.inference.styles."""
    seeding = {"manual_seed", "SeedSequence", "fork_rng", "seed", "default_rng", "RandomState"}
    # (file, function) pairs that seed a generator for something other than styles
    allowed = {("deploy/export.py", "_inputs")}  # the export check's random input batches
    found = []
    package = REPO / "src" / "nicegan"
    for folder in ("web", "deploy", "cli"):
        for path in sorted((package / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
                for node in ast.walk(func):
                    if not isinstance(node, ast.Call):
                        continue
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    where = (path.relative_to(package).as_posix(), func.name)
                    if name in seeding and where not in allowed:
                        found.append(f"{where[0]}:{node.lineno} {name}() in {func.name}")
            for node in tree.body:  # module level, outside any function
                for call in [n for n in ast.walk(node) if isinstance(n, ast.Call)]:
                    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id",
                                                                                                    "")
                        if name in seeding:
                            found.append(f"{path.relative_to(package).as_posix()}:{call.lineno} {name}()")
    assert not found, "seed styles with nicegan.inference.styles.resolve_style instead: " + "; ".join(found)


# --- tensors stay tensors --------------------------------------------------------------------------------------------


def _forward(translator: Translator, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """The model's own forward on a [0, 1] batch, mapped back to [0, 1]."""
    model = translator.model
    with torch.no_grad():
        y = model.translate(x.to(translator.device) * 2 - 1, "a2b", style=code.to(translator.device))
    return (y.clamp(-1, 1) + 1) / 2


def test_a_float_tensor_is_translated_as_it_is_not_through_8_bits(translator: Translator) -> None:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    code = styles.resolve_style(translator.model, 5, "a2b")
    want = _forward(translator, x, code)
    out = translator(x, "a2b", style=5)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32 and out.device == x.device
    assert (out - want).abs().max() < 1e-6
    steps = out * 255
    assert (steps - steps.round()).abs().max() > 0.05, "the output was rounded to 1/255 steps"
    # one image at a time (batches of one: another batch, so compared with the forward of that batch)
    singles = [_forward(translator, x[k:k + 1], code)[0] for k in range(2)]
    one = translator(x[1], "a2b", style=5)
    assert one.shape == (3, 32, 32) and (one - singles[1]).abs().max() < 1e-6
    as_list = translator([x[0], x[1]], "a2b", style=5)
    assert all(isinstance(t, torch.Tensor) for t in as_list)
    assert max(float((a - b).abs().max()) for a, b in zip(as_list, singles, strict=True)) < 1e-6
    assert (translator(x, "a2b", style=5, batch_size=1) - torch.stack(singles)).abs().max() < 1e-6
    double = translator(x.double(), "a2b", style=5)
    assert double.dtype == torch.float64 and (double - want.double()).abs().max() < 1e-6
    many = translator(x, "a2b", styles=2, style_seed=5)
    assert len(many) == 2 and (many[0] - want).abs().max() < 1e-6


def test_uint8_and_odd_shaped_tensors_follow_the_image_geometry(translator: Translator) -> None:
    arr = np.asarray(noise(48, 40, seed=9))
    t8 = torch.from_numpy(arr.copy()).permute(2, 0, 1)
    # at full resolution nothing is resized, so the 8-bit result is the PIL path's to the pixel
    full = translator(t8, "a2b", style=3, keep_size=True)
    assert full.dtype == torch.uint8 and full.shape == (3, 40, 48)
    ref = pixels(translator(Image.fromarray(arr), "a2b", style=3, keep_size=True))
    assert np.array_equal(full.permute(1, 2, 0).numpy(), ref)
    # resized (aspect ratio kept): the PIL path's shape, values within a few 8-bit steps of it
    fitted = translator(t8.float() / 255, "a2b", style=3)
    ref = pixels(translator(Image.fromarray(arr), "a2b", style=3))
    assert fitted.shape == (3, *ref.shape[:2])
    assert (fitted.permute(1, 2, 0) - torch.from_numpy(ref.copy()) / 255).abs().mean() < 2 / 255
    gray = translator(torch.rand(1, 32, 32), "a2b", style=3)  # one channel in, three out, as for images
    assert gray.shape == (3, 32, 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensors_come_back_on_their_own_device(saved: Path, translator: Translator) -> None:
    x = torch.rand(2, 3, 32, 32)
    code = styles.resolve_style(translator.model, 5, "a2b")
    on_gpu = Translator.load(saved, device="cuda")
    out = on_gpu(x, "a2b", style=5)  # a CPU tensor through a GPU model comes back on the CPU
    assert out.device == x.device and (out - _forward(translator, x, code)).abs().max() < 1e-4
    out = translator(x.cuda(), "a2b", style=5)  # and a GPU tensor through a CPU model on the GPU
    assert out.device.type == "cuda" and (out.cpu() - _forward(translator, x, code)).abs().max() < 1e-6
    out = on_gpu(x.cuda(), "a2b", style=5)
    assert out.device.type == "cuda" and (out - _forward(on_gpu, x, code)).abs().max() < 1e-6
