"""Parity of UNIT's domain-adaptation networks with the official code (mingyuliutw/UNIT version_02,
``COCOGANDAContextTrainer`` with ``CoVAE32x32`` + ``CoDis32x32``, exps/unit/svhn2mnist.yaml's losses).

Goldens: tests/golden/unit_da/*.pt, made by ``scripts/golden_unit.py --official PATH`` (format in the folder's
README). Everything runs in float64; both domains have 3 channels (deviation 3(a) of unit.py: the official
``input_dim_b`` is set to 3). Our nets load the official state dicts strictly, as is. Then:

* eval-mode outputs (decodes of z = mu, the code's mu and sd, D logits, features without dropout, both classifiers)
  to 1e-10 relative;
* the official iterations through :func:`nicegan.training.step.train_step`, with the official latent noise and
  dropout masks replayed: every logged loss term and every final tensor (BatchNorm running statistics included)
  within max(1e-4, 3 x the official code's own spread).

Random draws: ours samples the latent in ``gen.sample`` and drops out in ``dis.dropout0..3`` (modules the test
replaces by replaying ones). Per official iteration the D runs six passes with dropout (README): real pair,
reconstructed pair (x_aa, x_bb), translated pair (x_ba, x_ab), ``classify_a`` (given the real pass's A-row masks by
the golden script: deviation 3(b), ours reuses those features), then the G step's reconstructed and translated
pairs. Ours runs each D branch once over [real, reconstructed, translated] (D step) or [reconstructed, translated]
(G step), so each of its masks is the official rows of that branch stacked in that order.

The header of unit.py makes no seeded-initialisation claim (deviation 5), so none is tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from nicegan.configs.schema import TrainConfig
from nicegan.models.unit import UNIT, UNITConfig
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.golden_common import (
    EVAL_RTOL_F64,
    ReplayDropout,
    Spread,
    assert_state_close,
    check_present,
    golden_files,
    load,
    max_rel,
    rel,
    state,
)

METHOD = "unit_da"
FILES = golden_files(METHOD)
DROPOUT_P = (0.1, 0.3, 0.5, 0.5)
CALLS = 6  # D passes with dropout per official iteration
DIS_TERMS = {"total": "dis_total_loss", "adv_real": "dis_ad_true_loss", "adv_fake": "dis_ad_fake_loss_a",
             "cls_a": "dis_cls_loss", "feat_a": "dis_feature_loss_a", "feat_b": "dis_feature_loss_b",
             "cls_acc_a": "dis_cls_acc"}
GEN_TERMS = {"total": "gen_total_loss", "recon_a": "gen_ll_loss_a", "recon_b": "gen_ll_loss_b", "kl": "gen_enc_loss"}


class ReplaySample(nn.Module):
    """``mu + sd * eps`` with the recorded ``eps`` in order, as ``LatentSample``."""

    def __init__(self, draws: list[Tensor]) -> None:
        super().__init__()
        self.draws = draws

    def forward(self, mu: Tensor, sd: Tensor) -> Tensor:
        eps = self.draws.pop(0)
        assert eps.shape == mu.shape, (tuple(eps.shape), tuple(mu.shape))
        return mu + sd * eps.to(mu.dtype)


def _ids(p: Path) -> str:
    return p.stem


def load_model(path: Path) -> tuple[dict[str, Tensor], dict, UNIT]:
    g, c = load(path)
    hp = c["hyperparameters"]
    assert hp["input_dim_a"] == hp["input_dim_b"] == 3 and (hp["gen"], hp["dis"]) == ("CoVAE32x32", "CoDis32x32")
    cfg = UNITConfig(arch="da32", img_size=32, ch=hp["gen_ch"], dis_ch=hp["dis_ch"], adv_weight=hp["gan_w"],
                     recon_weight=hp["ll_normalized_direct_w"], kl_weight=hp["kl_normalized_direct_w"],
                     cycle_weight=0.0, kl_cycle_weight=0.0, cls_weight=hp["cls_w"], feat_weight=hp["feature_w"])
    model = UNIT(cfg).double()
    for net in ("gen", "dis"):
        model.nets[net].load_state_dict(state(g, f"init.{net}."))  # strict: the official keys are ours
    return g, c, model


def test_golden_files_present() -> None:
    check_present(METHOD)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_eval_outputs_match_official(path: Path) -> None:
    g, c, model = load_model(path)
    model.eval()
    gen, dis = model.nets["gen"], model.nets["dis"]
    n = c["eval_rows"]
    xa, xb = g["real_A"][0, :n].double(), g["real_B"][0, :n].double()
    with torch.no_grad():
        mu, sd = gen.latent(torch.cat([gen.first(xa, "a"), gen.first(xb, "b")]))
        ours = {"mu": mu, "sd": sd, "x_ab": model.translate(xa, "a2b"), "x_ba": model.translate(xb, "b2a"),
                "x_aa": model.decode(model.encode(xa, "a"), "a"), "x_bb": model.decode(model.encode(xb, "b"), "b"),
                "dis_logits": dis.logits(dis.shared(torch.cat([dis.first(xa, "a"), dis.first(xb, "b")]))),
                "feat_a": dis.features(dis.first(xa, "a")), "feat_b": dis.features(dis.first(xb, "b")),
                "cls_a": model.classify(xa, "a"), "cls_b": model.classify(xb, "b")}
    for name, out in ours.items():
        ref = g[f"eval.{name}"]
        assert out.shape == ref.shape, name
        assert max_rel(out, ref) <= EVAL_RTOL_F64, f"{name}: {max_rel(out, ref):.2e}"


def replay_masks(g: dict[str, Tensor], c: dict, dis: nn.Module) -> list[ReplayDropout]:
    """Replace the D's dropout layers by ones replaying the official masks in our call order."""
    n = c["batch"]
    layers = [ReplayDropout(p) for p in DROPOUT_P]
    for s in range(c["steps"]):
        for k, layer in enumerate(layers):
            m = [g[f"dropout.{s}.{4 * call + k}"] for call in range(CALLS)]
            # The golden gave classify_a the real pass's A-row masks (ours reads those features).
            assert torch.equal(m[3], m[0][:n])
            layer.masks += [torch.cat([m[0][:n], m[1][:n], m[2][:n]]), torch.cat([m[0][n:], m[1][n:], m[2][n:]]),
                            torch.cat([m[4][:n], m[5][:n]]), torch.cat([m[4][n:], m[5][n:]])]
    for k, layer in enumerate(layers):
        setattr(dis, f"dropout{k}", layer)
    return layers


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_training_steps_match_official(path: Path) -> None:
    g, c, model = load_model(path)
    spread = Spread(path)
    draws = [g[f"draws.{s}.{i}"] for s in range(c["steps"]) for i in range(2)]  # D step, then G step
    model.nets["gen"].sample = ReplaySample(draws)
    layers = replay_masks(g, c, model.nets["dis"])
    opts = build_optimizers(model, TrainConfig(lr=c["lr"], betas=tuple(c["betas"]), weight_decay=c["weight_decay"]))
    model.train()
    for s in range(c["steps"]):
        batch = {"a": g["real_A"][s].double(), "b": g["real_B"][s].double(), "a_label": g["labels_A"][s]}
        logs = train_step(model, opts, batch)
        checks = {**{f"dis/{k}": v for k, v in DIS_TERMS.items()}, **{f"gen/{k}": v for k, v in GEN_TERMS.items()}}
        for ours, off in checks.items():
            ref, tol = g[f"train.{off}"][s], spread.tol(f"train.{off}", s)
            assert rel(logs[ours], ref) <= tol, (s, ours, float(logs[ours]), float(ref), tol)
        adv = logs["gen/adv_recon"] + logs["gen/adv_trans"]  # the official logs their sum
        assert rel(adv, g["train.gen_ad_loss"][s]) <= spread.tol("train.gen_ad_loss", s), (s, float(adv))
    assert not draws and not any(layer.masks for layer in layers), "not every recorded draw was used"
    for net in ("gen", "dis"):
        sd = model.nets[net].state_dict()
        assert {k[len(f"final.{net}."):] for k in g if k.startswith(f"final.{net}.")} == set(sd), net
        assert_state_close(sd, g, f"final.{net}.", spread, where=f"{net}.")
