"""Golden tensors of the official UNIT networks (mingyuliutw/UNIT, branch version_02), run at a small configuration.

Usage (the checkout must be on branch version_02; it is imported, never copied)::

    OMP_NUM_THREADS=1 python scripts/golden_unit.py --official /tmp/official/UNIT \
        --out tests/golden/unit --da-out tests/golden/unit_da

``tests/golden/unit``: the NIPS translation nets (``COCOGANTrainer`` with ``COCOResGen`` / ``COCOResGen2`` +
``COCODis``, exps/unit/cat2tiger.yaml's losses); ``tests/golden/unit_da``: the domain-adaptation nets
(``COCOGANDAContextTrainer`` with ``CoVAE32x32`` + ``CoDis32x32``, exps/unit/svhn2mnist.yaml's losses). Each gets
golden files, ``spread/`` re-runs (2 threads; AVX2 kernels) and ``import/`` files written by the official trainer's
own ``save``. The format is described in each folder's README.md.

Everything runs in float64 on the CPU (``torch.set_default_dtype``): the official code creates its tensors with the
default dtype. The import fixtures are converted to float32 (what a CUDA run of the official code saves) and their
expected outputs come from the float32 official networks.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_compat import (
    DrawLog,
    DropoutLog,
    git_commit,
    install_compat,
    prefixed,
    run_spread,
    save_golden,
)

REPO = Path(__file__).resolve().parents[1]
CAT2DOG = REPO.parent / "shared" / "data" / "cat2dog"

# The small configurations: official option names, tiny widths and block counts.
TRANSLATION_GEN = {"ch": 4, "n_enc_front_blk": 3, "n_enc_res_blk": 1, "n_enc_shared_blk": 1, "n_gen_shared_blk": 1,
                   "n_gen_res_blk": 1, "n_gen_front_blk": 3, "input_dim_a": 3, "input_dim_b": 3}
TRANSLATION_DIS = {"name": "COCODis", "ch": 4, "n_layer": 4, "input_dim_a": 3, "input_dim_b": 3}
#: file -> (gen class, seed, image size, gen and dis ch); COCOResGen2 (the digits presets' generator) smaller still,
#: to keep the folder near 1.5 MB
TRANSLATION_RUNS = {"resgen": ("COCOResGen", 0, 32, 4), "resgen2": ("COCOResGen2", 1, 16, 2)}
DA_RUNS = {"da": 2}  # file -> seed
IMG_SIZE, BATCH, STEPS = 32, 2, 2
DA_BATCH = 4
DA_EVAL = 2  # rows of the eval-mode outputs
DA_SMALL = {"gen_ch": 4, "dis_ch": 4, "batch_size": DA_BATCH}


def import_official(official: Path):
    """The official ``trainers`` package of a version_02 checkout (with the run-time shims installed)."""
    install_compat()
    src = official / "src"
    if not (src / "trainers" / "cocogan_trainer_da.py").is_file():
        raise SystemExit(f"{official} is not a mingyuliutw/UNIT version_02 checkout (no src/trainers/...)")
    sys.path.insert(0, str(src))
    import trainers

    return trainers


def official_hyperparameters(official: Path, yaml_name: str) -> dict:
    """The ``hyperparameters`` block of an official experiment yaml."""
    with open(official / "exps" / "unit" / yaml_name) as fh:
        return yaml.safe_load(fh)["train"]["hyperparameters"]


def translation_hp(official: Path, gen_name: str, ch: int, size: int) -> dict:
    hp = official_hyperparameters(official, "cat2tiger.yaml")
    hp["gen"] = {"name": gen_name, **TRANSLATION_GEN, "ch": ch}
    hp["dis"] = {**TRANSLATION_DIS, "ch": ch, "n_layer": min(TRANSLATION_DIS["n_layer"], size.bit_length() - 2)}
    hp["batch_size"] = BATCH
    return hp


def da_hp(official: Path, input_dim_b: int) -> dict:
    hp = official_hyperparameters(official, "svhn2mnist.yaml")
    hp.update(DA_SMALL)
    hp["input_dim_b"] = input_dim_b
    return hp


# --- inputs -------------------------------------------------------------------------------------------------------


def cat2dog_images(split: str, n: int, size: int, skip: int = 0) -> tuple[Tensor, list[str]]:
    """``n`` images of a cat2dog split (sorted names), centre-cropped square, resized (bicubic), in [-1, 1]."""
    folder = CAT2DOG / split
    names = sorted(os.listdir(folder))[skip:skip + n]
    out = []
    for name in names:
        im = Image.open(folder / name).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        arr = np.asarray(im.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(arr).permute(2, 0, 1) * 2 - 1)
    return torch.stack(out), [f"{split}/{n}" for n in names]  # float32 (the runs use these values in float64)


def digits(domain: str, n: int, skip: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` 32 px digits of the builtin digits pair's training split (A: MNIST, B: optdigits), 1 x 32 x 32 in
    [-1, 1] (float32), and their labels."""
    from nicegan.data.digits import load_digits_pair

    src = load_digits_pair().split("train", domain)
    idx = np.arange(skip, skip + n) * 37 % len(src.images)  # spread over the classes
    x = torch.from_numpy(src.images[idx].astype(np.float32) / 255.0)[:, None] * 2 - 1
    return x, torch.from_numpy(src.labels[idx]).long()


