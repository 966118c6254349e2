"""import-official for every method: official file layouts in, run folders or bundles out, translations unchanged.

The official files here are written in each official code's save layout (file names, dict nesting, prefixes, Adam
states over the official parameter order) from our tiny models, whose state-dict keys equal the official ones (the
golden tests load the official networks' own weights strictly, which pins that). Fixtures written by the official
code itself (tests/golden/<method>/import/) are checked in tests/test_import_golden.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nicegan.cli import main
from nicegan.cli.import_official import FORMATS
from nicegan.core.errors import CheckpointError, NiceganError
from nicegan.formats.checkpoint import load as load_checkpoint
from nicegan.inference import load_model
from nicegan.training.importers import FORMAT_NAMES, import_official
from tests.conftest import tiny_model

SIZE = 32


def _adam_state(model: Any, nets: tuple[str, ...], seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """An Adam state dict over ``nets``' parameters in their (official) order, after one step on random gradients;
    also each parameter's exp_avg by qualified name."""
    params = [(f"{n}.{k}", p) for n in nets for k, p in model.nets[n].named_parameters()]
    copies = [torch.nn.Parameter(p.detach().clone()) for _, p in params]
    opt = torch.optim.Adam(copies, lr=1e-4, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed)
    for c in copies:
        c.grad = torch.randn(c.shape, generator=g)
    opt.step()
    state = opt.state_dict()
    return state, {name: state["state"][i]["exp_avg"] for i, (name, _) in enumerate(params)}


def _check_adam(run: Path, model: Any, expected: dict[str, torch.Tensor]) -> None:
    """Every expected moment sits on the parameter of the same name in the imported run's optimizers."""
    from nicegan.training.optim import build_optimizers

    ck = load_checkpoint(run)
    loaded, cfg, _ = load_model(run)
    opts = build_optimizers(loaded, cfg.train)
    name_of = {id(p): f"{n}.{k}" for n, m in loaded.nets.items() for k, p in m.named_parameters()}
    found = 0
    for key, opt in opts.items():
        ours = [name_of[id(p)] for g in opt.param_groups for p in g["params"]]
        for j, name in enumerate(ours):
            if name in expected:
                assert torch.equal(ck.optimizers[key]["state"][j]["exp_avg"], expected[name]), name
                found += 1
    assert found == len(expected)


def _same_translation(out: Path, ref: Any, directions: tuple[str, ...], style: bool = False) -> None:
    model, _, _ = load_model(out)
    model.eval()
    ref.eval()
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    for d in directions:
        with torch.no_grad():
            if style:
                s = torch.randn(2, ref.cfg.style_dim if hasattr(ref.cfg, "style_dim") else ref.cfg.nz)
                assert torch.equal(model.translate(x, d, s), ref.translate(x, d, s)), d
            else:
                assert torch.equal(model.translate(x, d), ref.translate(x, d)), d


# --- CycleGAN ---------------------------------------------------------------------------------------------------

CYCLEGAN_NETS = {"G_A": "gen_a2b", "G_B": "gen_b2a", "D_A": "dis_b", "D_B": "dis_a"}


def _cyclegan(tmp_path: Path, label: str = "latest") -> tuple[Path, Any]:
    model, _ = tiny_model("cyclegan", "model.n_blocks=2", "model.n_layers_d=2", "model.ndf=6", seed=3)
    folder = tmp_path / "cyclegan_train"
    folder.mkdir(exist_ok=True)
    for off, ours in CYCLEGAN_NETS.items():
        torch.save(model.nets[ours].state_dict(), folder / f"{label}_net_{off}.pth")
    return folder, model


