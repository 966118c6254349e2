"""Contract tests run for every registered model on a tiny config."""

from __future__ import annotations

import copy

import pytest
import torch

from nicegan.configs.schema import RunConfig
from nicegan.core.errors import ConfigError
from nicegan.models import get_model_class, list_models
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.conftest import REPO, TINY_RUN, straight_and_resumed, tiny_model, tiny_overrides


def batch(cfg: RunConfig, n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    s = cfg.model.img_size
    return {"a": torch.rand(n, 3, s, s, generator=g) * 2 - 1, "b": torch.rand(n, 3, s, s, generator=g) * 2 - 1}


@pytest.mark.parametrize("name", list_models())
def test_translate_shapes_and_range(name: str) -> None:
    model, cfg = tiny_model(name)
    model.eval()
    x = batch(cfg)["a"]
    with torch.no_grad():
        for direction in ("a2b", "b2a"):
            y = model.translate(x, direction)
            assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
            vis = model.visuals(x, direction)
            assert vis["real"] is x and vis["fake"].shape == x.shape


@pytest.mark.parametrize("name", list_models())
def test_each_phase_updates_only_its_nets(name: str) -> None:
    """Through the real training step: each phase moves exactly its own nets, logs finite named terms."""
    model, cfg = tiny_model(name)
    opts = build_optimizers(model, cfg.train)
    b = batch(cfg)
    model.train()
    seen: dict[str, dict[str, torch.Tensor]] = {}
    snapshots: dict[str, dict] = {}

    def check(phase: str, logs: dict[str, torch.Tensor]) -> None:
        # Runs before the phase's backward and step: the snapshot is the state this phase starts from.
        seen[phase] = logs
        snapshots[phase] = {k: copy.deepcopy(v.state_dict()) for k, v in model.nets.items()}

    after: dict[str, dict] = {}

    def grads(params: list[torch.nn.Parameter]) -> None:
        phase = list(seen)[-1]
        after[phase] = {k: [p.grad is not None for p in net.parameters()] for k, net in model.nets.items()}

    logs = train_step(model, opts, b, check=check, reduce_grads=grads)
    assert list(seen) == list(model.phases)
    for phase, spec in model.phases.items():
        names = list(seen[phase])
        assert names[-1] == f"{phase}/total" and len(names) > 1
        assert all(k.startswith(f"{phase}/") for k in names)
        assert all(torch.isfinite(v) and not v.requires_grad for v in seen[phase].values())
        for k in model.nets:
            assert any(after[phase][k]) == (k in spec.nets), f"{phase}: gradients on {k}"
    phases = list(model.phases)
    for i, phase in enumerate(phases):
        # What changed between this phase's start and the next phase's start (or the end of the step).
        end = snapshots[phases[i + 1]] if i + 1 < len(phases) else {k: v.state_dict() for k, v in model.nets.items()}
        for k, net in model.nets.items():
            params = dict(net.named_parameters())
            changed = [n for n in params if not torch.equal(end[k][n], snapshots[phase][k][n])]
            if k in model.phases[phase].nets:
                assert changed, f"{phase} did not update {k}"
            else:
                assert not changed, f"{phase} changed {k}: {changed[:3]}"
    assert set(logs) == {k for v in seen.values() for k in v}


@pytest.mark.parametrize("name", list_models())
def test_state_dict_round_trip_gives_identical_outputs(name: str) -> None:
    model, cfg = tiny_model(name)
    other, _ = tiny_model(name)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    other.load_state_dict(model.state_dict())
    model.eval(), other.eval()
    x = batch(cfg)["b"]
    with torch.no_grad():  # multimodal models draw their style codes from torch's generator: same seed, same codes
        torch.manual_seed(5)
        first = model.translate(x, "b2a")
        torch.manual_seed(5)
        assert torch.equal(first, other.translate(x, "b2a"))


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts_at_the_default_configuration(name: str) -> None:
    """The model card's count is the official one (specs; CoGAN's card: the 32 px RGB digits default, its official
    28 px / 1-channel counts are checked in tests/test_cogan.py; DRIT's --concat 0 in tests/test_drit.py)."""
    from nicegan.cli.models import model_info

    card = get_model_class(name).card
    assert card is not None, f"the {name} model declares no card (models/base.py ModelCard)"
    assert model_info(name)["total"] == card.parameters


@pytest.mark.parametrize("name", list_models())
def test_model_cards_are_complete_and_the_front_door_agrees(name: str) -> None:
    """Every field of the card is filled, and the README's model table names the same paper link and official
    repository (one source: the card; the table must follow it)."""
    import dataclasses

    card = get_model_class(name).card
    assert card is not None and all(getattr(card, f.name) for f in dataclasses.fields(card)), card
    row = next((line for line in (REPO / "README.md").read_text().splitlines() if line.startswith(f"| `{name}` |")),
               None)
    assert row is not None, f"README's model table has no row for {name}"
    assert card.code in row and card.paper_url in row, (card, row)


@pytest.mark.parametrize("name", list_models())
def test_exact_resume(name: str, tiny_data, tmp_path) -> None:
    """4 steps == 2 steps + resume + 2 steps, bit for bit: nets, optimizers and model extra state (pools)."""
    from nicegan.configs.schema import resolve_config

    overrides = tiny_overrides(name, *TINY_RUN, "train.max_steps=4", "train.sample_every=0", "train.log_every=2",
                               f"data.root={tiny_data}")
    cfg = resolve_config(_default_preset(name), overrides)
    a, b = straight_and_resumed(cfg, tmp_path, stop_at=2)
    for phase in a.optimizers:
        for i, st in a.optimizers[phase]["state"].items():
            assert torch.equal(st["exp_avg"], b.optimizers[phase]["state"][i]["exp_avg"]), (phase, i)
            assert torch.equal(st["exp_avg_sq"], b.optimizers[phase]["state"][i]["exp_avg_sq"]), (phase, i)
    assert a.model_extra.keys() == b.model_extra.keys()
    for key, value in a.model_extra.items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(b.model_extra[key])), key


