"""MUNIT and multimodal translation: seeded styles, example-guided styles, style interpolation, the diversity score.

Official parameter counts and the registry contract tests (shapes, phase isolation, exact resume) for ``munit``
run in tests/test_models.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.data import transforms
from nicegan.models.base import LatentModel, StyleModel
from tests.conftest import tiny_model, tiny_overrides, write_images


@pytest.fixture(scope="module")
def munit() -> torch.nn.Module:
    model = tiny_model("munit")[0]
    with torch.no_grad():  # trained weights differ from a fresh draw: make the style matter visibly
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _save(model: torch.nn.Module, name: str, path: Path, *extra: str) -> Path:
    from nicegan.configs.schema import resolve_config
    from nicegan.formats import checkpoint

    cfg = resolve_config({}, tiny_overrides(name, *extra))
    checkpoint.write(checkpoint.Checkpoint(model=name, config=cfg.to_dict(), step=3,
                                           nets={k: v.state_dict() for k, v in model.nets.items()}), path)
    return path


@pytest.fixture(scope="module")
def saved(munit: torch.nn.Module, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(munit, "munit", tmp_path_factory.mktemp("munit") / "munit.pt", f"data.root={tiny_data}")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_the_model_has_the_style_and_latent_capabilities(munit: torch.nn.Module) -> None:
    assert isinstance(munit, StyleModel) and isinstance(munit, LatentModel) and munit.style_dim == 8
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        s = munit.encode_style(x, "b")
        assert s.shape == (2, 8)
        same = munit.translate(x, "a2b", style=s), munit.translate(x, "a2b", style=s.view(2, 8, 1, 1))
        assert torch.equal(*same), "the official B x 8 x 1 x 1 shape is accepted"
        one = munit.translate(x, "a2b", style=s[0])  # one code for the whole batch
        assert torch.equal(one[0], same[0][0]) and not torch.equal(one[1], same[0][1])
        assert munit.encode(x, "a").shape == (2, 16, 8, 8) and munit.decode(munit.encode(x, "a"), "b").shape == x.shape
    with pytest.raises(NiceganError, match="8 numbers"):
        munit.translate(x, "a2b", style=torch.zeros(2, 5))


def test_seeded_style_codes_are_deterministic_and_independent_of_the_count(munit: torch.nn.Module) -> None:
    from nicegan.inference.styles import prior_styles

    a, b = prior_styles(munit, 7, 4), prior_styles(munit, 7, 4)
    assert torch.equal(a, b) and a.shape == (4, 8)
    assert torch.equal(prior_styles(munit, 7, 1, start=2)[0], a[2]), "code i does not depend on how many are drawn"
    assert not torch.equal(prior_styles(munit, 8, 4), a)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = [munit.translate(x, "b2a", style=a[k]) for k in range(2)]
        assert torch.equal(y[0], munit.translate(x, "b2a", style=b[0]))
        assert (y[0] - y[1]).abs().max() > 1e-3, "different styles give different translations"


def test_translate_styles_writes_k_files_per_input_deterministically(saved: Path, tmp_path: Path) -> None:
    src = tmp_path / "inputs"
    write_images(src, 2, seed=4, size=(32, 32))
    runs = {}
    for name, extra in (("one", ["--style-seed", "7"]), ("two", ["--style-seed", "7"]), ("other", ["--style-seed",
                                                                                                   "8"])):
        out = tmp_path / name
        assert main(["-q", "translate", "--checkpoint", str(saved), "--input", str(src), "--output", str(out),
                     "--direction", "a2b", "--no-progress", "--styles", "3", *extra]) == 0
        runs[name] = out
    names = sorted(p.name for p in runs["one"].iterdir())
    stems = sorted(p.stem for p in src.glob("*.png"))
    assert names == sorted(f"{s}_s{k}.png" for s in stems for k in range(3))
    first = runs["one"] / names[0]
    assert np.array_equal(_pixels(first), _pixels(runs["two"] / names[0])), "same seed, same images"
    assert not np.array_equal(_pixels(first), _pixels(runs["other"] / names[0])), "another seed, other images"
    assert not np.array_equal(_pixels(first), _pixels(runs["one"] / names[1])), "another style, another image"
    # without an option: one style, code 0 of seed 0, under the plain names
    plain, seeded = tmp_path / "plain", tmp_path / "seeded"
    for out, extra in ((plain, []), (seeded, ["--styles", "1"])):
        assert main(["-q", "translate", "--checkpoint", str(saved), "--input", str(src / f"{stems[0]}.png"),
                     "--output", str(out), "--direction", "a2b", *extra]) == 0
    assert np.array_equal(_pixels(plain / f"{stems[0]}.png"), _pixels(seeded / f"{stems[0]}.png"))


def test_example_guided_translation_takes_the_reference_images_style(saved: Path, munit: torch.nn.Module,
                                                                      tmp_path: Path) -> None:
    from nicegan import Translator
    from nicegan.inference.styles import prior_styles

    image, ref = write_images(tmp_path / "in", 2, seed=3, size=(32, 32))
    out = tmp_path / "out"
    assert main(["-q", "translate", "--checkpoint", str(saved), "--input", str(image), "--output", str(out),
                 "--direction", "b2a", "--style-from", str(ref)]) == 0
    with Image.open(ref) as r, Image.open(image) as i, torch.no_grad():
        code = munit.encode_style(transforms.test_transform(r.convert("RGB"), 32)[None], "a")  # b2a: an A reference
        want = munit.translate(transforms.test_transform(i.convert("RGB"), 32)[None], "b2a", style=code)[0]
    got = torch.from_numpy(_pixels(out / image.name)).permute(2, 0, 1) / 127.5 - 1
    assert (got - want.clamp(-1, 1)).abs().max() < 2 / 255 + 1e-6
    translator = Translator.load(saved, device="cpu")
    assert translator.has_style
    assert np.array_equal(np.asarray(translator(image, "b2a", style=ref)), _pixels(out / image.name))
    code = prior_styles(translator.model, 5, 1)[0]
    by_seed, by_code = translator(image, "b2a", style=5), translator(image, "b2a", style=code.numpy())
    assert np.array_equal(np.asarray(by_seed), np.asarray(by_code))
    many = translator(image, "b2a", styles=3, style_seed=5)
    assert len(many) == 3 and np.array_equal(np.asarray(many[0]), np.asarray(by_seed))


def test_interpolate_between_two_styles(saved: Path, tiny_data: Path, tmp_path: Path) -> None:
    image = sorted((tiny_data / "testA").glob("*.png"))[0]
    out = tmp_path / "styles.png"
    assert main(["-q", "interpolate", "--checkpoint", str(saved), str(image), "--style-seeds", "1", "2",
                 "--steps", "4", "--output", str(out)]) == 0
    with Image.open(out) as im:  # one row: the input and 4 translations of 32 px with 2 px padding
        assert im.size == (5 * 34 + 2, 34 + 2)
    refs = sorted((tiny_data / "testB").glob("*.png"))[:2]
    out2 = tmp_path / "refs.png"
    assert main(["-q", "interpolate", "--checkpoint", str(saved), str(image), "--style-from", *map(str, refs),
                 "--steps", "3", "--output", str(out2)]) == 0
    assert out2.is_file()


def test_style_options_give_one_line_errors(saved: Path, tiny_data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    plain = _save(tiny_model("cyclegan")[0], "cyclegan", tmp_path / "cyclegan.pt")
    image = sorted((tiny_data / "testA").glob("*.png"))[0]
    cases = [
        (["translate", "--checkpoint", str(plain), "--input", str(image), "--output", str(tmp_path / "o"),
          "--direction", "a2b", "--styles", "2"], "cyclegan model has no style codes, so --styles"),
        (["translate", "--checkpoint", str(plain), "--input", str(image), "--output", str(tmp_path / "o"),
          "--direction", "a2b", "--style-from", str(image)], "has no style codes, so --style-from"),
        (["translate", "--checkpoint", str(saved), "--input", str(image), "--output", str(tmp_path / "o"),
          "--direction", "a2b", "--styles", "2", "--style-from", str(image)], "give one"),
        (["translate", "--checkpoint", str(saved), "--input", str(image), "--output", str(tmp_path / "o"),
          "--direction", "a2b", "--style-from", str(tmp_path / "missing.png")], "--style-from"),
        (["interpolate", "--checkpoint", str(plain), str(image), "--style-seeds", "1", "2", "--output",
          str(tmp_path / "i.png")], "has no style codes"),
        (["interpolate", "--checkpoint", str(saved), str(image), str(image), "--style-seeds", "1", "2", "--output",
          str(tmp_path / "i.png")], "drop IMAGE2"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("nicegan: error:") and "\n" not in err and message in err, err


class _PixelFeatures:
    """A stand-in for the Inception extractor: the images' pixels as features (cheap and exact)."""

    def features(self, images, total=None, desc="", progress=None) -> np.ndarray:
        return np.stack([np.asarray(img, np.float64).reshape(-1) / 255 for img in images])


