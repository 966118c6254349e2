"""The Python API on odd inputs (issue 25): each ends in a one-line NiceganError or a correct answer, quickly."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan import Translator
from nicegan.core.errors import NiceganError
from tests import test_serve
from tests.hostile import deadline

saved = test_serve.saved  # a tiny NICE-GAN checkpoint

#: odd input -> words of the refusal
REFUSED = {
    "empty list": ([], "non-empty list"),
    "empty tuple": ((), "non-empty list"),
    "0 x 0 array": (np.zeros((0, 0, 3), np.uint8), "0 x 0 pixels"),
    "0 x 5 array": (np.zeros((0, 5, 3), np.uint8), "empty image"),
    "5-D tensor": (torch.rand(1, 1, 3, 32, 32), "C x H x W"),
    "0-D tensor": (torch.tensor(1.0), "C x H x W"),
    "NaN tensor": (torch.full((3, 32, 32), float("nan")), "NaN or infinite"),
    "inf batch": (torch.full((2, 3, 32, 32), float("inf")), "NaN or infinite"),
    "int64 tensor": (torch.randint(0, 255, (3, 32, 32)), "torch.int64"),
    "complex tensor": (torch.zeros(3, 32, 32, dtype=torch.complex64), "float"),
    "a generator": ((Image.new("RGB", (32, 32)) for _ in range(2)), "got generator"),
    "None": (None, "got NoneType"),
    "[None]": ([None], "got NoneType"),
    "bool array": (np.zeros((32, 32, 3), bool), "got bool"),
    "2-channel array": (np.zeros((32, 32, 2), np.uint8), "H x W x 3"),
    "10^10-pixel view": (torch.zeros(1).expand(3, 100_000, 100_000), "pixel limit"),
}


@pytest.fixture(scope="module")
def translator(saved: Path) -> Translator:
    return Translator.load(saved, device="cpu")


@pytest.mark.parametrize("case", list(REFUSED))
def test_odd_inputs_are_refused_in_one_line(case: str, translator: Translator) -> None:
    bad, words = REFUSED[case]
    t0 = time.monotonic()
    with deadline(20), pytest.raises(NiceganError) as refused:
        translator(bad, "a2b")
    assert words in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
    assert time.monotonic() - t0 < 5


def test_odd_but_valid_inputs_get_a_correct_answer(translator: Translator) -> None:
    x = torch.rand(3, 32, 32)
    expected = translator(x, "a2b")
    half = translator(x.half(), "a2b")  # float16 is read as float
    assert half.shape == expected.shape and bool(torch.isfinite(half).all())
    assert (half.float() - expected).abs().max() < 0.05
    gray = translator(np.zeros((33, 17), np.uint8), "a2b")  # odd sizes, one channel: aspect ratio kept
    assert gray.shape[:2] == (62, 32)
    assert translator(np.zeros((33, 17), np.uint8), "a2b", keep_size=True).shape[:2] == (33, 17)


def test_translator_load_refuses_a_hostile_bundle_in_one_line(saved: Path, tmp_path: Path) -> None:
    from nicegan.deploy.export import export

    export(saved, tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "config.json").read_text())
    meta["config"]["model"]["n_res"] = 1_000_000
    shutil.copytree(tmp_path / "b", tmp_path / "hostile")
    (tmp_path / "hostile" / "config.json").write_text(json.dumps(meta))
    with deadline(20), pytest.raises(NiceganError, match="does not describe the weights"):
        Translator.load(tmp_path / "hostile", device="cpu")
    assert Translator.load(tmp_path / "b", device="cpu").step == 11
