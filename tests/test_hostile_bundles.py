"""Fault injection on inference bundles (issue 25): a bundle is a distribution format, so every hostile config.json
or weights file is refused in one line by ``bundle.load``, ``load_model`` / ``Translator.load`` and the CLI, quickly
and with bounded memory; nothing is built from a config that does not describe the weights stored with it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from nicegan.core.errors import CheckpointError, NiceganError
from nicegan.core.files import sha256_file
from nicegan.deploy.export import export
from nicegan.formats.bundle import CONFIG, WEIGHTS, BundleError
from nicegan.formats.bundle import load as load_bundle
from nicegan.inference import load_model
from nicegan.inference.loading import model_from_weights
from tests.hostile import deadline
from tests.test_export import run_cli, save_checkpoint

SECONDS = 20  # every case: a refusal (or load) well within this; the probe's n_res case hung for over 120 s


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile_bundle")
    export(save_checkpoint("nicegan", root / "model.pt"), root / "bundle")
    return root / "bundle"


def _meta(b: Path) -> dict:
    return json.loads((b / CONFIG).read_text())


def _put(b: Path, meta: dict) -> None:
    (b / CONFIG).write_text(json.dumps(meta))


def _model(**changes: object) -> Callable[[Path], None]:
    def edit(b: Path) -> None:
        meta = _meta(b)
        meta["config"]["model"].update(changes)
        _put(b, meta)
    return edit


def _top(**changes: object) -> Callable[[Path], None]:
    def edit(b: Path) -> None:
        _put(b, {**_meta(b), **changes})
    return edit


def _raw_step(text: str) -> Callable[[Path], None]:
    def edit(b: Path) -> None:
        raw = (b / CONFIG).read_text()
        assert '"step": 3' in raw
        (b / CONFIG).write_text(raw.replace('"step": 3', f'"step": {text}'))
    return edit


def _rewrite_weights(change: Callable[[dict[str, torch.Tensor]], None], keep_binding: bool = True):
    """Rewrite model.safetensors (``change`` edits the tensors) and record its new SHA-256 in config.json: damage
    made by someone who knows the format."""
    def edit(b: Path) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file

        with safe_open(str(b / WEIGHTS), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
        if not keep_binding:
            metadata.pop("config_sha256", None)
        flat = load_file(b / WEIGHTS)
        change(flat)
        save_file(flat, str(b / WEIGHTS), metadata=metadata)
        meta = _meta(b)
        meta["weights"]["sha256"] = sha256_file(b / WEIGHTS)
        _put(b, meta)
    return edit


def _nan(flat: dict[str, torch.Tensor]) -> None:
    key = next(k for k, t in flat.items() if t.is_floating_point() and t.numel() > 1)
    flat[key][0] = float("nan")


def _inf_everywhere(flat: dict[str, torch.Tensor]) -> None:
    for t in flat.values():
        if t.is_floating_point():
            t.fill_(float("inf"))


def _pad_metrics(b: Path) -> None:
    meta = _meta(b)
    meta["metrics"] = {"pad": "x" * (2 << 20)}
    _put(b, meta)


def _nested(b: Path) -> None:
    meta = _meta(b)
    meta["metrics"] = {}
    raw = json.dumps(meta)
    (b / CONFIG).write_text(raw.replace('"metrics": {}', '"metrics": {"deep": ' + "[" * 3000 + "]" * 3000 + "}"))


#: hostile edit -> what the one-line refusal says
CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "n_res 1e6 (edited config)": (_model(n_res=1_000_000), "does not describe the weights"),
    "img_size contradicts the weights": (_model(img_size=64), "does not describe the weights"),
    "img_size edited in an old bundle": (lambda b: (_unbound(b), _model(img_size=64)(b)), "but it was exported with"),
    "ch 1e5 (edited config)": (_model(ch=100_000), "does not describe the weights"),
    "5000-digit step": (_raw_step("9" * 5000), "holds an integer of 5,000 digits"),
    "5000-digit n_res": (lambda b: (b / CONFIG).write_text((b / CONFIG).read_text().replace(
        '"n_res": 1', '"n_res": ' + "1" * 5000)), "holds an integer of 5,000 digits"),
    "step 10**29": (_top(step=10**29), "has no training step"),
    "negative step": (_top(step=-1), "has no training step"),
    "2 MB config.json": (_pad_metrics, "is over 1 MiB"),
    "3000 nested arrays": (_nested, "is nested deeper than"),
    "NaN weight, hash updated": (_rewrite_weights(_nan), "holds NaN or infinite values"),
    "inf weights, hash updated": (_rewrite_weights(_inf_everywhere), "holds NaN or infinite values"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_bundles_are_refused_in_one_line(case: str, bundle: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    hostile = tmp_path / "hostile"
    shutil.copytree(bundle, hostile)
    hurt, message = CASES[case]
    hurt(hostile)
    image = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (90, 40, 200)).save(image)
    t0 = time.monotonic()
    with deadline(SECONDS):
        with pytest.raises(NiceganError) as api_error:
            load_model(hostile)  # the Python API: a one-line NiceganError, never a raw ValueError
        assert message in str(api_error.value) and "\n" not in str(api_error.value)
        code, _, err = run_cli(["translate", "--checkpoint", hostile, "--input", image, "--output", tmp_path / "out",
                                "--direction", "a2b", "--device", "cpu"], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - t0 < SECONDS


def _unbound(b: Path) -> None:
    """A bundle written before the weights recorded their config's digest: the shapes are all that can be checked."""
    _rewrite_weights(lambda flat: None, keep_binding=False)(b)