def rgb(x: Tensor) -> Tensor:
    return x.expand(-1, 3, -1, -1).contiguous()


# --- translation nets (COCOGANTrainer) ----------------------------------------------------------------------------


def build(trainer_class, hp: dict, seed: int | None = None, dtype: torch.dtype = torch.float64):
    """An official trainer built (and, with ``seed``, initialised) in float32 as the official code runs, then
    converted to ``dtype``; the default dtype is left at ``dtype`` (the official code makes its tensors with it)."""
    torch.set_default_dtype(torch.float32)
    if seed is not None:
        torch.manual_seed(seed)
    trainer = trainer_class(hp)
    trainer.gpu = 0
    torch.set_default_dtype(dtype)
    trainer.gen.to(dtype)  # in place: the optimizers keep the same parameter objects
    trainer.dis.to(dtype)
    return trainer


def load_init(trainer, g: dict[str, Tensor]) -> None:
    """Load a golden file's ``init.gen.*`` / ``init.dis.*`` into an official trainer's nets."""
    for net in ("gen", "dis"):
        getattr(trainer, net).load_state_dict({k[len(f"init.{net}."):]: v for k, v in g.items()
                                               if k.startswith(f"init.{net}.")})


def finals(trainer) -> dict[str, Tensor]:
    return {**prefixed("final.gen.", trainer.gen.state_dict()), **prefixed("final.dis.", trainer.dis.state_dict())}


def compact(full: dict[str, Tensor]) -> dict[str, Tensor]:
    """The stored golden: initial states in float32 (exact: drawn in float32), final states rounded to float32 (the
    tests' tolerance is >= 1e-4), everything else as is."""
    out = {}
    for k, v in full.items():
        if k.startswith(("init.", "final.")) and v.is_floating_point():
            v32 = v.float()
            if k.startswith("init.") and not torch.equal(v32.double(), v.double()):
                raise RuntimeError(f"{k} is not float32-exact")
            v = v32
        out[k] = v
    return out


GEN_LOSSES = ("gen_total_loss", "gen_ad_loss_a", "gen_ad_loss_b", "gen_ll_loss_a", "gen_ll_loss_b",
              "gen_ll_loss_aba", "gen_ll_loss_bab", "gen_enc_loss", "gen_enc_aba_loss", "gen_enc_bab_loss")


def translation_steps(trainer, hp: dict, real_a: Tensor, real_b: Tensor,
                      draws: DrawLog) -> tuple[dict[str, Tensor], list[int]]:
    """The official iterations (cocogan_train.py: dis_update, then gen_update) on ``real_a[s]``, ``real_b[s]``.

    Returns the trainer's logged losses per step and the number of noise draws per step."""
    losses: dict[str, list[float]] = {k: [] for k in ("dis_loss", *GEN_LOSSES)}
    per_step = []
    with draws.active():
        for s in range(real_a.shape[0]):
            before = len(draws.drawn)
            trainer.dis_update(real_a[s], real_b[s], hp)
            trainer.gen_update(real_a[s], real_b[s], hp)
            per_step.append(len(draws.drawn) - before)
            for k in losses:
                losses[k].append(float(np.asarray(getattr(trainer, k)).reshape(-1)[0]))
    return {f"train.{k}": torch.tensor(v, dtype=torch.float64) for k, v in losses.items()}, per_step


