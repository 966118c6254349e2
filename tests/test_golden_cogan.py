"""Parity of CoGAN with the official PyTorch port (mingyuliutw/CoGAN ``cogan_pytorch/``: ``CoGen28x28`` /
``CoDis28x28`` with ``MNISTEdgeCoGanTrainer`` and the domain-adaptation ``MNIST2USPSCoGanTrainer``).

Goldens: tests/golden/cogan/*.pt, made by ``scripts/golden_cogan.py --official PATH`` at small widths (README).
Everything runs in float64, with the official ``z`` of every phase replayed (ours draws it in ``CoGAN._noise``,
replaced here by the recorded draws).

Our model deviates from the port by design (cogan.py, deviations 1 and 2), so the official state dicts are
*converted* on loading, exactly for eval mode:

* images: ours lives in [-1, 1], the port in [0, 1]. The D's first convs (valid, no padding) take ``W / 2`` and
  ``b + sum(W) / 2``; the G's output convs (tanh instead of sigmoid: tanh(t / 2) = 2 sigmoid(t) - 1) take ``W / 2``
  and ``b / 2``; our images are ``2 x - 1`` of the port's.
* the port's transposed-conv biases before the affine-free BatchNorm cancel in training and are absorbed into the
  running mean for eval mode (``running_mean - bias``); our post-BN biases (``biasN``) are 0, the port has none.

Checked: strict loading of the converted weights; eval outputs (the coupled images of fixed ``z``, D logits,
features and classifiers) to 1e-10 relative; the official iterations through
:func:`nicegan.training.step.train_step`: each phase's loss terms, and after each iteration every tensor whose
parametrisation is the port's (G: trunk transposed convs, PReLUs, BatchNorm statistics with the absorbed biases
tracked; D: shared convs, PReLU, logit and classifier heads) within max(1e-4, 3 x the official code's spread).
Adam does not carry the rescaling of the first D convs and the G output convs (it steps each element by about lr
whatever its scale), and our post-BN biases learn where the port has none, so these tensors follow different
trajectories by design: before each phase the test sets them to the port's (converted) values and the post-BN
biases to 0, which makes every loss and every other tensor comparable. They are the only tensors not compared.

CoGAN's header makes no seeded-initialisation claim, so none is tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from nicegan.configs.schema import TrainConfig
from nicegan.models.cogan import CoGAN, CoGANConfig
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.golden_common import (
    EVAL_RTOL_F64,
    Spread,
    check_present,
    golden_files,
    load,
    max_rel,
    norm_rel,
    rel,
    state,
)

METHOD = "cogan"
FILES = golden_files(METHOD)
G_STAGES = 4  # dconv0..3 shared, dconv4_a/_b per domain
BN_MOMENTUM = 0.1


def _ids(p: Path) -> str:
    return p.stem


def gen_to_ours(off: dict[str, Tensor]) -> dict[str, Tensor]:
    """The port's ``CoGen28x28`` state dict in our ``CoGenerator``'s keys and parametrisation (see the docstring)."""
    out = {}
    for i in range(G_STAGES):
        out[f"trunk.dconv{i}.weight"] = off[f"dconv{i}.weight"]
        out[f"trunk.bn{i}.running_mean"] = off[f"bn{i}.running_mean"] - off[f"dconv{i}.bias"]
        out[f"trunk.bn{i}.running_var"] = off[f"bn{i}.running_var"]
        out[f"trunk.bn{i}.num_batches_tracked"] = off[f"bn{i}.num_batches_tracked"]
        out[f"trunk.bias{i}.bias"] = torch.zeros_like(off[f"dconv{i}.bias"])
        out[f"trunk.prelu{i}.weight"] = off[f"prelu{i}.weight"]
    for d in "ab":
        out[f"head_{d}.dconv4.weight"] = off[f"dconv4_{d}.weight"] / 2
        out[f"head_{d}.dconv4.bias"] = off[f"dconv4_{d}.bias"] / 2
    return out


def dis_to_ours(off: dict[str, Tensor]) -> dict[str, Tensor]:
    """The port's ``CoDis28x28`` state dict in our ``CoDiscriminator``'s keys (first convs rescaled for [-1, 1])."""
    out = {}
    for d in "ab":
        w, b = off[f"conv0_{d}.weight"], off[f"conv0_{d}.bias"]
        out[f"first_{d}.conv0.weight"] = w / 2
        out[f"first_{d}.conv0.bias"] = b + w.sum((1, 2, 3)) / 2
    names = {"conv1": "trunk.conv1", "conv2": "trunk.conv2", "prelu2": "trunk.prelu2", "conv3": "logit",
             "conv_cl": "classifier"}
    for k, v in off.items():
        layer, rest = k.split(".", 1)
        if layer in names:
            out[f"{names[layer]}.{rest}"] = v
    return out


#: tensors whose trajectory differs by design (synced from the port before each phase instead of compared)
def by_design(key: str) -> bool:
    return key.startswith(("head_", "first_", "trunk.bias"))


def load_model(path: Path) -> tuple[dict[str, Tensor], dict, CoGAN]:
    g, c = load(path)
    w, t = c["widths"], c["train"]
    da = c["trainer"] == "MNIST2USPSCoGanTrainer"
    cfg = CoGANConfig(img_size=c["img_size"], img_ch=1, z_dim=c["latent_dims"], gen_ch=w["1024"], dis_ch=w["20"],
                      dis_fc=w["500"], cls_weight=t["cls_weight"] if da else 0.0,
                      feat_weight=t["mse_weight"] if da else 0.0)
    assert cfg.dis_ch * 5 // 2 == w["50"] and cfg.gen_ch >> 3 == w["128"]
    model = CoGAN(cfg).double()
    model.nets["gen"].load_state_dict(gen_to_ours(state(g, "init.gen.")))  # strict
    model.nets["dis"].load_state_dict(dis_to_ours(state(g, "init.dis.")))
    return g, c, model


def test_golden_files_present() -> None:
    check_present(METHOD)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_eval_outputs_match_official(path: Path) -> None:
    g, c, model = load_model(path)
    model.eval()
    xa, xb = g["real_A"][0].double() * 2 - 1, g["real_B"][0].double() * 2 - 1
    with torch.no_grad():
        gen_a, gen_b = model.nets["gen"](g["eval.z"].double())
        la, lb, fa, fb = model.nets["dis"](xa, xb)
        ours = {"gen_a": (gen_a + 1) / 2, "gen_b": (gen_b + 1) / 2, "dis_logits": torch.cat([la, lb])}
        if model.cfg.cls_weight > 0:
            ours |= {"feat_a": fa[:, :, None, None], "feat_b": fb[:, :, None, None],
                     "cls_a": model.classify(xa, "a"), "cls_b": model.classify(xb, "b")}
    for name, out in ours.items():
        ref = g[f"eval.{name}"]
        assert out.shape == ref.shape, name
        assert max_rel(out, ref) <= EVAL_RTOL_F64, f"{name}: {max_rel(out, ref):.2e}"


def official_prefix(k: int, steps: int) -> str:
    """The golden's prefix of the official state after ``k`` iterations."""
    return "init" if k == 0 else "final" if k == steps else f"iter{k}"


