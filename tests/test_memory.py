"""Memory on demand (``train.checkpoint_activations``).

Activation checkpointing must not change a single bit: every parameter's gradient in every phase of a full training
step, the parameters after it and every buffer (spectral norm's ``u``/``v``, advanced once per forward, not again by
the recomputation) equal the default path's; a checkpointed run stops and resumes exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nicegan.cli import build_parser
from nicegan.cli.common import fast_path_values
from nicegan.configs.schema import resolve_config
from nicegan.models import list_models
from nicegan.nn import SpectralNormMixin
from nicegan.nn.recompute import checkpoint_blocks
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.conftest import TINY, straight_and_resumed, tiny_model

CASES = [("nicegan", ("model.light=true",)), ("nicegan", ("model.light=false",)),
         *((name, ()) for name in list_models() if name != "nicegan")]


def one_step(name: str, extra: tuple[str, ...], checkpointing: bool) -> tuple[dict, dict, int, int]:
    """Gradients per phase (recorded just before each optimizer step), the state dict after one full training step
    (two for NICE-GAN, so the second step starts from updated ``u``/``v``), the number of spectral-norm power
    iterations and the number of checkpointed blocks."""
    model, cfg = tiny_model(name, *extra)
    optimizers = build_optimizers(model, cfg.train)
    blocks = checkpoint_blocks(model.nets) if checkpointing else 0
    grads: dict[str, torch.Tensor] = {}
    for key, opt in optimizers.items():
        def record(opt: torch.optim.Optimizer, args: object, kwargs: object, key: str = key) -> None:
            n = len([k for k in grads if k.startswith(f"{key}/")])
            for i, p in enumerate(q for group in opt.param_groups for q in group["params"]):
                if p.grad is not None:
                    grads[f"{key}/{n}/{i}"] = p.grad.clone()
        opt.register_step_pre_hook(record)
    iterations = 0
    original = SpectralNormMixin._iterate

    def counted(self: SpectralNormMixin) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal iterations
        iterations += 1
        return original(self)

    g = torch.Generator().manual_seed(1)
    size = cfg.model.img_size
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SpectralNormMixin, "_iterate", counted)
        for _ in range(2 if name == "nicegan" else 1):
            batch = {k: torch.rand(2, 3, size, size, generator=g) * 2 - 1 for k in "ab"}
            torch.manual_seed(7)  # models that draw noise in their forward draw the same in both runs
            train_step(model, optimizers, batch)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return grads, state, iterations, blocks


@pytest.mark.parametrize(("name", "extra"), CASES, ids=lambda c: c if isinstance(c, str) else "-".join(c) or "tiny")
def test_checkpointed_gradients_and_state_are_bit_identical(name: str, extra: tuple[str, ...]) -> None:
    ref_grads, ref_state, ref_iters, _ = one_step(name, extra, checkpointing=False)
    grads, state, iters, blocks = one_step(name, extra, checkpointing=True)
    assert ref_grads, "gradients were recorded"
    assert set(grads) == set(ref_grads)
    bad = [k for k in ref_grads if not torch.equal(grads[k], ref_grads[k])]
    assert not bad, f"{name}: {len(bad)} of {len(ref_grads)} gradients differ, e.g. {bad[:3]}"
    assert set(state) == set(ref_state)
    bad = [k for k in ref_state if not torch.equal(state[k], ref_state[k])]
    assert not bad, f"{name}: parameters or buffers differ after the step: {bad[:5]}"
    assert iters == ref_iters, "the recomputation does not run the spectral-norm power iteration again"
    if name == "nicegan":
        assert blocks > 0 and ref_iters > 0
        assert any(k.endswith("weight_u") for k in state), "u/v buffers are part of the comparison"


def test_checkpointed_blocks_run_plainly_outside_training() -> None:
    model, _ = tiny_model("nicegan")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.eval()
    with torch.inference_mode():
        ref = model.translate(x, "a2b")
    assert checkpoint_blocks(model.nets) == checkpoint_blocks(model.nets), "idempotent"
    with torch.inference_mode():
        assert torch.equal(model.translate(x, "a2b"), ref)
    assert "forward" not in str(list(model.state_dict())), "the wrapping is not saved"


def test_checkpointed_run_resumes_exactly(tiny_data: Path, tmp_path: Path) -> None:
    cfg = resolve_config("nicegan-light", TINY + [f"data.root={tiny_data}", "train.max_steps=4",
                                                   "train.sample_every=0", "train.checkpoint_activations=true"])
    straight, _ = straight_and_resumed(cfg, tmp_path, stop_at=2)  # asserts bit-identical nets
    assert straight.config["train"]["checkpoint_activations"] is True


def test_checkpoint_activations_flag_reaches_the_config_on_train_and_resume() -> None:
    parser = build_parser()
    assert fast_path_values(parser.parse_args(["train", "--checkpoint-activations"])) == {
        "train.checkpoint_activations": True}
    assert fast_path_values(parser.parse_args(["resume", "RUN", "--checkpoint-activations"])) == {
        "train.checkpoint_activations": True}
    assert fast_path_values(parser.parse_args(["train"])) == {}
    cfg = resolve_config("nicegan-light", ["train.checkpoint_activations=true"])
    assert cfg.train.checkpoint_activations is True
