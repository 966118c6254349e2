"""NICE-GAN's ablation switches: each changes exactly what it names (through the real training step)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from nicegan.configs.schema import resolve_config
from nicegan.core.errors import ConfigError
from nicegan.models.nicegan import Discriminator
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.conftest import TINY_RUN, straight_and_resumed, tiny_model, tiny_overrides
from tests.test_models import batch

ENC, HEADS = Discriminator.ENCODER_KEYS, Discriminator.HEAD_KEYS
GLOBAL_HEAD = ("Dis1_0.", "Dis1_1.", "conv1.")
LOCAL_HEAD = ("Dis0_1.", "conv0.")


def _moved_per_phase(*overrides: str) -> tuple[dict[str, set[str]], dict[str, dict[str, torch.Tensor]]]:
    """Run one real training step; per phase, the names (``net.param``) of the parameters that phase changed, and
    the phase's logged terms."""
    model, cfg = tiny_model("nicegan", *overrides)
    opts = build_optimizers(model, cfg.train)
    model.train()
    starts: dict[str, dict[str, torch.Tensor]] = {}
    logs: dict[str, dict[str, torch.Tensor]] = {}

    def check(phase: str, terms: dict[str, torch.Tensor]) -> None:
        starts[phase] = {k: v.detach().clone() for k, v in model.nets.named_parameters()}
        logs[phase] = terms

    train_step(model, opts, batch(cfg), check=check)
    final = {k: v.detach().clone() for k, v in model.nets.named_parameters()}
    phases = list(model.phases)
    moved = {}
    for i, phase in enumerate(phases):
        end = starts[phases[i + 1]] if i + 1 < len(phases) else final
        moved[phase] = {k for k in final if not torch.equal(starts[phase][k], end[k])}
    return moved, logs


def _names(moved: set[str], net: str) -> set[str]:
    return {k.split(".", 1)[1] for k in moved if k.split(".", 1)[0] == net}


def _all(net: str, *overrides: str) -> set[str]:
    model, _ = tiny_model("nicegan", *overrides)
    return {k for k, _ in model.nets[net].named_parameters()}