@torch.no_grad()
def sync(model: CoGAN, converted: dict[str, Tensor], net: str, keys: tuple[str, ...]) -> None:
    """Copy the converted official tensors of ``keys`` (prefixes) into our net (the by-design tensors)."""
    params = dict(model.nets[net].named_parameters())
    for k, v in converted.items():
        if k.startswith(keys):
            params[k].copy_(v)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_training_steps_match_official(path: Path) -> None:
    g, c, model = load_model(path)
    spread, steps = Spread(path), c["steps"]
    z = [g["z"][s, phase] for s in range(steps) for phase in range(2)]  # [D step, G step] per iteration
    model._noise = lambda n, like: z.pop(0).to(like.dtype)
    k_now = [0]
    model.phases["dis"] = model.phases["dis"]._replace(after=lambda: sync(
        model, dis_to_ours(state(g, f"{official_prefix(k_now[0], steps)}.dis.")), "dis", ("first_",)))
    opts = build_optimizers(model, TrainConfig(lr=c["lr"], betas=tuple(c["betas"]), weight_decay=c["weight_decay"]))
    model.train()
    # The port's BN running means carry its transposed-conv biases: d[i] is what they add over ours (the
    # conversion of the initial state subtracts the initial biases; each train-mode G pass mixes in the current ones).
    init_gen = state(g, "init.gen.")
    d = [init_gen[f"dconv{i}.bias"] for i in range(G_STAGES)]
    for k in range(1, steps + 1):
        before = official_prefix(k - 1, steps)
        off_gen = state(g, f"{before}.gen.")
        sync(model, gen_to_ours(off_gen), "gen", ("head_", "trunk.bias"))
        sync(model, dis_to_ours(state(g, f"{before}.dis.")), "dis", ("first_",))
        k_now[0] = k
        logs = train_step(model, opts, {"a": g["real_A"][k - 1].double() * 2 - 1,
                                        "b": g["real_B"][k - 1].double() * 2 - 1,
                                        "a_label": g["labels_A"][k - 1]})
        s = k - 1
        adv = (logs["dis/adv_a"] + logs["dis/adv_b"]) / 2  # = the port's CE means over the concatenated pairs
        checks = {"dis/total": ("d_loss", logs["dis/total"]), "gen/total": ("g_loss", logs["gen/total"]),
                  "gen/adv": ("g_fake_loss", (logs["gen/adv_a"] + logs["gen/adv_b"]) / 2),
                  "dis/adv": ("true_loss", adv - g["train.fake_loss"][s])}
        if model.cfg.cls_weight > 0:
            checks |= {"dis/cls_a": ("cls_loss", logs["dis/cls_a"]), "dis/feat": ("mse_loss", logs["dis/feat"])}
        for name, (off, ours) in checks.items():
            ref, tol = g[f"train.{off}"][s], spread.tol(f"train.{off}", s)
            assert rel(ours, ref) <= tol, (s, name, float(ours), float(ref), tol)
        for i in range(G_STAGES):
            for _ in range(2):  # two train-mode G passes per iteration (D step, G step), both with these biases
                d[i] = (1 - BN_MOMENTUM) * d[i] + BN_MOMENTUM * off_gen[f"dconv{i}.bias"]
        compare_states(model, g, official_prefix(k, steps), spread, d, k)