def test_diversity_score(munit: torch.nn.Module, tiny_data: Path) -> None:
    from nicegan.evaluation import EvalContext, evaluate, scalars
    from nicegan.evaluation.diversity import mean_pairwise_distance
    from nicegan.evaluation.registry import get_metric

    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])) == pytest.approx(10 / 3)
    ctx = EvalContext(munit, str(tiny_data), limit=3, extractor=_PixelFeatures())
    out = evaluate(ctx, ["diversity"])["diversity"]["results"]
    assert set(out) == {"a2b", "b2a"} and out["a2b"]["inputs"] == 3 and out["a2b"]["styles"] == 4
    assert out["a2b"]["score"] > 0 and out == evaluate(ctx, ["diversity"])["diversity"]["results"]
    assert set(scalars({"diversity": {"results": out}})) == {"eval/diversity_a2b", "eval/diversity_b2a"}
    assert not get_metric("diversity").applies(EvalContext(tiny_model("cyclegan")[0], str(tiny_data)))


def test_evaluation_uses_one_seeded_style_per_test_image(munit: torch.nn.Module, tiny_data: Path) -> None:
    from nicegan.data import open_domain
    from nicegan.evaluation.translation import translated_images

    src = open_domain(str(tiny_data), "test", "A")
    runs = [[np.asarray(i) for i in translated_images(munit, src, "a2b", batch_size=b, style_seed=s)]
            for b, s in ((2, 0), (16, 0), (2, 1))]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1], strict=True)), "batching does not matter"
    assert not np.array_equal(runs[0][0], runs[2][0]), "the style seed does"
    assert not np.array_equal(runs[0][0], runs[0][1]) or len(runs[0]) == 1