def test_cyclegan_training_folder_becomes_a_run(tmp_path: Path, tiny_data: Path) -> None:
    folder, ref = _cyclegan(tmp_path)
    run = tmp_path / "run"
    report = import_official([folder], run, img_size=SIZE, data_root=str(tiny_data),
                             overrides=["train.max_steps=10", "train.batch_size=1"])
    assert report.format == "cyclegan" and report.kind == "run" and report.step == 0
    assert report.settings == {"model.ngf": 4, "model.img_ch": 3, "model.n_blocks": 2, "model.ndf": 6,
                               "model.n_layers_d": 2, "model.img_size": SIZE}
    assert any("no optimizer state" in n for n in report.notes)
    _same_translation(run, ref, ("a2b", "b2a"))
    ck = load_checkpoint(run)
    for off, ours in CYCLEGAN_NETS.items():  # official D_A judges domain B: our dis_b
        for k, v in ref.nets[ours].state_dict().items():
            assert torch.equal(ck.nets[ours][k], v), f"{off} -> {ours}.{k}"
    assert main(["-q", "resume", str(run), "--stop-at", "1", "--no-progress"]) == 0
    assert load_checkpoint(run).step == 1


def test_cyclegan_released_generator_with_old_norm_statistics_becomes_a_bundle(tmp_path: Path) -> None:
    model, _ = tiny_model("cyclegan", seed=4)
    sd = dict(model.nets["gen_a2b"].state_dict())
    # an old release: InstanceNorm layers carrying running statistics (the official loader deletes them)
    sd.update({"model.2.running_mean": torch.zeros(4), "model.2.running_var": torch.ones(4),
               "model.2.num_batches_tracked": torch.tensor(0)})
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    report = import_official([path], tmp_path / "bundle", img_size=SIZE)
    assert report.kind == "bundle" and report.directions == ("a2b",)
    assert any("dropped 3 InstanceNorm running-statistics" in n for n in report.notes)
    _same_translation(tmp_path / "bundle", model, ("a2b",))
    from nicegan import Translator

    t = Translator.load(tmp_path / "bundle")
    assert t(torch.zeros(3, SIZE, SIZE), "a2b").shape[-2:] == (SIZE, SIZE)


def test_cyclegan_dropout_generator_translates_unchanged(tmp_path: Path) -> None:
    model, _ = tiny_model("cyclegan", seed=5)
    sd = {k.replace(".conv_block.5.", ".conv_block.6."): v for k, v in model.nets["gen_a2b"].state_dict().items()}
    torch.save(sd, tmp_path / "latest_net_G.pth")
    report = import_official([tmp_path / "latest_net_G.pth"], tmp_path / "b", img_size=SIZE)
    assert any("dropout" in n for n in report.notes)
    _same_translation(tmp_path / "b", model, ("a2b",))


# --- U-GAT-IT ---------------------------------------------------------------------------------------------------

UGATIT_NETS = {"genA2B": "gen_a2b", "genB2A": "gen_b2a", "disGA": "dis_ga", "disGB": "dis_gb", "disLA": "dis_la",
               "disLB": "dis_lb"}


@pytest.mark.parametrize("light", [True, False])
def test_ugatit_params_file_becomes_a_run(tmp_path: Path, light: bool) -> None:
    ref, cfg = tiny_model("ugatit", f"model.light={str(light).lower()}", "model.n_res=2", "model.global_layers=5",
                          seed=6)
    path = tmp_path / "cat2dog_params_0012000.pt"
    torch.save({off: ref.nets[ours].state_dict() for off, ours in UGATIT_NETS.items()}, path)
    report = import_official([path], tmp_path / "run", img_size=SIZE if light else None)
    assert report.kind == "run" and report.step == 12000
    for key in ("ch", "n_res", "light", "global_layers", "local_layers", "img_size"):
        assert report.settings[f"model.{key}"] == getattr(cfg.model, key), key
    _same_translation(tmp_path / "run", ref, ("a2b", "b2a"))
    if light:  # an imported run is a run like any other: the commands take it
        from tests.conftest import write_images

        write_images(tmp_path / "imgs", 2, seed=1)
        assert main(["-q", "translate", "--checkpoint", str(tmp_path / "run"), "--input", str(tmp_path / "imgs"),
                     "--output", str(tmp_path / "out"), "--direction", "b2a", "--no-progress"]) == 0
        assert len(list((tmp_path / "out").glob("*.png"))) == 2
        assert main(["-q", "export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle")]) == 0
        _same_translation(tmp_path / "bundle", ref, ("a2b", "b2a"))
    if not light:  # the full MLP tells the training size; a contradicting --img-size is refused
        with pytest.raises(CheckpointError, match="full model trained at 32 px"):
            import_official([path], tmp_path / "other", img_size=64)