#: our key prefix -> the port's (for the spread, measured on the port's keys)
OFFICIAL_NAMES = {"trunk.": "", "logit.": "conv3.", "classifier.": "conv_cl."}


def official_key(key: str) -> str:
    for ours, off in OFFICIAL_NAMES.items():
        if key.startswith(ours):
            return off + key[len(ours):]
    raise KeyError(key)


def compare_states(model: CoGAN, g: dict[str, Tensor], prefix: str, spread: Spread, d: list[Tensor],
                   k: int) -> None:
    """Every tensor of ours not synced by design against the port's state after ``k`` iterations."""
    off_gen = state(g, f"{prefix}.gen.")
    expected = {"gen": gen_to_ours(off_gen), "dis": dis_to_ours(state(g, f"{prefix}.dis."))}
    for i in range(G_STAGES):  # the running mean the port's would be without its biases
        expected["gen"][f"trunk.bn{i}.running_mean"] = off_gen[f"bn{i}.running_mean"] - d[i]
    worst = []
    for net, ref in expected.items():
        ours = model.nets[net].state_dict()
        assert set(ours) == set(ref), net
        for key, v in ref.items():
            if by_design(key):
                continue
            tol = spread.tol(f"final.{net}.{official_key(key)}")  # the spread is measured after the last iteration
            err = norm_rel(ours[key], v)
            worst.append((err / tol, err, tol, f"{net}.{key}"))
    ratio, err, tol, name = max(worst)
    assert ratio <= 1, f"after iteration {k}: {name}: relative error {err:.2e} > tolerance {tol:.2e}"
