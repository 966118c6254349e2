"""import-official: official checkpoints (weights, Adam state, start_iter, stray thop keys) become ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nicegan.cli import main
from nicegan.core.errors import CheckpointError
from nicegan.formats.checkpoint import load as load_checkpoint
from nicegan.inference import load_model
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.training.importers.nicegan import convert_official, infer_architecture
from tests.conftest import golden_dir

NETS = {"gen2B": "gen_a2b", "gen2A": "gen_b2a", "disA": "dis_a", "disB": "dis_b"}


def _official_state_dicts(which: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Official-layout state dicts: from a golden file (key order as the official code writes it)."""
    path = golden_dir() / f"{which}.pt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    g = torch.load(path, weights_only=True)
    sds = {off: {k[len(f"final.{off}."):]: v for k, v in g.items() if k.startswith(f"final.{off}.")} for off in NETS}
    return sds, g


def _fake_official_file(tmp_path: Path, which: str = "light64", start_iter: int = 1234) -> tuple[Path, dict, dict]:
    sds, g = _official_state_dicts(which)
    # Distinct Adam moments per parameter, in the official parameters() order (state-dict order minus u/v buffers).
    expected: dict[str, float] = {}

    def adam(nets: tuple[str, ...]) -> dict:
        state, idx = {}, 0
        for off in nets:
            for k, v in sds[off].items():
                if k.endswith(("weight_u", "weight_v")):
                    continue
                state[idx] = {"step": torch.tensor(float(start_iter)), "exp_avg": torch.full_like(v, idx + 1.0),
                              "exp_avg_sq": torch.full_like(v, 1e-6 * (idx + 1))}
                expected[f"{NETS[off]}.{k}"] = idx + 1.0
                idx += 1
        return {"state": state, "param_groups": [{"lr": 5e-5, "betas": (0.5, 0.999), "eps": 1e-8,
                                                  "weight_decay": 1e-4, "amsgrad": False, "params": list(range(idx))}]}

    raw = {k: dict(v) for k, v in sds.items()}
    raw["gen2B"]["total_ops"] = torch.zeros(1, dtype=torch.float64)  # left by thop in official files
    raw["gen2B"]["UpBlock0.total_params"] = torch.zeros(1, dtype=torch.float64)
    raw["disA"]["model.0.total_ops"] = torch.zeros(1, dtype=torch.float64)
    raw.update({"G_optimizer": adam(("gen2B", "gen2A")), "D_optimizer": adam(("disA", "disB")),
                "start_iter": start_iter})
    path = tmp_path / f"official_{which}.pt"
    torch.save(raw, path)
    return path, expected, g


def test_architecture_is_read_off_the_weights() -> None:
    for which, light in (("light64", True), ("full64", False)):
        sds, g = _official_state_dicts(which)
        arch = infer_architecture(sds)
        c = json.loads(g["config"])
        assert (arch["ch"], arch["n_res"], arch["n_dis"], arch["light"]) == (c["ch"], c["n_res"], c["n_dis"], light)
        assert light or arch["img_size"] == c["img_size"]
    m = NiceGAN(NiceGANConfig(img_size=128, ch=16, n_res=3, n_dis=7, light=False))
    sds = {off: m.nets[ours].state_dict() for off, ours in NETS.items()}
    assert infer_architecture(sds) == {"ch": 16, "img_ch": 3, "n_res": 3, "n_dis": 7, "light": False,
                                       "img_size": 128}


def test_convert_maps_weights_adam_state_and_step(tmp_path: Path) -> None:
    path, expected, g = _fake_official_file(tmp_path)
    ck = convert_official(path, img_size=64)
    assert ck.step == 1234 and ck.config["model"]["img_size"] == 64
    for off, ours in NETS.items():
        for k, v in ck.nets[ours].items():
            assert torch.equal(v, g[f"final.{off}.{k}"]), f"{ours}.{k}"
        assert not any(k.endswith(("total_ops", "total_params")) for k in ck.nets[ours])
    model = NiceGAN(NiceGANConfig(**{k: v for k, v in ck.config["model"].items() if k != "name"}))
    for phase in ("gen", "dis"):
        names = [f"{n}.{k}" for n in model.phases[phase].nets for k, _ in model.nets[n].named_parameters()]
        state = ck.optimizers[phase]["state"]
        assert len(state) == len(names)
        for j, name in enumerate(names):
            assert float(state[j]["exp_avg"].flatten()[0]) == expected[name], name
            assert state[j]["exp_avg"].shape == dict(model.named_parameters())[f"nets.{name}"].shape


def test_converted_checkpoint_translates_like_the_official_networks(tmp_path: Path, capsys) -> None:
    path, _, g = _fake_official_file(tmp_path)
    out = tmp_path / "converted.pt"
    assert main(["import-official", str(path), "--out", str(out), "--img-size", "64", "--light"]) == 0
    model, cfg, step = load_model(out)
    assert step == 1234 and cfg.model.light
    sds, _ = _official_state_dicts("light64")
    ref = NiceGAN(cfg.model)
    for off, ours in NETS.items():
        ref.nets[ours].load_state_dict(sds[off])
    ref.eval()
    x = g["real_A"][0]
    with torch.no_grad():
        assert torch.equal(model.translate(x, "a2b"), ref.translate(x, "a2b"))
    assert main(["import-official", str(path), "--out", str(out)]) == 2, "never overwrites"
    assert "refusing to overwrite" in capsys.readouterr().err


def test_imported_run_can_be_resumed(tmp_path: Path, tiny_data: Path) -> None:
    path, _, _ = _fake_official_file(tmp_path, start_iter=7)
    run = tmp_path / "run"
    assert main(["-q", "import-official", str(path), "--out", str(run), "--img-size", "64", "--data", str(tiny_data),
                 "--set", "train.max_steps=100"]) == 0
    assert main(["-q", "resume", str(run), "--stop-at", "8", "--no-progress"]) == 0
    ck = load_checkpoint(run)
    assert ck.step == 8
    assert int(ck.optimizers["gen"]["state"][0]["step"]) == 8, "Adam continues from the official step count"


def test_mismatched_flags_are_refused(tmp_path: Path) -> None:
    path, _, _ = _fake_official_file(tmp_path)
    with pytest.raises(CheckpointError, match=r"holds a light model, but a full one was asked for \(light=False\)"):
        convert_official(path, light=False)
    full, _, _ = _fake_official_file(tmp_path, "full64")
    with pytest.raises(CheckpointError, match="full model trained at 64 px"):
        convert_official(full, img_size=128)
    assert convert_official(full).config["model"]["img_size"] == 64
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not an official NICE-GAN checkpoint"):
        convert_official(other)