# --- MUNIT ------------------------------------------------------------------------------------------------------


def _munit(tmp_path: Path, with_dis: bool = True) -> tuple[Path, Any, dict[str, torch.Tensor]]:
    ref, _ = tiny_model("munit", "model.n_res=2", "model.dis_num_scales=2", "model.mlp_dim=12", seed=7)
    folder = tmp_path / "munit_out"
    folder.mkdir()
    gens = {d: dict(ref.nets[f"gen_{d}"].state_dict()) for d in "ab"}
    for d in "ab":  # the official AdaIN layers register running buffers that the forward pass never reads
        gens[d]["dec.model.0.model.0.model.0.norm.running_mean"] = torch.zeros(4)
        gens[d]["dec.model.0.model.0.model.0.norm.running_var"] = torch.ones(4)
        # and PyTorch 0.3 files (the released edges2shoes.pt) carry InstanceNorm statistics in the encoders
        gens[d]["enc_content.model.1.norm.running_mean"] = torch.zeros(8)
    torch.save(gens, folder / "gen_00000500.pt")
    expected: dict[str, torch.Tensor] = {}
    if with_dis:
        torch.save({d: ref.nets[f"dis_{d}"].state_dict() for d in "ab"}, folder / "dis_00000500.pt")
        gen_state, e1 = _adam_state(ref, ("gen_a", "gen_b"), 1)
        dis_state, e2 = _adam_state(ref, ("dis_a", "dis_b"), 2)
        torch.save({"gen": gen_state, "dis": dis_state}, folder / "optimizer.pt")
        expected = {**e1, **e2}
    return folder, ref, expected


def test_munit_trainer_files_become_a_run_with_adam_moments(tmp_path: Path, tiny_data: Path) -> None:
    folder, ref, expected = _munit(tmp_path)
    run = tmp_path / "run"
    report = import_official([folder], run, img_size=SIZE, data_root=str(tiny_data),
                             overrides=["train.batch_size=1", "train.max_steps=600"])
    assert report.format == "munit" and report.kind == "run" and report.step == 500
    assert report.settings["model.n_res"] == 2 and report.settings["model.dis_num_scales"] == 2
    assert report.settings["model.mlp_dim"] == 12 and report.settings["model.style_dim"] == 8
    assert any("dropped 6 AdaIN / InstanceNorm running-statistics" in n for n in report.notes)
    _same_translation(run, ref, ("a2b", "b2a"), style=True)
    _check_adam(run, ref, expected)
    assert main(["-q", "resume", str(run), "--stop-at", "501", "--no-progress"]) == 0
    ck = load_checkpoint(run)
    assert ck.step == 501 and int(ck.optimizers["gen"]["state"][0]["step"]) == 2, "Adam continues the official count"


def test_munit_released_generator_becomes_a_two_way_bundle(tmp_path: Path) -> None:
    folder, ref, _ = _munit(tmp_path, with_dis=False)
    released = tmp_path / "edges2shoes.pt"
    (folder / "gen_00000500.pt").rename(released)
    report = import_official([released], tmp_path / "bundle", img_size=SIZE)
    assert report.kind == "bundle" and report.directions == ("a2b", "b2a")
    _same_translation(tmp_path / "bundle", ref, ("a2b", "b2a"), style=True)


# --- UNIT -------------------------------------------------------------------------------------------------------


