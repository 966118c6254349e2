"""``--compile`` (:mod:`nicegan.nn.compiled`): the networks compile without graph breaks or recompile storms, the
compiled run (real Inductor) follows the default path's losses over 20 steps, resumes exactly, and ``translate
--compile`` writes what the default translation writes."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch._dynamo.utils import counters

from nicegan.cli import main
from nicegan.configs.schema import TrainConfig, resolve_config
from nicegan.formats import checkpoint as ck
from nicegan.models import get_model_class, list_models
from nicegan.models.base import ClassifierModel
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.nn import compiled
from nicegan.nn.spectral import SpectralNormMixin
from nicegan.training import loop
from nicegan.training.optim import build_optimizers
from nicegan.training.runs import resume_run, start_run
from nicegan.training.step import train_step
from tests.conftest import TINY, TINY_RUN, tiny_overrides

STEPS = 20
#: Dynamo reads .grad of non-leaf tensors while it builds its graphs (its own warning, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")


def tiny_nicegan() -> tuple[NiceGAN, dict[str, torch.optim.Optimizer]]:
    torch.manual_seed(0)
    model = NiceGAN(NiceGANConfig(**get_model_class("nicegan").config_class.tiny))
    return model, build_optimizers(model, TrainConfig(lr=2e-4))


def batches(n: int, size: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [{k: torch.rand(2, 3, size, size, generator=g) * 2 - 1 for k in "ab"} for _ in range(n)]


def test_the_networks_compile_without_graph_breaks_and_keep_the_power_iteration() -> None:
    """Dynamo traces every network whole (spectral norm included) in a few graphs, and the rebound ``u``/``v``
    advance exactly as the eager in-place update does."""
    eager, eager_opt = tiny_nicegan()
    model, opt = tiny_nicegan()
    torch._dynamo.reset()
    counters.clear()
    compiled.compile_nets(model.nets.values(), torch.device("cpu"), backend="eager")
    for b in batches(3, model.cfg.img_size):
        train_step(eager, eager_opt, b)
        train_step(model, opt, b)
    assert not counters["graph_break"], f"graph breaks: {dict(counters['graph_break'])}"
    graphs = counters["stats"]["unique_graphs"]
    # grad / no grad, inputs with / without gradients: at most three kinds of call per network, never one per layer
    assert 0 < graphs <= 3 * len(model.nets), graphs
    sn = [(name, m) for name, m in model.named_modules() if isinstance(m, SpectralNormMixin)]
    ref = dict(eager.named_modules())
    for name, m in sn:
        for buf in ("weight_u", "weight_v"):
            torch.testing.assert_close(getattr(m, buf), getattr(ref[name], buf), rtol=1e-5, atol=1e-6,
                                       msg=f"{name}.{buf}")
    assert set(model.state_dict()) == set(eager.state_dict()), "state-dict keys unchanged"


@pytest.mark.parametrize("name", sorted(list_models()))
def test_every_model_trains_compiled_without_graph_breaks(name: str, tiny_data: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """One training step of each method through the loop's compile path (Dynamo, without code generation)."""
    monkeypatch.setattr(loop, "compile_nets", functools.partial(compiled.compile_nets, backend="eager"))
    labelled = issubclass(get_model_class(name), ClassifierModel)
    cfg = resolve_config({}, tiny_overrides(name, *TINY_RUN, "train.batch_size=2", "train.sample_every=0",
                                            f"data.root={'builtin:digits' if labelled else tiny_data}",
                                            "train.max_steps=1", "train.compile=true"))
    torch._dynamo.reset()
    counters.clear()
    start_run(cfg, tmp_path / "run", progress=False, tensorboard=False)
    assert not counters["graph_break"], f"graph breaks: {dict(counters['graph_break'])}"
    assert counters["stats"]["unique_graphs"] > 0, "something was compiled"


