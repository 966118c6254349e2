"""Parity of UNIT's translation networks with the official code (mingyuliutw/UNIT version_02, ``COCOGANTrainer``).

Goldens: tests/golden/unit/*.pt, made by ``scripts/golden_unit.py --official PATH`` (format in the folder's README).
Everything runs in float64. Our model loads the official initial state dicts strictly (``gen`` as is; the official
``dis`` keys ``model_A.`` / ``model_B.`` become ``dis_a`` / ``dis_b``'s ``model.``), then:

* eval-mode forward outputs (translations, shared codes, reconstructions, D logit maps) to 1e-10 relative;
* the official iterations through :func:`nicegan.training.step.train_step` with the official noise replayed: every
  logged loss term and every final tensor within max(1e-4, 3 x the official code's own spread).

The noise: ours draws in ``gen.noise`` (a module), which the test replaces by one returning the recorded draws. The
official order per iteration is [D-step forward (A and B codes), G-step forward, ``forward_a2b(x_ba)`` (the b->a->b
cycle), ``forward_b2a(x_ab)`` (a->b->a)]; ours batches the two cycle re-encodings as [x_ab, x_ba], so its third draw
is the official fourth and third stacked.

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
    Spread,
    assert_state_close,
    check_present,
    golden_files,
    load,
    max_rel,
    rel,
    state,
)

METHOD = "unit"
FILES = golden_files(METHOD)
DIS = {"dis_a": "model_A.", "dis_b": "model_B."}
#: our logged gen term -> the official trainer attribute (kl_a + kl_b is compared as a sum, see below)
GEN_TERMS = {"total": "gen_total_loss", "adv_a": "gen_ad_loss_a", "adv_b": "gen_ad_loss_b",
             "recon_a": "gen_ll_loss_a", "recon_b": "gen_ll_loss_b", "cycle_a": "gen_ll_loss_aba",
             "cycle_b": "gen_ll_loss_bab", "kl_cycle_a": "gen_enc_aba_loss", "kl_cycle_b": "gen_enc_bab_loss"}


class ReplayNoise(nn.Module):
    """``mu + eps`` with the recorded ``eps`` in order (training); ``mu`` in eval mode, as ``GaussianNoise``."""

    def __init__(self, draws: list[Tensor]) -> None:
        super().__init__()
        self.draws = draws

    def forward(self, mu: Tensor) -> Tensor:
        if not self.training:
            return mu
        eps = self.draws.pop(0)
        assert eps.shape == mu.shape, (tuple(eps.shape), tuple(mu.shape))
        return mu + eps.to(mu.dtype)


def _ids(p: Path) -> str:
    return p.stem


def model_config(c: dict, **extra: object) -> UNITConfig:
    """Our config of a golden's official hyperparameters (exps/unit/*.yaml option names)."""
    hp = c["hyperparameters"]
    gen, dis = hp["gen"], hp["dis"]
    assert gen["n_gen_front_blk"] == gen["n_enc_front_blk"], "ours ties the decoder's up-sampling to the encoder"
    assert gen["input_dim_a"] == gen["input_dim_b"] == 3 and dis["name"] == "COCODis"
    return UNITConfig(img_size=c["img_size"], generator=gen["name"], ch=gen["ch"],
                      n_enc_front_blk=gen["n_enc_front_blk"], n_enc_res_blk=gen["n_enc_res_blk"],
                      n_enc_shared_blk=gen["n_enc_shared_blk"], n_gen_shared_blk=gen["n_gen_shared_blk"],
                      n_gen_res_blk=gen["n_gen_res_blk"], res_dropout=gen.get("res_dropout_ratio", 0.0),
                      dis_ch=dis["ch"], n_dis_layer=dis["n_layer"], adv_weight=hp["gan_w"],
                      recon_weight=hp["ll_direct_link_w"], cycle_weight=hp["ll_cycle_link_w"],
                      kl_weight=hp["kl_direct_link_w"], kl_cycle_weight=hp["kl_cycle_link_w"], **extra)


def dis_rename(ours: str):
    """Official ``dis`` key -> our ``dis_a``/``dis_b`` key (None for the other domain's keys)."""
    prefix = DIS[ours]
    return lambda k: "model." + k[len(prefix):] if k.startswith(prefix) else None


def load_model(path: Path, **extra: object) -> tuple[dict[str, Tensor], dict, UNIT]:
    g, c = load(path)
    model = UNIT(model_config(c, **extra)).double()
    model.nets["gen"].load_state_dict(state(g, "init.gen."))  # strict: the official keys are ours
    for ours in DIS:
        model.nets[ours].load_state_dict(state(g, "init.dis.", dis_rename(ours)))
    return g, c, model