def translation_golden(trainers, official: Path, name: str, out: Path) -> dict[str, Tensor]:
    """Write ``out/<name>.pt``; returns the full-precision losses and final states (the spread's reference)."""
    gen_name, seed, size, ch = TRANSLATION_RUNS[name]
    hp = translation_hp(official, gen_name, ch, size)
    trainer = build(trainers.COCOGANTrainer, hp, seed)
    g: dict[str, Tensor] = {**prefixed("init.gen.", trainer.gen.state_dict()),
                            **prefixed("init.dis.", trainer.dis.state_dict())}
    a, names_a = cat2dog_images("trainA", STEPS * BATCH, size)
    b, names_b = cat2dog_images("trainB", STEPS * BATCH, size)
    g["real_A"] = a.view(STEPS, BATCH, 3, size, size)
    g["real_B"] = b.view(STEPS, BATCH, 3, size, size)

    # Eval-mode outputs of the initial networks: the noise layer is the identity, no draws.
    trainer.gen.eval()
    trainer.dis.eval()
    with torch.no_grad(), DrawLog(replay=[]).active():
        xa, xb = g["real_A"][0].double(), g["real_B"][0].double()
        g["eval.a2b"], g["eval.shared_a"] = trainer.gen.forward_a2b(xa)
        g["eval.b2a"], g["eval.shared_b"] = trainer.gen.forward_b2a(xb)
        g["eval.x_aa"], _, _, g["eval.x_bb"], _ = trainer.gen(xa, xb)
        outs_a, outs_b = trainer.dis(xa, xb)
        g["eval.dis_a"], g["eval.dis_b"] = outs_a[0], outs_b[0]
    trainer.gen.train()
    trainer.dis.train()

    draws = DrawLog()
    losses, per_step = translation_steps(trainer, hp, g["real_A"].double(), g["real_B"].double(), draws)
    it = iter(draws.drawn)
    for s, n in enumerate(per_step):
        for i in range(n):
            g[f"draws.{s}.{i}"] = next(it).float()  # float32 samples (exact)
    reference = {**losses, **finals(trainer)}
    config = {"method": "unit", "trainer": "COCOGANTrainer", "official": "mingyuliutw/UNIT@version_02",
              "commit": git_commit(official), "hyperparameters": hp, "img_size": size, "batch": BATCH,
              "steps": STEPS, "seed": seed, "dtype": "float64", "lr": hp["lr"], "betas": [0.5, 0.999],
              "weight_decay": 1e-4, "draws_per_step": per_step[0], "inputs_A": names_a, "inputs_B": names_b}
    save_golden(out / f"{name}.pt", compact({**g, **reference}), config)
    print(f"wrote {out / name}.pt: d_loss {losses['train.dis_loss'].tolist()} "
          f"g_loss {losses['train.gen_total_loss'].tolist()}")
    if name == "resgen":
        translation_import(trainers, official, trainer, hp, out / "import")
    return reference


def translation_spread(trainers, official: Path, golden: Path, out: Path) -> None:
    g = torch.load(golden, weights_only=True)
    c = json.loads(g["config"])
    trainer = build(trainers.COCOGANTrainer, c["hyperparameters"])
    load_init(trainer, g)
    replay = [g[f"draws.{s}.{i}"] for s in range(c["steps"]) for i in range(c["draws_per_step"])]
    losses, _ = translation_steps(trainer, c["hyperparameters"], g["real_A"].double(), g["real_B"].double(),
                                  DrawLog(replay))
    save_golden(out, {**losses, **finals(trainer)}, {"spread_env": spread_env()})