@pytest.mark.parametrize(("change", "message"), [({"n_res": 1_000_000}, "far larger than"),
                                                  ({"ch": 100_000}, "far larger than"),
                                                  ({"ch": 8}, "does not fit")])
def test_configs_that_do_not_describe_the_weights_are_refused_before_the_build(
        change: dict, message: str, bundle: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    _unbound(old)
    (old / "README.md").unlink()  # its model card would refuse the edit first: the build's own checks are tested
    load_model(old)  # still loads: older bundles keep working
    _model(**change)(old)
    t0 = time.monotonic()
    with deadline(SECONDS), pytest.raises(CheckpointError, match=message):
        load_model(old)
    assert time.monotonic() - t0 < SECONDS


def test_an_edited_img_size_in_an_old_bundle_is_caught_by_its_model_card(bundle: Path, tmp_path: Path) -> None:
    """NICE-GAN's light heads have the same shapes at every img_size, so an old bundle (no config digest) with an
    edited ``model.img_size`` passes every shape check; the model card exported with it still records the size.
    Without the card (deleted, or edited past recognition) nothing can tell: that residual is documented."""
    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    _unbound(old)
    size = _meta(old)["config"]["model"]["img_size"]
    _model(img_size=size * 2)(old)
    with deadline(SECONDS), pytest.raises(CheckpointError) as e:
        load_model(old)
    msg = str(e.value)
    assert f"model.img_size {size * 2}, but it was exported with {size}" in msg and "\n" not in msg, msg
    (old / "README.md").unlink()
    assert load_model(old)[1].model.img_size == size * 2  # the residual: no witness left
    _model(img_size=size)(old)
    load_model(old)  # an old bundle as exported (card or no card) keeps loading


def test_a_huge_model_config_costs_no_memory(bundle: Path) -> None:
    """The size check builds on the meta device: a 100,000-channel NICE-GAN (terabytes of weights) is refused with
    the process's peak memory (VmHWM) far under a gigabyte, in a subprocess so that the peak is its own."""
    code = f"""
import sys
from nicegan.formats.bundle import load
from nicegan.inference.loading import model_from_weights
from nicegan.core.errors import CheckpointError
b = load({str(bundle)!r})
b.config["model"]["ch"] = 100_000
b.config["model"]["n_res"] = 1_000_000
try:
    model_from_weights(b.config, b.nets, b.step, b.path)
except CheckpointError as e:
    assert "far larger than" in str(e), e
else:
    sys.exit("accepted")
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
print(int(hwm) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) < 1024  # MiB


def test_the_bundle_reader_and_loader_accept_the_real_thing(bundle: Path) -> None:
    b = load_bundle(bundle)
    model, cfg, step = model_from_weights(b.config, b.nets, b.step, b.path)
    assert step == 3 and cfg.model.n_res == 1
    with pytest.raises(BundleError):
        load_bundle(bundle.parent / "model.pt")  # not a bundle folder