def test_unit_version_02_files_become_a_run(tmp_path: Path) -> None:
    ref, cfg = tiny_model("unit", "model.n_enc_res_blk=2", "model.n_gen_res_blk=2", "model.n_dis_layer=4", seed=8)
    gen = dict(ref.nets["gen"].state_dict())
    gen["encode_A.1.model.1.running_mean"] = torch.zeros(8)  # InstanceNorm statistics of a PyTorch < 0.4 file
    gen["encode_A.1.model.1.running_var"] = torch.ones(8)
    torch.save(gen, tmp_path / "cat2tiger_gen_00002000.pkl")
    dis = {**{f"model_A.{k[len('model.'):]}": v for k, v in ref.nets["dis_a"].state_dict().items()},
           **{f"model_B.{k[len('model.'):]}": v for k, v in ref.nets["dis_b"].state_dict().items()}}
    torch.save(dis, tmp_path / "cat2tiger_dis_00002000.pkl")
    files = [tmp_path / "cat2tiger_gen_00002000.pkl", tmp_path / "cat2tiger_dis_00002000.pkl"]
    report = import_official(files, tmp_path / "run", img_size=SIZE)
    assert report.format == "unit" and report.kind == "run" and report.step == 2000
    assert any("dropped 2 InstanceNorm" in n for n in report.notes)
    for key in ("ch", "n_enc_front_blk", "n_enc_res_blk", "n_enc_shared_blk", "n_gen_shared_blk", "n_gen_res_blk",
                "dis_ch", "n_dis_layer"):
        assert report.settings[f"model.{key}"] == getattr(cfg.model, key), key
    _same_translation(tmp_path / "run", ref, ("a2b", "b2a"))


def test_unit_da_nets_import(tmp_path: Path) -> None:
    ref, cfg = tiny_model("unit", "model.arch=da32", "model.cycle_weight=0", "model.kl_cycle_weight=0",
                          "model.cls_weight=10", seed=9)
    torch.save(ref.nets["gen"].state_dict(), tmp_path / "svhn2mnist_gen_00001000.pkl")
    torch.save(ref.nets["dis"].state_dict(), tmp_path / "svhn2mnist_dis_00001000.pkl")
    report = import_official([tmp_path], tmp_path / "run")
    assert report.kind == "run" and report.settings["model.arch"] == "da32" and report.settings["model.ch"] == 4
    model, _, _ = load_model(tmp_path / "run")
    model.eval()
    ref.eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.classify(x, "b"), ref.classify(x, "b"))
        assert torch.equal(model.translate(x, "a2b"), ref.translate(x, "a2b"))