def spread_env() -> dict[str, str]:
    env = {k: os.environ.get(k, "") for k in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    return {**env, "threads": str(torch.get_num_threads()), "capability": torch.backends.cpu.get_cpu_capability()}


def translation_import(trainers, official: Path, trainer, hp: dict, out: Path) -> None:
    """The official trainer's ``save`` of the trained nets (float32), and the official translate-one-image
    forward of a real test image with the saved generator."""
    t32 = copy.deepcopy(trainer)
    t32.gen.float()
    t32.dis.float()
    out.mkdir(parents=True, exist_ok=True)
    t32.save(str(out / "unit"), STEPS - 1)  # writes unit_gen_%08d.pkl / unit_dis_%08d.pkl of iteration STEPS
    fresh = build(trainers.COCOGANTrainer, hp, dtype=torch.float32)  # as cocogan_translate_one_image.py
    fresh.gen.load_state_dict(torch.load(out / f"unit_gen_{STEPS:08d}.pkl"))
    fresh.gen.eval()
    a, names_a = cat2dog_images("testA", 1, IMG_SIZE)
    b, names_b = cat2dog_images("testB", 1, IMG_SIZE)
    with torch.no_grad():
        a2b = fresh.gen.forward_a2b(a)[0]
        b2a = fresh.gen.forward_b2a(b)[0]
    config = {"trainer": "COCOGANTrainer", "hyperparameters": hp, "img_size": IMG_SIZE, "iterations": STEPS,
              "snapshot_prefix": "unit", "files": [f"unit_gen_{STEPS:08d}.pkl", f"unit_dis_{STEPS:08d}.pkl"],
              "dtype": "float32", "inputs": names_a + names_b, "commit": git_commit(official)}
    save_golden(out / "expected.pt", {"input_a": a, "input_b": b, "a2b": a2b, "b2a": b2a}, config)
    torch.set_default_dtype(torch.float64)
    print(f"wrote {out}")


# --- domain-adaptation nets (COCOGANDAContextTrainer) -------------------------------------------------------------

DIS_LOSSES = ("dis_total_loss", "dis_ad_true_loss", "dis_ad_fake_loss_a", "dis_cls_loss", "dis_feature_loss_a",
              "dis_feature_loss_b", "dis_cls_acc")
DA_GEN_LOSSES = ("gen_total_loss", "gen_ad_loss", "gen_ll_loss_a", "gen_ll_loss_b", "gen_enc_loss")
DROPOUTS = 4  # dropout layers per D pass with dropout
DA_CALLS = 6  # D passes with dropout per iteration (see the README)


def da_steps(trainer, hp: dict, real_a: Tensor, labels_a: Tensor, real_b: Tensor, draws: DrawLog,
             masks: DropoutLog) -> dict[str, Tensor]:
    """The official iterations (cocogan_train_domain_adaptation.py: dis.train(), dis_update, gen_update).

    The classify_a pass of dis_update is given the dropout masks of the real pass's A rows (what the toolkit's
    deviation 3(b) shares); every other mask is a fresh draw."""
    losses: dict[str, list[float]] = {k: [] for k in (*DIS_LOSSES, *DA_GEN_LOSSES)}
    classify_a = trainer.dis.classify_a
    n = real_a.shape[1]

    def classify_a_with_real_masks(x: Tensor) -> Tensor:
        if not masks.replaying:
            first = masks.masks[start:start + DROPOUTS]
            masks.forced = [m[:n].clone() for m in first]
        return classify_a(x)

    trainer.dis.classify_a = classify_a_with_real_masks
    try:
        with draws.active(), masks.active():
            for s in range(real_a.shape[0]):
                start = len(masks.masks)
                trainer.dis.train()
                trainer.dis_update(real_a[s], labels_a[s], real_b[s], hp)
                trainer.gen_update(real_a[s], real_b[s], hp)
                if len(masks.masks) - start != DA_CALLS * DROPOUTS:
                    raise RuntimeError("unexpected number of dropout calls")
                for k in losses:
                    losses[k].append(float(np.asarray(getattr(trainer, k)).reshape(-1)[0]))
    finally:
        del trainer.dis.classify_a
    return {f"train.{k}": torch.tensor(v, dtype=torch.float64) for k, v in losses.items()}


def da_inputs(input_dim_b: int, steps: int, batch: int) -> tuple[Tensor, Tensor, Tensor]:
    a, labels = digits("A", steps * batch)
    b, _ = digits("B", steps * batch)
    b = rgb(b) if input_dim_b == 3 else b
    return (rgb(a).view(steps, batch, 3, 32, 32), labels.view(steps, batch),
            b.reshape(steps, batch, input_dim_b, 32, 32))


def da_eval(trainer, xa: Tensor, xb: Tensor) -> dict[str, Tensor]:
    """Eval-mode outputs: the generator with its noise replaced by zeros (z = mu: what the toolkit's eval mode
    decodes; the official forward always samples), the D's logits, features and classifiers."""
    trainer.gen.eval()
    trainer.dis.eval()
    n = xa.shape[0]
    xy = trainer.xy[:n]
    zero = torch.zeros(2 * n, trainer.gen.g_vae.en_mu.out_channels, 1, 1)
    with torch.no_grad(), DrawLog(replay=[zero]).active():
        x_aa, x_ba, x_ab, x_bb, codes = trainer.gen(torch.cat((xa, xy), 1), torch.cat((xb, xy), 1), 0)
        logits, feat_a, feat_b = trainer.dis(xa, xb)
        out = {"x_aa": x_aa, "x_ba": x_ba, "x_ab": x_ab, "x_bb": x_bb, "mu": codes[0][0], "sd": codes[0][1],
               "dis_logits": logits, "feat_a": feat_a, "feat_b": feat_b, "cls_a": trainer.dis.classify_a(xa),
               "cls_b": trainer.dis.classify_b(xb)}
    trainer.gen.train()
    trainer.dis.train()
    return out


def build_da(trainers, hp: dict, seed: int | None = None, dtype: torch.dtype = torch.float64):
    return build(trainers.COCOGANDAContextTrainer, hp, seed, dtype)


def da_golden(trainers, official: Path, name: str, out: Path) -> dict[str, Tensor]:
    """Write ``out/<name>.pt``; returns the full-precision losses and final states (the spread's reference)."""
    seed = DA_RUNS[name]
    hp = da_hp(official, 3)
    trainer = build_da(trainers, hp, seed)
    g: dict[str, Tensor] = {**prefixed("init.gen.", trainer.gen.state_dict()),
                            **prefixed("init.dis.", trainer.dis.state_dict())}
    g["real_A"], g["labels_A"], g["real_B"] = da_inputs(3, STEPS, DA_BATCH)
    n_eval = DA_EVAL
    ev = da_eval(trainer, g["real_A"][0, :n_eval].double(), g["real_B"][0, :n_eval].double())
    g.update({f"eval.{k}": v for k, v in ev.items()})
    draws, masks = DrawLog(), DropoutLog(seed=seed)
    losses = da_steps(trainer, hp, g["real_A"].double(), g["labels_A"], g["real_B"].double(), draws, masks)
    if len(draws.drawn) != 2 * STEPS:
        raise RuntimeError("expected one latent draw per generator pass")
    for s in range(STEPS):
        g[f"draws.{s}.0"], g[f"draws.{s}.1"] = draws.drawn[2 * s].float(), draws.drawn[2 * s + 1].float()
        for i in range(DA_CALLS * DROPOUTS):
            g[f"dropout.{s}.{i}"] = masks.masks[s * DA_CALLS * DROPOUTS + i].to(torch.uint8)
    reference = {**losses, **finals(trainer)}
    config = {"method": "unit_da", "trainer": "COCOGANDAContextTrainer", "official": "mingyuliutw/UNIT@version_02",
              "commit": git_commit(official), "hyperparameters": hp, "img_size": 32, "batch": DA_BATCH,
              "steps": STEPS, "seed": seed, "dtype": "float64", "lr": 2e-4, "betas": [0.5, 0.999],
              "weight_decay": 5e-4, "eval_rows": n_eval,
              "inputs": "builtin:digits train A (MNIST) / B (optdigits), RGB-replicated"}
    save_golden(out / f"{name}.pt", compact({**g, **reference}), config)
    print(f"wrote {out / name}.pt: d_loss {losses['train.dis_total_loss'].tolist()} "
          f"g_loss {losses['train.gen_total_loss'].tolist()}")
    da_import(trainers, official, out / "import")
    return reference


def da_spread(trainers, official: Path, golden: Path, out: Path) -> None:
    g = torch.load(golden, weights_only=True)
    c = json.loads(g["config"])
    trainer = build_da(trainers, c["hyperparameters"])
    load_init(trainer, g)
    steps = c["steps"]
    draws = DrawLog([g[f"draws.{s}.{i}"] for s in range(steps) for i in range(2)])
    masks = DropoutLog(replay=[g[f"dropout.{s}.{i}"].double() for s in range(steps)
                               for i in range(DA_CALLS * DROPOUTS)])
    losses = da_steps(trainer, c["hyperparameters"], g["real_A"].double(), g["labels_A"], g["real_B"].double(),
                      draws, masks)
    save_golden(out, {**losses, **finals(trainer)}, {"spread_env": spread_env()})


def da_import(trainers, official: Path, out: Path) -> None:
    """Official svhn2mnist option values (B is 1-channel) at the small widths: STEPS official iterations, the
    trainer's ``save`` (float32), and the official outputs of the saved networks on real digits."""
    seed = 3
    hp = da_hp(official, 1)
    trainer = build_da(trainers, hp, seed)
    real_a, labels_a, real_b = da_inputs(1, STEPS, DA_BATCH)
    da_steps(trainer, hp, real_a.double(), labels_a, real_b.double(), DrawLog(), DropoutLog(seed=seed))
    t32 = copy.deepcopy(trainer)
    t32.gen.float()
    t32.dis.float()
    t32.xy = t32.xy.float()
    out.mkdir(parents=True, exist_ok=True)
    t32.save(str(out / "svhn2mnist"), -1)  # as cocogan_train_domain_adaptation.py: save(prefix, iterations=-1)
    fresh = build_da(trainers, hp, dtype=torch.float32)
    fresh.gen.load_state_dict(torch.load(out / "svhn2mnist_gen_00000000.pkl"))
    fresh.dis.load_state_dict(torch.load(out / "svhn2mnist_dis_00000000.pkl"))
    a, _ = digits("A", 1, skip=50)
    b, _ = digits("B", 1, skip=50)
    a = rgb(a)
    res = da_eval(fresh, a, b)
    expected = {"input_a": a, "input_b": b, "a2b": res["x_ab"], "b2a": res["x_ba"], "a2a": res["x_aa"],
                "b2b": res["x_bb"], "cls_a": res["cls_a"].view(1, -1), "cls_b": res["cls_b"].view(1, -1)}
    config = {"trainer": "COCOGANDAContextTrainer", "hyperparameters": hp, "img_size": 32, "iterations": STEPS,
              "snapshot_prefix": "svhn2mnist", "files": ["svhn2mnist_gen_00000000.pkl", "svhn2mnist_dis_00000000.pkl"],
              "dtype": "float32", "seed": seed, "commit": git_commit(official),
              "translation": "z = mu (the official sampling layer given zero noise), networks in eval mode",
              "inputs": "builtin:digits train A / B, index 50 * 37 mod n"}
    save_golden(out / "expected.pt", expected, config)
    torch.set_default_dtype(torch.float64)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", type=Path, required=True, help="checkout of mingyuliutw/UNIT, branch version_02")
    p.add_argument("--out", type=Path, default=REPO / "tests" / "golden" / "unit")
    p.add_argument("--da-out", type=Path, default=REPO / "tests" / "golden" / "unit_da")
    p.add_argument("--only", choices=("unit", "unit_da"), help="write one of the two folders")
    p.add_argument("--no-spread", action="store_true", help="skip the spread/ re-runs")
    p.add_argument("--spread-of", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--spread-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    trainers = import_official(args.official.resolve())
    if args.spread_of:
        runner = da_spread if args.spread_of.stem in DA_RUNS else translation_spread
        runner(trainers, args.official, args.spread_of, args.spread_out)
        return
    torch.set_num_threads(1)
    jobs = []
    if args.only in (None, "unit"):
        for name in TRANSLATION_RUNS:
            jobs.append((args.out / f"{name}.pt", translation_golden(trainers, args.official, name, args.out)))
    if args.only in (None, "unit_da"):
        for name in DA_RUNS:
            jobs.append((args.da_out / f"{name}.pt", da_golden(trainers, args.official, name, args.da_out)))
    if not args.no_spread:
        for golden, reference in jobs:
            run_spread(Path(__file__).resolve(), ["--official", str(args.official)], golden, reference,
                       golden.parent / "spread" / golden.name)


if __name__ == "__main__":
    main()
