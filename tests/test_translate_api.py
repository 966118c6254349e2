"""Translation of real-world inputs: aspect ratio kept, full resolution in blended tiles, and the Python API."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.core.errors import NiceganError
from nicegan.core.tiles import Canvas, ramp, tile_grid, tile_starts
from nicegan.data.transforms import pil_to_tensor, tensor_to_uint8
from nicegan.inference import input_geometry, translate_images
from tests.conftest import REPO, tiny_model


@pytest.fixture(scope="module")
def nice() -> torch.nn.Module:
    with torch.no_grad():  # trained weights differ from a fresh draw; perturb so no map is trivially constant
        model = tiny_model("nicegan")[0]
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def saved(nice: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nicegan.configs.schema import resolve_config
    from nicegan.formats import checkpoint
    from tests.conftest import tiny_overrides

    cfg = resolve_config({}, tiny_overrides("nicegan"))
    path = tmp_path_factory.mktemp("api") / "tiny.pt"
    checkpoint.write(checkpoint.Checkpoint(model="nicegan", config=cfg.to_dict(), step=7,
                                           nets={k: v.state_dict() for k, v in nice.nets.items()}), path)
    return path


def noise(h: int, w: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8))


# --- tiles ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length,tile,overlap,align", [(300, 64, 16, 4), (1000, 256, 64, 4), (452, 96, 0, 4),
                                                      (64, 64, 16, 4), (33, 32, 8, 1), (700, 128, 127, 1)])
def test_tiles_cover_with_the_overlap_asked_and_aligned_starts(length: int, tile: int, overlap: int,
                                                               align: int) -> None:
    starts = tile_starts(length, tile, overlap, align)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert all(s % align == 0 for s in starts)
    assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_blending_windows_sum_to_one_on_a_regular_grid_and_cover_everything() -> None:
    w = ramp(64, 16, 16)
    assert w[0] > 0 and w[-1] > 0 and torch.allclose(w[:16] + w[-16:], torch.ones(16))
    canvas = Canvas(1, 200, 300)
    for t in tile_grid(200, 300, 64, 16, align=4):
        canvas.add(t, torch.full((1, t.height, t.width), 3.0))
    assert torch.allclose(canvas.result(), torch.full((1, 200, 300), 3.0))
    with pytest.raises(RuntimeError, match="uncovered"):
        Canvas(1, 4, 4).result()


# --- aspect ratio --------------------------------------------------------------------------------------------------


def test_non_square_inputs_keep_their_aspect_ratio_and_match_the_network_on_the_resized_image(nice) -> None:
    img = noise(30, 60)  # 60 wide, 30 high: the shorter side becomes 32, the other 64
    out = next(translate_images(nice, [img], "a2b"))
    assert out.image.size == (64, 32) and out.fit == "aspect"
    x = pil_to_tensor(img.resize((64, 32), Image.Resampling.BILINEAR))
    with torch.no_grad():
        expected = tensor_to_uint8(nice.translate(x[None], "a2b").clamp(-1, 1)[0])
    assert np.array_equal(np.asarray(out.image), expected)


def test_odd_shapes_are_padded_to_the_model_multiple_and_cut_back(nice) -> None:
    outs = list(translate_images(nice, [noise(100, 37), noise(37, 37), noise(41, 90)], "a2b", heatmap=True,
                                 batch_size=2))
    assert [o.image.size for o in outs] == [(32, 86), (32, 32), (70, 32)]
    assert [o.heatmap.size for o in outs] == [(32, 86), (32, 32), (70, 32)]
    assert [o.fit for o in outs] == ["aspect", None, "aspect"]


def test_fixed_size_models_translate_the_centre_square_and_say_so() -> None:
    cogan = tiny_model("cogan")[0]
    assert input_geometry(cogan).fixed and not input_geometry(tiny_model("nicegan")[0]).fixed
    out = next(translate_images(cogan, [noise(30, 60)], "a2b"))
    assert out.image.size == (32, 32) and out.fit == "cropped"


# --- full resolution in tiles ----------------------------------------------------------------------------------------


def _max_interior_diff(a: Image.Image, b: Image.Image, border: int = 6) -> tuple[float, float]:
    d = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))[border:-border, border:-border]
    return float(d.mean()), float(d.max())


def test_tiled_translation_of_a_flat_image_has_no_tile_edges(nice) -> None:
    """A constant image translated in 64 px tiles equals its translation in one piece (no seams); naive tiles
    without overlap differ at every tile edge, which is what blending removes."""
    flat = Image.new("RGB", (320, 200), (120, 80, 200))
    whole = next(translate_images(nice, [flat], "a2b", keep_size=True, tile=320)).image
    blended = next(translate_images(nice, [flat], "a2b", keep_size=True, tile=64, overlap=16)).image
    naive = next(translate_images(nice, [flat], "a2b", keep_size=True, tile=64, overlap=0)).image
    assert blended.size == whole.size == (320, 200)
    mean, worst = _max_interior_diff(blended, whole)
    assert mean < 0.3 and worst <= 6, (mean, worst)
    assert _max_interior_diff(naive, whole)[1] > 20, "the seam check must be able to fail"


def test_full_resolution_is_bounded_by_one_batch_of_tiles(nice) -> None:
    """A large image is translated tile batch by tile batch: no forward pass sees more than batch x tile^2."""
    seen: list[tuple[int, ...]] = []
    orig = nice.translate

    def spy(x: torch.Tensor, direction: str) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return orig(x, direction)

    nice.translate = spy
    try:
        out = next(translate_images(nice, [noise(300, 410)], "a2b", keep_size=True, tile=64, batch_size=3))
    finally:
        del nice.translate
    assert out.image.size == (410, 300) and out.fit == "tiled"
    assert seen and all(s[0] <= 3 and s[-2:] == (64, 64) for s in seen)
    assert sum(s[0] for s in seen) == len(tile_grid(300, 412, 64, 16, align=4))


def test_small_inputs_are_enlarged_for_the_network_and_returned_at_their_size(nice) -> None:
    out = next(translate_images(nice, [noise(20, 24)], "a2b", keep_size=True, heatmap=True))
    assert out.image.size == (24, 20) and out.heatmap.size == (24, 20)


def test_bad_tiles_are_refused_in_one_line(nice) -> None:
    with pytest.raises(NiceganError, match="multiple of 4"):
        next(translate_images(nice, [noise(80, 80)], "a2b", keep_size=True, tile=30))
    with pytest.raises(NiceganError, match="^overlap must be at least 0"):
        next(translate_images(nice, [noise(80, 80)], "a2b", keep_size=True, tile=32, overlap=32))
    with pytest.raises(NiceganError, match="tiles are 32 px"):
        next(translate_images(tiny_model("cogan")[0], [noise(80, 80)], "a2b", keep_size=True, tile=64))


# --- the Python API ------------------------------------------------------------------------------------------------


def test_translator_returns_the_kind_it_was_given(saved: Path, tmp_path: Path) -> None:
    from nicegan import Translator

    tr = Translator.load(saved, device="cpu")
    assert (tr.name, tr.step, tr.img_size, tr.directions, tr.has_heatmap) == ("nicegan", 7, 32, ("a2b", "b2a"), True)
    img = noise(36, 40, seed=3)
    ref = tr(img, "a2b")
    assert isinstance(ref, Image.Image) and ref.size == (36, 32)
    arr = np.asarray(img)
    path = tmp_path / "in.png"
    img.save(path)

    assert np.array_equal(np.asarray(tr(path, "a2b")), np.asarray(ref))
    assert np.array_equal(np.asarray(tr(str(path), "a2b")), np.asarray(ref))
    out = tr(arr, "a2b")
    assert out.dtype == np.uint8 and np.array_equal(out, np.asarray(ref))
    out = tr(arr.astype(np.float64) / 255, "a2b")
    assert out.dtype == np.float32 and np.allclose(out, np.asarray(ref) / 255)
    stack = tr(np.stack([arr, arr[:, ::-1]]), "a2b", batch_size=1)
    assert stack.shape == (2, 32, 36, 3) and np.array_equal(stack[0], np.asarray(ref))
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255
    out = tr(t, "a2b")
    assert out.shape == (3, 32, 36) and out.dtype == torch.float32
    # Tensors stay tensors (no 8-bit round trip) and are resized with torch's antialiased bilinear filter on their
    # own device, so they agree with the PIL path to a few 8-bit steps where a resize is needed, not exactly.
    diff = (out * 255 - torch.from_numpy(np.asarray(ref).copy()).permute(2, 0, 1).float()).abs()
    assert diff.max() <= 4 and diff.mean() < 1
    assert tr(t[None].repeat(2, 1, 1, 1), "a2b").shape == (2, 3, 32, 36)
    assert tr((t * 255).round().byte(), "a2b").dtype == torch.uint8
    mixed = tr([img, arr, path], "a2b")
    assert isinstance(mixed[0], Image.Image) and isinstance(mixed[1], np.ndarray) and isinstance(mixed[2],
                                                                                                   Image.Image)
    outs, heats = tr([img, img], "b2a", heatmap=True)
    assert len(outs) == len(heats) == 2 and heats[0].size == outs[0].size
    assert tr(img, "a2b", keep_size=True).size == img.size


def test_translator_matches_the_command_line(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nicegan import Translator
    from nicegan.cli import main

    img = noise(50, 44, seed=5)
    img.save(tmp_path / "x.png")
    assert main(["-q", "translate", "--checkpoint", str(saved), "--input", str(tmp_path / "x.png"), "--output",
                 str(tmp_path / "out"), "--direction", "b2a", "--no-progress"]) == 0
    with Image.open(tmp_path / "out" / "x.png") as cli_out:
        assert np.array_equal(np.asarray(cli_out), np.asarray(Translator.load(saved, "cpu")(img, "b2a")))


def test_translator_refuses_bad_inputs_in_one_line(saved: Path, tmp_path: Path) -> None:
    from nicegan import Translator

    tr = Translator.load(saved, device="cpu")
    cases = [([], "empty"), (42, "got int"), (np.zeros((2, 2, 2, 2, 3), np.uint8), "H x W"),
             (np.zeros((8, 8, 3), np.int64), "uint8"), (np.full((8, 8), np.nan), "NaN"),
             (torch.zeros(5, 8, 8), "C = 1 or 3"), (tmp_path / "missing.png", "cannot read"),
             (np.zeros((0, 8, 8, 3), np.uint8), "empty stack"), (torch.zeros(0, 3, 8, 8), "empty stack")]
    for bad, words in cases:
        with pytest.raises(NiceganError, match=words):
            tr(bad, "a2b")
    with pytest.raises(NiceganError, match="direction"):
        tr(noise(32, 32), "x2y")


def test_the_readme_python_example_runs(saved: Path, tmp_path: Path) -> None:
    """The README's Python API example, run as written (paths pointed at a tiny checkpoint and image)."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- python-api-example -->\s*```python\n(.*?)```", readme, re.S)
    assert match, "README must hold the Python API example after <!-- python-api-example -->"
    noise(48, 64).save(tmp_path / "cat.jpg")
    code = match.group(1).replace('"runs/cat2dog"', repr(str(saved))).replace('"cat.jpg"',
                                                                               repr(str(tmp_path / "cat.jpg")))
    code = code.replace('"dog.png"', repr(str(tmp_path / "dog.png")))
    exec(compile(code, "README example", "exec"), {})
    with Image.open(tmp_path / "dog.png") as out:
        assert out.size == (64, 48)