def test_unit_master_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    sd = {"enc.model.0.conv.weight": torch.zeros(4, 3, 7, 7), "dec.model.0.conv.weight": torch.zeros(3, 4, 7, 7)}
    torch.save({"a": sd, "b": sd}, tmp_path / "gen_00010000.pt")
    with pytest.raises(CheckpointError, match="UNIT master files .* no layer shared"):
        import_official([tmp_path / "gen_00010000.pt"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- DRIT -------------------------------------------------------------------------------------------------------

DRIT_NETS = {"disA": "dis_a", "disA2": "dis_a2", "disB": "dis_b", "disB2": "dis_b2", "disContent": "dis_content",
             "enc_c": "enc_c", "enc_a": "enc_a", "gen": "gen"}


@pytest.mark.parametrize("concat", [True, False])
def test_drit_save_file_becomes_a_run_with_per_net_adam(tmp_path: Path, tiny_data: Path, concat: bool) -> None:
    ref, cfg = tiny_model("drit", f"model.concat={str(concat).lower()}", "model.nz=6", "model.dis_scale=3", seed=10)
    raw: dict[str, Any] = {off: ref.nets[ours].state_dict() for off, ours in DRIT_NETS.items()}
    expected: dict[str, torch.Tensor] = {}
    for i, (off, ours) in enumerate(DRIT_NETS.items()):
        raw[f"{off}_opt"], e = _adam_state(ref, (ours,), i)
        expected.update(e)
    raw.update({"ep": 3, "total_it": 1200})
    torch.save(raw, tmp_path / "00003.pth")
    run = tmp_path / "run"
    report = import_official([tmp_path / "00003.pth"], run, img_size=SIZE, data_root=str(tiny_data),
                             overrides=["train.max_steps=1300"])
    assert report.kind == "run" and report.step == 1200
    for key in ("concat", "nz", "ch", "attr_ch", "dis_ch", "dis_scale", "dis_layers", "content_dis_layers"):
        assert report.settings[f"model.{key}"] == getattr(cfg.model, key), key
    model, _, _ = load_model(run)
    model.eval()
    ref.eval()
    x, z = torch.rand(1, 3, SIZE, SIZE) * 2 - 1, torch.randn(1, 6)
    with torch.no_grad():
        for d in ("a2b", "b2a"):
            assert torch.equal(model.translate(x, d, z), ref.translate(x, d, z))
    _check_adam(run, ref, expected)
    if concat:
        assert main(["-q", "resume", str(run), "--stop-at", "1201", "--no-progress"]) == 0
        assert load_checkpoint(run).step == 1201


def test_drit_test_nets_alone_become_a_bundle(tmp_path: Path) -> None:
    ref, _ = tiny_model("drit", seed=11)
    nets = {k: ref.nets[k].state_dict() for k in ("enc_c", "enc_a", "gen")}
    torch.save(nets, tmp_path / "model.pth")
    report = import_official([tmp_path / "model.pth"], tmp_path / "b", img_size=SIZE)
    assert report.kind == "bundle" and report.directions == ("a2b", "b2a")
    # a file of the code before 2018-08-05: another LayerNorm (gamma/beta), which the official code no longer loads
    nets["gen"] = {k.replace("decA2.0.model.1.weight", "decA2.0.model.1.gamma"): v for k, v in nets["gen"].items()}
    torch.save(nets, tmp_path / "old.pth")
    with pytest.raises(CheckpointError, match="before 2018-08-05"):
        import_official([tmp_path / "old.pth"], tmp_path / "b2", img_size=SIZE)


# --- every format: detection and refusals ---------------------------------------------------------------------


def test_cli_lists_every_format() -> None:
    assert set(FORMATS) == set(FORMAT_NAMES)


def test_unknown_files_list_the_known_formats(tmp_path: Path, capsys) -> None:
    torch.save({"weights": {"x": torch.zeros(1)}}, tmp_path / "thing.pt")
    assert main(["import-official", str(tmp_path / "thing.pt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not the files of any known official code" in err and "cyclegan" in err and "drit" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_forced_format_says_why_it_does_not_fit(tmp_path: Path) -> None:
    folder, _ = _cyclegan(tmp_path)
    with pytest.raises(CheckpointError, match="not munit files: .*latest_net_D_A.pth is not named gen_"):
        import_official([folder], tmp_path / "o", fmt="munit")
    with pytest.raises(NiceganError, match="fmt=pix2pix is no known format"):
        import_official([folder], tmp_path / "o", fmt="pix2pix")


def test_damaged_or_foreign_weights_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    folder, ref = _cyclegan(tmp_path)
    sd = dict(ref.nets["gen_a2b"].state_dict())
    sd["model.1.bias"] = torch.full_like(sd["model.1.bias"], float("nan"))
    torch.save(sd, folder / "latest_net_G_A.pth")
    with pytest.raises(CheckpointError, match="gen_a2b.model.1.bias holds NaN"):
        import_official([folder], tmp_path / "o", img_size=SIZE)
    del sd["model.1.bias"]
    torch.save(sd, folder / "latest_net_G_A.pth")
    with pytest.raises(CheckpointError, match="lacks 'model.1.bias'"):
        import_official([folder], tmp_path / "o", img_size=SIZE)
    assert not (tmp_path / "o").exists()


def test_output_is_never_overwritten(tmp_path: Path, capsys) -> None:
    folder, _ = _cyclegan(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["import-official", str(folder), "--out", str(tmp_path / "taken"), "--img-size", "32"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_a_missing_file_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from nicegan.cli import main; rc = main(['import-official', 'nope.pth', '--out', 'o']); "
            "print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert "official checkpoint not found: nope.pth" in out.stderr


# --- CoGAN ------------------------------------------------------------------------------------------------------


def _port_layout(model: Any) -> tuple[dict, dict]:
    """Our CoGAN's nets written as the port's CoGen28x28 / CoDis28x28 would hold them (the inverse of the import's
    re-expression: [0, 1] images, sigmoid heads, a conv bias before each affine-free BatchNorm)."""
    g, d = model.nets["gen"].state_dict(), model.nets["dis"].state_dict()
    gen: dict[str, torch.Tensor] = {}
    for i in range(4):
        conv_bias = torch.linspace(-0.5, 0.5, g[f"trunk.bn{i}.running_mean"].numel())
        gen[f"dconv{i}.weight"], gen[f"dconv{i}.bias"] = g[f"trunk.dconv{i}.weight"], conv_bias
        gen[f"bn{i}.running_mean"] = g[f"trunk.bn{i}.running_mean"] + conv_bias
        gen[f"bn{i}.running_var"] = g[f"trunk.bn{i}.running_var"]
        gen[f"prelu{i}.weight"] = g[f"trunk.prelu{i}.weight"]
    for dom in "ab":
        gen[f"dconv4_{dom}.weight"] = g[f"head_{dom}.dconv4.weight"] * 2
        gen[f"dconv4_{dom}.bias"] = g[f"head_{dom}.dconv4.bias"] * 2
    dis: dict[str, torch.Tensor] = {}
    for dom in "ab":
        w = d[f"first_{dom}.conv0.weight"] * 2
        dis[f"conv0_{dom}.weight"], dis[f"conv0_{dom}.bias"] = w, d[f"first_{dom}.conv0.bias"] - w.sum((1, 2, 3)) / 2
    for to, name in (("trunk.conv1", "conv1"), ("trunk.conv2", "conv2"), ("logit", "conv3"), ("classifier", "conv_cl")):
        dis[f"{name}.weight"], dis[f"{name}.bias"] = d[f"{to}.weight"], d[f"{to}.bias"]
    dis["prelu2.weight"] = d["trunk.prelu2.weight"]
    return gen, dis


def test_cogan_port_nets_are_re_expressed_exactly(tmp_path: Path) -> None:
    ref, cfg = tiny_model("cogan", "model.img_size=28", "model.img_ch=1", "model.cls_weight=10",
                          "model.feat_weight=0.01", seed=12)
    for m in ref.nets["gen"].modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    gen, dis = _port_layout(ref)
    torch.save(gen, tmp_path / "mnist2usps_gen_00003000.pkl")
    torch.save(dis, tmp_path / "mnist2usps_dis_00003000.pkl")
    report = import_official([tmp_path], tmp_path / "run")
    assert report.format == "cogan" and report.kind == "run" and report.step == 3000
    assert report.settings["model.gen_ch"] == cfg.model.gen_ch and report.settings["model.img_ch"] == 1
    assert report.settings["model.num_classes"] == 10 and report.settings["model.img_size"] == 28
    model, _, _ = load_model(tmp_path / "run")
    model.eval()
    ref.eval()
    z, x = torch.randn(3, cfg.model.z_dim), torch.rand(3, 3, 28, 28) * 2 - 1
    with torch.no_grad():
        for a, b in zip(model.nets["gen"](z), ref.nets["gen"](z), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.classify(x, "b"), ref.classify(x, "b"), rtol=1e-5, atol=1e-5)


def test_a_legacy_pickle_file_imports(tmp_path: Path) -> None:
    """Files of PyTorch < 1.6 (the 2017-2018 releases) are legacy pickles, not zip archives: read without unpickling
    anything but tensors (a released UNIT generator alone becomes a two-way bundle)."""
    ref, _ = tiny_model("unit", seed=13)
    path = tmp_path / "cat2tiger_gen_00500000.pkl"
    torch.save(ref.nets["gen"].state_dict(), path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:1] == b"\x80", "a legacy pickle"
    report = import_official([path], tmp_path / "bundle", img_size=SIZE)
    assert report.kind == "bundle" and report.directions == ("a2b", "b2a") and report.step == 500000
    _same_translation(tmp_path / "bundle", ref, ("a2b", "b2a"))