def test_golden_files_present() -> None:
    check_present(METHOD)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_official_keys_load_strictly(path: Path) -> None:
    g, _, model = load_model(path)
    official = {k for k in g if k.startswith("init.dis.")}
    ours = {f"init.dis.{DIS[n]}{k[len('model.'):]}" for n in DIS for k in model.nets[n].state_dict()}
    assert official == ours  # every official dis key maps onto exactly one of ours


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_eval_outputs_match_official(path: Path) -> None:
    g, _, model = load_model(path)
    model.eval()
    xa, xb = g["real_A"][0].double(), g["real_B"][0].double()
    with torch.no_grad():
        ours = {"a2b": model.translate(xa, "a2b"), "b2a": model.translate(xb, "b2a"),
                "shared_a": model.encode(xa, "a"), "shared_b": model.encode(xb, "b"),
                "x_aa": model.decode(model.encode(xa, "a"), "a"), "x_bb": model.decode(model.encode(xb, "b"), "b"),
                "dis_a": model.nets["dis_a"](xa).view(-1), "dis_b": model.nets["dis_b"](xb).view(-1)}
    for name, out in ours.items():
        ref = g[f"eval.{name}"]
        assert out.shape == ref.shape, name
        assert max_rel(out, ref) <= EVAL_RTOL_F64, f"{name}: {max_rel(out, ref):.2e}"


def run_official_steps(g: dict[str, Tensor], c: dict, model: UNIT) -> list[dict[str, Tensor]]:
    """The golden's iterations through train_step, with the official noise replayed; the logs per step."""
    draws = []
    for s in range(c["steps"]):
        d = [g[f"draws.{s}.{i}"] for i in range(c["draws_per_step"])]
        draws += [d[0], d[1], torch.cat([d[3], d[2]])]  # D forward, G forward, cycles [a->b->a, b->a->b]
    model.nets["gen"].noise = ReplayNoise(draws)
    opts = build_optimizers(model, TrainConfig(lr=c["lr"], betas=tuple(c["betas"]), weight_decay=c["weight_decay"]))
    model.train()
    logs = [train_step(model, opts, {"a": g["real_A"][s].double(), "b": g["real_B"][s].double()})
            for s in range(c["steps"])]
    assert not draws, "not every recorded draw was used"
    return logs


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_training_steps_match_official(path: Path) -> None:
    g, c, model = load_model(path)
    spread = Spread(path)
    for s, logs in enumerate(run_official_steps(g, c, model)):
        checks = {"dis/total": "dis_loss", **{f"gen/{k}": v for k, v in GEN_TERMS.items()}}
        for ours, off in checks.items():
            ref, tol = g[f"train.{off}"][s], spread.tol(f"train.{off}", s)
            assert rel(logs[ours], ref) <= tol, (s, ours, float(logs[ours]), float(ref), tol)
        # The official enc_loss is the mean over both domains' codes (equal batches: the mean of ours).
        kl = (logs["gen/kl_a"] + logs["gen/kl_b"]) / 2
        assert rel(kl, g["train.gen_enc_loss"][s]) <= spread.tol("train.gen_enc_loss", s), (s, float(kl))
    gen = model.nets["gen"].state_dict()
    assert {k[len("final.gen."):] for k in g if k.startswith("final.gen.")} == set(gen)
    assert_state_close(gen, g, "final.gen.", spread, where="gen.")
    for ours in DIS:
        assert_state_close(model.nets[ours].state_dict(), g, "final.dis.", spread, dis_rename(ours), f"{ours}.")


@pytest.mark.parametrize("path", FILES[:1], ids=_ids)
def test_kl_on_the_mean_is_not_the_official_total(path: Path) -> None:
    """``kl_on: mean`` (the paper's term) is measurably off the official logs: the golden tells the forms apart."""
    g, c, model = load_model(path, kl_on="mean")
    logs = run_official_steps(g, c, model)[0]
    gap = float(g["train.gen_total_loss"][0] - logs["gen/total"])
    # Each KL term is 1 lower per code element in expectation: kl_w * 2 + kl_cycle_w * 2 = 0.4 at the yaml weights.
    hp = c["hyperparameters"]
    expected = 2 * hp["kl_direct_link_w"] + 2 * hp["kl_cycle_link_w"]
    assert abs(gap - expected) < 0.25 * expected, (gap, expected)
    assert rel(logs["gen/total"], g["train.gen_total_loss"][0]) > 10 * Spread(path).tol("train.gen_total_loss", 0)