def _part(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {k for k in names if k.startswith(prefixes)}


def test_encoder_and_head_keys_partition_the_discriminator() -> None:
    names = _all("dis_a")
    assert _part(names, ENC) | _part(names, HEADS) == names and not _part(names, ENC) & _part(names, HEADS)


@pytest.mark.parametrize("mode", ["decoupled", "generator", "both"])
def test_encoder_updates_moves_the_encoder_in_the_named_phases(mode: str) -> None:
    moved, _ = _moved_per_phase(f"model.encoder_updates={mode}")
    dis = _all("dis_a")
    enc, heads = _part(dis, ENC), _part(dis, HEADS)
    gens = {f"gen_a2b.{k}" for k in _all("gen_a2b")} | {f"gen_b2a.{k}" for k in _all("gen_b2a")}
    for net in ("dis_a", "dis_b"):
        assert _names(moved["dis"], net) == (heads if mode == "generator" else dis), (mode, net)
        assert _names(moved["gen"], net) == (set() if mode == "decoupled" else enc), (mode, net)
    assert {k for k in moved["gen"] if k.startswith("gen_")} == gens
    assert not {k for k in moved["dis"] if k.startswith("gen_")}


def test_independent_encoders_learn_with_the_generators_and_the_discriminators_only_judge() -> None:
    moved, _ = _moved_per_phase("model.encoder=independent")
    model, cfg = tiny_model("nicegan", "model.encoder=independent")
    assert set(model.nets) == {"gen_a2b", "gen_b2a", "dis_a", "dis_b", "enc_a", "enc_b"}
    for d in "ab":
        # The discriminator's own trunk is trained as a discriminator (it judges), never in the generator step.
        assert _names(moved["dis"], f"dis_{d}") == _all("dis_a", "model.encoder=independent")
        assert _names(moved["gen"], f"dis_{d}") == set()
        # Whatever an independent encoder has that receives a gradient moves, and only in the generator step.
        assert _names(moved["dis"], f"enc_{d}") == set()
        enc_moved = _names(moved["gen"], f"enc_{d}")
        assert enc_moved and enc_moved <= {k for k, _ in model.nets[f"enc_{d}"].named_parameters()}
    # Translation reads the independent encoder, not the discriminator.
    model.eval()
    x = batch(cfg)["a"]
    with torch.no_grad():
        before = model.translate(x, "a2b")
        assert torch.equal(before, model.nets["gen_a2b"](model.nets["enc_a"].encode(x)[0]))
        for p in model.nets["dis_a"].parameters():
            p.add_(0.5)
        assert torch.equal(model.translate(x, "a2b"), before)
    assert model.direction_nets("a2b") == ("enc_a", "gen_a2b") and model.inference_parts == {}


def test_residual_attention_off_is_the_plain_cam_weighting() -> None:
    model, cfg = tiny_model("nicegan", "model.residual_attention=false")
    dis = model.nets["dis_a"].eval()
    assert not hasattr(dis, "lamda") and "lamda" not in dict(dis.named_parameters())
    x = batch(cfg)["a"]
    with torch.no_grad():
        x0 = dis.model(x)
        expected = F.leaky_relu(dis.conv1x1(torch.cat([x0, x0], 1) * dis.fc.weight_orig[:, :, None, None]), 0.2)
        assert torch.equal(dis.encode(x)[0], expected)
    default, _ = tiny_model("nicegan")
    assert "lamda" in dict(default.nets["dis_a"].named_parameters())


@pytest.mark.parametrize(("heads", "frozen"), [("[cam,local]", GLOBAL_HEAD), ("[cam,global]", LOCAL_HEAD),
                                               ("[local,global]", ())])
def test_unused_heads_never_learn_and_leave_the_losses(heads: str, frozen: tuple[str, ...]) -> None:
    moved, logs = _moved_per_phase(f"model.heads={heads}")
    used = heads.strip("[]").split(",")
    assert {k.split("/")[1].rsplit("_", 1)[0] for k in logs["dis"] if k != "dis/total"} == set(used)
    dis = _all("dis_a")
    for net in ("dis_a", "dis_b"):
        assert _names(moved["dis"], net) == dis - _part(dis, frozen), (heads, net)


def test_heads_subset_changes_the_generator_loss_to_those_heads() -> None:
    """The generator's adversarial term is the sum of the used heads' LSGAN terms, nothing else."""
    model, cfg = tiny_model("nicegan", "model.heads=[local]")
    full, _ = tiny_model("nicegan")
    full.load_state_dict(model.state_dict())
    b = batch(cfg)
    torch.manual_seed(0)
    _, only_local = model.phases["gen"].loss(b)
    torch.manual_seed(0)
    _, all_heads = full.phases["gen"].loss(b)
    assert only_local["adv_a"] < all_heads["adv_a"] and torch.equal(only_local["cycle_a"], all_heads["cycle_a"])


@pytest.mark.parametrize("override", ["model.heads=[]", "model.heads=[cam,cam]", "model.heads=[patch]",
                                      "model.heads=cam", "model.encoder=shared", "model.encoder_updates=never",
                                      "model.encoder=independent model.encoder_updates=both"])
def test_bad_switch_values_are_one_line_config_errors(override: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config("digits", override.split())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("switch", ["model.encoder=independent", "model.encoder_updates=both"])
def test_ablation_variants_resume_exactly(switch: str, tiny_data, tmp_path) -> None:
    overrides = tiny_overrides("nicegan", *TINY_RUN, switch, "train.max_steps=4", "train.sample_every=0",
                               "train.log_every=2", f"data.root={tiny_data}")
    a, b = straight_and_resumed(resolve_config("nicegan-light", overrides), tmp_path, stop_at=2)
    for phase in a.optimizers:
        for i, st in a.optimizers[phase]["state"].items():
            assert torch.equal(st["exp_avg"], b.optimizers[phase]["state"][i]["exp_avg"]), (phase, i)


def test_default_config_equals_the_explicit_paper_switches() -> None:
    """The defaults are the paper's model: spelling every switch out builds the same nets and the same step."""
    model, cfg = tiny_model("nicegan")
    spelled, _ = tiny_model("nicegan", "model.encoder=reused", "model.residual_attention=true",
                            "model.heads=[cam,local,global]", "model.encoder_updates=decoupled")
    assert list(model.state_dict()) == list(spelled.state_dict())
    b = batch(cfg)
    a_logs = train_step(model.train(), build_optimizers(model, cfg.train), copy.deepcopy(b))
    b_logs = train_step(spelled.train(), build_optimizers(spelled, cfg.train), copy.deepcopy(b))
    assert all(torch.equal(a_logs[k], b_logs[k]) for k in a_logs)