@pytest.fixture(scope="module")
def runs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default path and a compiled run (Inductor, the real code generation) of 20 tiny NICE-GAN steps."""
    root = tmp_path_factory.mktemp("compile_runs")
    out = {}
    for name, extra in (("default", []), ("compiled", ["train.compile=true"])):
        cfg = resolve_config("nicegan-light", TINY + [f"data.root={tiny_data}", "train.sample_every=0",
                                                      f"train.max_steps={STEPS}", "train.ckpt_every=10", *extra])
        start_run(cfg, root / name, progress=False, tensorboard=False)
        out[name] = root / name
    return out


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


@pytest.mark.slow  # Inductor's C++ code generation: about a minute on a 2-core CPU
def test_compiled_training_follows_the_default_path_for_20_steps(runs: dict[str, Path]) -> None:
    base, got = records(runs["default"]), records(runs["compiled"])
    assert len(base) == len(got) == STEPS
    for b, g in zip(base, got, strict=True):
        for key in ("dis/total", "gen/total"):
            assert g[key] == pytest.approx(b[key], rel=1e-4), (b["step"], key)
    a, c = ck.load(runs["default"]), ck.load(runs["compiled"])
    assert set(c.nets["gen_a2b"]) == set(a.nets["gen_a2b"]), "compiled nets save plain state dicts"
    assert ck.load(runs["compiled"]).config["train"]["compile"] is True


@pytest.mark.slow
def test_compiled_runs_resume_exactly(runs: dict[str, Path], tiny_data: Path, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """Stopped at step 10 and resumed (compiling again, from the kernel cache), the compiled run ends bit for bit
    where the straight compiled run ended."""
    cfg = resolve_config("nicegan-light", TINY + [f"data.root={tiny_data}", "train.sample_every=0",
                                                  f"train.max_steps={STEPS}", "train.ckpt_every=10",
                                                  "train.compile=true"])
    with caplog.at_level(logging.INFO, logger="nicegan"):
        start_run(cfg, tmp_path / "split", progress=False, tensorboard=False, stop_at=10)
        resume_run(tmp_path / "split", progress=False, tensorboard=False)
    assert "torch.compile: the first step compiles the networks" in caplog.text
    assert "torch.compile: the first step took" in caplog.text
    a, b = ck.load(runs["compiled"]), ck.load(tmp_path / "split")
    assert a.step == b.step == STEPS
    for net in a.nets:
        for k, v in a.nets[net].items():
            assert torch.equal(v, b.nets[net][k]), f"{net}.{k}"
    assert [r["gen/total"] for r in records(tmp_path / "split")] == [r["gen/total"] for r in records(runs["compiled"])]


def test_translate_compile_writes_what_the_default_writes(runs: dict[str, Path], tiny_data: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    # Dynamo + AOTAutograd on the whole translation; Inductor's code generation is covered by the training tests
    monkeypatch.setattr(compiled, "compile_translation",
                        functools.partial(compiled.compile_translation, backend="aot_eager"))
    outs = {}
    for name, extra in (("plain", []), ("compiled", ["--compile"])):
        outs[name] = tmp_path / name
        code = main(["translate", "--checkpoint", str(runs["default"]), "--input", str(tiny_data / "testA"),
                     "--output", str(outs[name]), "--direction", "a2b", "--no-progress", *extra])
        assert code == 0, capsys.readouterr().err
    assert "the first batch of each input size compiles" in capsys.readouterr().err
    files = sorted(p.name for p in outs["plain"].glob("*.png"))
    assert files and files == sorted(p.name for p in outs["compiled"].glob("*.png"))
    for f in files:
        a = np.asarray(Image.open(outs["plain"] / f), dtype=np.int16)
        b = np.asarray(Image.open(outs["compiled"] / f), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, f


def test_no_cpu_compiler_is_one_line_before_any_step(tiny_data: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from nicegan.core.errors import ConfigError
    from nicegan.training.loop import Trainer

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert compiled.cpu_compiler() is None
    cfg = resolve_config("nicegan-light", TINY + [f"data.root={tiny_data}", "train.max_steps=1",
                                                  "train.compile=true"])
    with pytest.raises(ConfigError, match=r"needs a C\+\+ compiler") as e:
        Trainer(cfg, tmp_path / "run", progress=False, tensorboard=False)
    assert e.value.option == "compile" and "\n" not in str(e.value)
    compiled.check_compilable(torch.device("cpu"), backend="aot_eager")  # no C++ needed there