def _default_preset(name: str) -> str:
    from nicegan.cli.models import presets_by_model

    presets = presets_by_model()[name]
    return next((p for p in presets if not p.endswith(("-digits", "-da", "-full", "-faces"))), presets[0])


@pytest.mark.parametrize("name", [n for n in list_models() if n in ("unit", "cogan")])
def test_checkpoint_restores_the_domain_adaptation_classifier(name: str, tmp_path) -> None:
    """``load_model`` (what evaluate and translate use) must restore every net ``classify`` needs."""
    from nicegan.formats import checkpoint
    from nicegan.inference import load_model
    from nicegan.models.base import ClassifierModel

    # UNIT adapts with its own DA networks (model.arch da32, no cycle term); CoGAN adds a head to its own.
    da = ("model.arch=da32", "model.cycle_weight=0", "model.kl_cycle_weight=0") if name == "unit" else ()
    model, cfg = tiny_model(name, *da, "model.cls_weight=10")
    assert isinstance(model, ClassifierModel)
    assert not isinstance(tiny_model(name)[0], ClassifierModel)  # the capability exists in DA mode only
    with torch.no_grad():  # trained weights differ from any fresh draw: perturb every parameter
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "da.pt"
    checkpoint.write(checkpoint.Checkpoint(model=name, config=cfg.to_dict(), step=1,
                                           nets={k: v.state_dict() for k, v in model.nets.items()}), path)
    torch.manual_seed(123)
    loaded, _, _ = load_model(path)
    model.eval()
    x = batch(cfg, n=3)["b"]
    with torch.no_grad():
        for dom in "ab":
            assert torch.equal(loaded.classify(x, dom), model.classify(x, dom)), dom


def test_the_model_template_runs_a_training_step() -> None:
    """models/_template.py is a working starting point: it builds, trains one step and translates."""
    from nicegan.models._template import TemplateConfig, TemplateModel

    torch.manual_seed(0)
    model = TemplateModel(TemplateConfig(**TemplateConfig.tiny))
    opts = build_optimizers(model, RunConfig().train)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    before = {k: v.clone() for k, v in model.nets["gen_a2b"].state_dict().items()}
    logs = train_step(model, opts, {"a": x, "b": x.flip(0)})
    assert {"dis/adv_a", "dis/total", "gen/cycle_b", "gen/total"} <= set(logs)
    assert any(not torch.equal(v, model.nets["gen_a2b"].state_dict()[k]) for k, v in before.items())
    assert model.translate(x, "a2b").shape == x.shape and model.translation_nets() == ("gen_a2b", "gen_b2a")
    # every hook the real models use is shown, and works
    assert set(model.visuals(x, "a2b")) == {"real", "fake", "cycle"} and model.direction_nets("b2a") == ("gen_b2a",)
    with pytest.raises(ConfigError):
        model.check_input_size(2)
    model.load_extra_state(model.extra_state())
    assert TemplateModel(TemplateConfig()).num_parameters() == TemplateModel.card.parameters
