"""Opt-in fast paths on CPU (where they run): autocast bf16/fp16, channels_last, fused Adam, compile, cudnn flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nicegan.configs.schema import resolve_config
from nicegan.formats import checkpoint as ck
from nicegan.training.loop import Trainer
from nicegan.training.runs import resume_run, start_run
from tests.conftest import TINY, TINY_RUN, tiny_overrides


def cfg_with(data: Path, *extra: str):
    return resolve_config("nicegan-light", TINY + [f"data.root={data}", "train.sample_every=0", *extra])


def train_records(cfg, run: Path) -> list[dict]:
    """Train ``cfg`` into ``run``; the run's logged training records, one per logged step."""
    start_run(cfg, run, progress=False, tensorboard=False)
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in recs if r["event"] == "train"]


def train_losses(data: Path, run: Path, *extra: str, steps: int = 3) -> list[float]:
    return [r["gen/total"] for r in train_records(cfg_with(data, f"train.max_steps={steps}", *extra), run)]


def test_channels_last_and_fused_adam_give_the_same_numbers(tiny_data: Path, tmp_path: Path) -> None:
    base = train_losses(tiny_data, tmp_path / "base")
    for flag in ("train.channels_last=true", "train.fused_adam=true"):
        got = train_losses(tiny_data, tmp_path / flag.split(".")[1].split("=")[0], flag)
        assert got == pytest.approx(base, rel=1e-4), flag
    a = ck.load(tmp_path / "base").nets["gen_a2b"]
    b = ck.load(tmp_path / "fused_adam").nets["gen_a2b"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_runs_and_tracks_fp32(amp: str, tiny_data: Path, tmp_path: Path) -> None:
    fp32 = train_losses(tiny_data, tmp_path / "fp32", steps=6)
    low = train_losses(tiny_data, tmp_path / amp, f"train.amp={amp}", steps=6)
    assert all(torch.isfinite(torch.tensor(low)))
    assert low == pytest.approx(fp32, rel=0.05), "mixed precision follows the fp32 losses closely on a short run"
    saved = ck.load(tmp_path / amp)
    assert bool(saved.scalers) == (amp == "fp16"), "fp16 checkpoints carry their gradient scalers"
    assert all(v.dtype == torch.float32 for v in saved.nets["dis_a"].values() if v.is_floating_point()), \
        "weights stay fp32 (autocast only changes the compute)"


def test_fp16_scaler_survives_resume(tiny_data: Path, tmp_path: Path) -> None:
    cfg = cfg_with(tiny_data, "train.max_steps=4", "train.amp=fp16")
    start_run(cfg, tmp_path / "r", progress=False, tensorboard=False, stop_at=2)
    scale = ck.load(tmp_path / "r").scalers["gen"]["scale"]
    trainer = Trainer(cfg, tmp_path / "r", ck.load(tmp_path / "r"), progress=False, tensorboard=False)
    assert trainer.scalers["gen"].get_scale() == scale
    assert resume_run(tmp_path / "r", progress=False, tensorboard=False).step == 4


def test_cudnn_benchmark_flag_is_applied(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    Trainer(cfg_with(tiny_data, "train.max_steps=1", "train.cudnn_benchmark=true"), tmp_path, progress=False,
            tensorboard=False)
    assert torch.backends.cudnn.benchmark is True


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")  # dynamo's own
def test_compiled_nets_train_and_match(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Dynamo + AOTAutograd (where graphs meet our in-place spectral-norm buffers) without Inductor's C++ code
    # generation, which takes minutes on a 2-core CPU and is PyTorch's own business.
    original = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: original(self, backend="aot_eager"))
    base = train_losses(tiny_data, tmp_path / "base", steps=2)
    got = train_losses(tiny_data, tmp_path / "compiled", "train.compile=true", steps=2)
    assert got == pytest.approx(base, rel=1e-3)
    keys = ck.load(tmp_path / "compiled").nets["gen_a2b"].keys()
    assert not any("_orig_mod" in k for k in keys), "compiled nets save plain state dicts"


def _model_totals(name: str, data: Path, run: Path, *extra: str, steps: int = 3) -> dict[str, list[float]]:
    batch = ["train.batch_size=2"] if name == "drit" else []  # DRIT splits each batch into two halves
    cfg = resolve_config(name, tiny_overrides(name, *TINY_RUN, *batch, f"data.root={data}", "train.sample_every=0",
                                              f"train.max_steps={steps}", *extra))
    train = train_records(cfg, run)
    return {k: [r[k] for r in train] for k in train[0] if k.endswith("/total")}


@pytest.mark.parametrize("name", ["munit", "drit"])
def test_multimodal_models_take_the_fast_paths(name: str, tiny_data: Path, tmp_path: Path) -> None:
    base = _model_totals(name, tiny_data, tmp_path / "base")
    assert base, "the run logs its phases' total losses"
    # (fused Adam is the optimiser's business, the same for every model: tested on NICE-GAN above)
    got = _model_totals(name, tiny_data, tmp_path / "channels_last", "train.channels_last=true")
    for phase, losses in base.items():
        # NHWC convolutions sum in another order; by step 3 MUNIT's losses differ by 1.2e-4 (relative), DRIT's
        # content loss by 1.04e-3 with AVX-512 kernels (measured; under 1e-3 with AVX2 only)
        assert got[phase] == pytest.approx(losses, rel=2e-3), ("channels_last", phase)
    low = _model_totals(name, tiny_data, tmp_path / "bf16", "train.amp=bf16")
    for phase, losses in base.items():
        assert all(torch.isfinite(torch.tensor(low[phase]))), phase
        assert low[phase] == pytest.approx(losses, rel=0.05), ("bf16 follows fp32 on a short run", phase)


def test_fast_flag_is_the_measured_preset_and_explicit_flags_win(tiny_data: Path, tmp_path: Path) -> None:
    from nicegan.cli import build_parser
    from nicegan.cli.common import FAST_PRESET, fast_path_values

    parser = build_parser()
    assert FAST_PRESET == {"fused_adam": True, "compile": True}, "docs/performance.md documents this measured choice"
    fast = {"train.fused_adam": True, "train.compile": True}
    for cmd in (["train", "--fast"], ["resume", "RUN", "--fast"]):
        assert fast_path_values(parser.parse_args(cmd)) == fast
    assert fast_path_values(parser.parse_args(["train", "--fast", "--channels-last", "--amp", "bf16"])) == {
        **fast, "train.channels_last": True, "train.amp": "bf16"}
    assert fast_path_values(parser.parse_args(["train", "--fast", "--no-compile"])) == {
        "train.fused_adam": True, "train.compile": False}
    assert fast_path_values(parser.parse_args(["train", "--fast", "--checkpoint-activations"])) == {
        "train.fused_adam": True, "train.checkpoint_activations": True}, "memory wins; the two cannot be combined"
    assert fast_path_values(parser.parse_args(["train"])) == {}
    with pytest.MonkeyPatch.context() as mp:  # no C++ compiler: --fast still works, without compile
        mp.setenv("CXX", str(tmp_path / "no-compiler"))
        assert fast_path_values(parser.parse_args(["train", "--fast"])) == {"train.fused_adam": True}
    # end to end: the run's recorded config says what --fast switched on
    from nicegan.cli import main

    args = ["train", "--data", str(tiny_data), "--run-dir", str(tmp_path / "r"), "--fast", "--no-progress",
            "--max-steps", "1", "--set", *TINY, "train.sample_every=0"]
    assert main(args) == 0
    assert ck.load(tmp_path / "r").config["train"]["fused_adam"] is True
    assert ck.load(tmp_path / "r").config["train"]["compile"] is True
