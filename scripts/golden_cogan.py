"""Golden tensors of the official CoGAN PyTorch port (mingyuliutw/CoGAN, ``cogan_pytorch/``), at a small width.

Usage (the checkout is imported, never copied)::

    OMP_NUM_THREADS=1 python scripts/golden_cogan.py --official /tmp/official/CoGAN --out tests/golden/cogan

Two goldens: ``edge.pt`` (``MNISTEdgeCoGanTrainer``: digits vs their edge images, exps/mnistedge_cogan.yaml) and
``da.pt`` (``MNIST2USPSCoGanTrainer``: the domain-adaptation trainer with the source classifier and the feature
MSE, exps/mnist2usps_full_cogan.yaml), plus ``spread/`` re-runs and ``import/`` files. Format: the folder's README.

The port hard-codes its widths (G 1024-512-256-128, D 20-50-500); the script builds the official classes with the
``nn`` their module sees replaced by one whose Conv2d / ConvTranspose2d / BatchNorm2d map those channel counts to
:data:`WIDTHS` (the official forward code and layer order are untouched). Everything runs in float64 from a float32
initialisation; ``z`` is drawn per phase as the train scripts draw it (``torch.randn(batch, latent_dims)``), in
float32 and cast. Images are in [0, 1] as the port's (ToTensor): MNIST digits of the builtin digits pair and, for
``edge``, the edge images ``dilate(img, 3x3) - img`` of other digits (dataset_mnistedge.py); for ``da``, domain B is
the optdigits digits of the builtin pair (the port's USPS file is not in the repository snapshot).
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
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_compat import (
    DrawLog,
    git_commit,
    install_compat,
    prefixed,
    run_spread,
    save_golden,
)

REPO = Path(__file__).resolve().parents[1]
#: official channel count -> the small one (G: 1024 -> 32 halving; D: 20 -> 4, 50 -> 10, 500 -> 16)
WIDTHS = {1024: 32, 512: 16, 256: 8, 128: 4, 20: 4, 50: 10, 500: 16}
LATENT, BATCH, STEPS, SIZE = 8, 4, 2, 28
#: golden name -> (trainer module, trainer class, yaml, seed)
RUNS = {"edge": ("trainer_cogan_mnistedge", "MNISTEdgeCoGanTrainer", "mnistedge_cogan.yaml", 0),
        "da": ("trainer_cogan_mnist2usps", "MNIST2USPSCoGanTrainer", "mnist2usps_full_cogan.yaml", 1)}


class NarrowNN:
    """``torch.nn`` with the channel counts of Conv2d, ConvTranspose2d and BatchNorm2d mapped through ``widths``."""

    def __init__(self, widths: dict[int, int]) -> None:
        self._w = widths

    def __getattr__(self, name: str) -> object:
        return getattr(nn, name)

    def _c(self, n: int) -> int:
        return self._w.get(n, n)

    def Conv2d(self, c_in: int, c_out: int, *args: object, **kwargs: object) -> nn.Conv2d:
        return nn.Conv2d(self._c(c_in), self._c(c_out), *args, **kwargs)

    def ConvTranspose2d(self, c_in: int, c_out: int, *args: object, **kwargs: object) -> nn.ConvTranspose2d:
        return nn.ConvTranspose2d(self._c(c_in), self._c(c_out), *args, **kwargs)

    def BatchNorm2d(self, n: int, *args: object, **kwargs: object) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(self._c(n), *args, **kwargs)


def import_official(official: Path) -> dict[str, object]:
    """The port's trainer modules (shims installed; the net modules see :class:`NarrowNN`)."""
    install_compat()
    src = official / "cogan_pytorch" / "src"
    if not (src / "trainer_cogan_mnist2usps.py").is_file():
        raise SystemExit(f"{official} is not a mingyuliutw/CoGAN checkout (no cogan_pytorch/src/...)")
    sys.path.insert(0, str(src))
    import importlib

    mods = {}
    for net in ("net_cogan_mnistedge", "net_cogan_mnist2usps"):
        importlib.import_module(net).nn = NarrowNN(WIDTHS)
    for module, *_ in RUNS.values():
        mods[module] = importlib.import_module(module)
    return mods


def official_config(official: Path, yaml_name: str) -> dict:
    import yaml

    with open(official / "cogan_pytorch" / "exps" / yaml_name) as fh:
        return yaml.safe_load(fh)["train"]


def build(mods: dict, name: str, seed: int | None = None, dtype: torch.dtype = torch.float64):
    """The official trainer, initialised in float32 (with ``seed``), converted to ``dtype`` (the default dtype is
    left at ``dtype``: the port makes its label and zero tensors with it)."""
    module, cls, *_ = RUNS[name]
    torch.set_default_dtype(torch.float32)
    if seed is not None:
        torch.manual_seed(seed)
    trainer = getattr(mods[module], cls)(BATCH, LATENT)
    torch.set_default_dtype(dtype)
    trainer.gen.to(dtype)
    trainer.dis.to(dtype)
    return trainer


def states(trainer, prefix: str) -> dict[str, Tensor]:
    return {**prefixed(f"{prefix}.gen.", trainer.gen.state_dict()),
            **prefixed(f"{prefix}.dis.", trainer.dis.state_dict())}


def load_states(trainer, g: dict[str, Tensor], prefix: str) -> None:
    for net in ("gen", "dis"):
        p = f"{prefix}.{net}."
        getattr(trainer, net).load_state_dict({k[len(p):]: v for k, v in g.items() if k.startswith(p)})


# --- inputs (in [0, 1], float32) ------------------------------------------------------------------------------------


def digits(domain: str, n: int, skip: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` 28 px digits (the builtin pair's 32 px training images, 2 px border cropped) in [0, 1], and labels."""
    from nicegan.data.digits import load_digits_pair

    src = load_digits_pair().split("train", domain)
    idx = (np.arange(skip, skip + n) * 37) % len(src.images)
    x = torch.from_numpy(src.images[idx, 2:30, 2:30].astype(np.float32) / 255.0)[:, None]
    return x, torch.from_numpy(src.labels[idx]).long()


def edges(x: Tensor) -> Tensor:
    """dataset_mnistedge.py's ``cv2.dilate(img, ones(3, 3)) - img``: a 3x3 max filter minus the image."""
    return (F.max_pool2d(x.double(), 3, 1, 1) - x.double()).float()


def inputs(name: str) -> dict[str, Tensor]:
    n = STEPS * BATCH
    a, labels = digits("A", n)
    b = edges(digits("A", n, skip=n)[0]) if name == "edge" else digits("B", n)[0]
    shape = (STEPS, BATCH, 1, SIZE, SIZE)
    return {"real_A": a.view(shape), "real_B": b.view(shape), "labels_A": labels.view(STEPS, BATCH)}


# --- the official iterations ----------------------------------------------------------------------------------------


def official_steps(trainer, name: str, cfg: dict, g: dict[str, Tensor], draws: DrawLog,
                   on_step=None) -> dict[str, Tensor]:
    """The train scripts' loop body per iteration: z, dis_update, z, gen_update. Records every cross-entropy
    value and every loss given to backward (the port returns none of its losses)."""
    ce_log: list[float] = []
    bw_log: list[float] = []
    ce, backward = F.cross_entropy, torch.Tensor.backward

    def ce_rec(*args: object, **kwargs: object) -> Tensor:
        out = ce(*args, **kwargs)
        ce_log.append(float(out.detach()))
        return out

    def backward_rec(self: Tensor, *args: object, **kwargs: object) -> None:
        bw_log.append(float(self.detach()))
        return backward(self, *args, **kwargs)

    out: dict[str, list[float]] = {k: [] for k in ("d_loss", "g_loss", "true_loss", "fake_loss", "cls_loss",
                                                   "mse_loss", "g_fake_loss")}
    nn.functional.cross_entropy = ce_rec
    torch.Tensor.backward = backward_rec  # type: ignore[method-assign]
    try:
        with draws.active():
            for s in range(g["real_A"].shape[0]):
                ce_log.clear()
                bw_log.clear()
                a, b = g["real_A"][s].double(), g["real_B"][s].double()
                noise = torch.randn(BATCH, LATENT)
                if name == "da":
                    _, mse, _ = trainer.dis_update(a, g["labels_A"][s], b, noise, cfg["mse_weight"],
                                                   cfg["cls_weight"])
                    out["mse_loss"].append(float(mse.detach()))
                    out["cls_loss"].append(ce_log[2])
                else:
                    trainer.dis_update(a, b, noise)
                noise = torch.randn(BATCH, LATENT)
                trainer.gen_update(noise)
                out["true_loss"].append(ce_log[0])
                out["fake_loss"].append(ce_log[1])
                out["g_fake_loss"].append(ce_log[-1])
                out["d_loss"].append(bw_log[0])
                out["g_loss"].append(bw_log[1])
                if on_step is not None:
                    on_step(s)
    finally:
        nn.functional.cross_entropy = ce
        torch.Tensor.backward = backward  # type: ignore[method-assign]
    return {f"train.{k}": torch.tensor(v, dtype=torch.float64) for k, v in out.items() if v}


def eval_outputs(trainer, name: str, z: Tensor, a: Tensor, b: Tensor) -> dict[str, Tensor]:
    """Eval-mode outputs: the coupled images of ``z`` (BatchNorm running statistics) and the D on a real pair."""
    trainer.gen.eval()
    trainer.dis.eval()
    with torch.no_grad():
        out_a, out_b = trainer.gen(z)
        res = {"gen_a": out_a, "gen_b": out_b}
        if name == "da":
            res["dis_logits"], res["feat_a"], res["feat_b"] = trainer.dis(a, b)
            res["cls_a"], res["cls_b"] = trainer.dis.classify_a(a), trainer.dis.classify_b(b)
        else:
            res["dis_logits"] = trainer.dis(a, b)
    trainer.gen.train()
    trainer.dis.train()
    return res


def golden(mods: dict, official: Path, name: str, out: Path) -> dict[str, Tensor]:
    """Write ``out/<name>.pt``; returns the full-precision losses and final states (the spread's reference)."""
    module, cls, yaml_name, seed = RUNS[name]
    cfg = official_config(official, yaml_name)
    trainer = build(mods, name, seed)
    g: dict[str, Tensor] = {**states(trainer, "init"), **inputs(name)}
    g["eval.z"] = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(seed + 100))
    ev = eval_outputs(trainer, name, g["eval.z"].double(), g["real_A"][0].double(), g["real_B"][0].double())
    g.update({f"eval.{k}": v for k, v in ev.items()})

    def after(s: int) -> None:
        if s < STEPS - 1:
            g.update(states(trainer, f"iter{s + 1}"))

    draws = DrawLog()
    losses = official_steps(trainer, name, cfg, g, draws, after)
    g["z"] = torch.stack([d.float() for d in draws.drawn]).view(STEPS, 2, BATCH, LATENT)  # [step, phase]
    reference = {**losses, **states(trainer, "final")}
    config = {"method": "cogan", "trainer": cls, "module": module, "official": "mingyuliutw/CoGAN:cogan_pytorch",
              "commit": git_commit(official), "yaml": yaml_name, "train": cfg, "latent_dims": LATENT,
              "batch_size": BATCH, "widths": {str(k): v for k, v in WIDTHS.items()}, "img_size": SIZE,
              "steps": STEPS, "seed": seed, "dtype": "float64", "lr": 2e-4, "betas": [0.5, 0.999],
              "weight_decay": 5e-4, "bn_momentum": 0.1, "image_range": [0, 1]}
    save_golden(out / f"{name}.pt", {**g, **reference}, config)
    print(f"wrote {out / name}.pt: d_loss {losses['train.d_loss'].tolist()} g_loss {losses['train.g_loss'].tolist()}")
    write_import(mods, official, name, trainer, cfg, out / "import")
    return reference


def spread(mods: dict, golden_path: Path, out: Path) -> None:
    g = torch.load(golden_path, weights_only=True)
    c = json.loads(g["config"])
    name = golden_path.stem
    trainer = build(mods, name)
    load_states(trainer, g, "init")
    replay = [g["z"][s, p] for s in range(c["steps"]) for p in range(2)]
    losses = official_steps(trainer, name, c["train"], g, DrawLog(replay))
    env = {k: os.environ.get(k, "") for k in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    env |= {"threads": str(torch.get_num_threads()), "capability": torch.backends.cpu.get_cpu_capability()}
    save_golden(out, {**losses, **states(trainer, "final")}, {"spread_env": env})


def write_import(mods: dict, official: Path, name: str, trainer, cfg: dict, out: Path) -> None:
    """The nets after the golden's iterations as the train scripts' (commented-out) snapshot code saves them, in
    float32, and the official float32 outputs of the saved networks."""
    module, cls, yaml_name, seed = RUNS[name]
    prefix = Path(cfg["snapshot_prefix"]).name
    t32 = copy.deepcopy(trainer)
    t32.gen.float()
    t32.dis.float()
    out.mkdir(parents=True, exist_ok=True)
    iterations = STEPS - 1  # the loop counter at the save: iterations + 1 updates are done
    files = [f"{prefix}_gen_{iterations:08d}.pkl", f"{prefix}_dis_{iterations:08d}.pkl"]
    torch.save(t32.gen.state_dict(), out / files[0])
    torch.save(t32.dis.state_dict(), out / files[1])
    fresh = build(mods, name, dtype=torch.float32)
    fresh.gen.load_state_dict(torch.load(out / files[0]))
    fresh.dis.load_state_dict(torch.load(out / files[1]))
    z = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(seed + 200))
    a = digits("A", 1, skip=50)[0]
    b = edges(digits("A", 1, skip=51)[0]) if name == "edge" else digits("B", 1, skip=50)[0]
    res = eval_outputs(fresh, name, z, a, b)
    expected = {"z": z, "input_a": a * 2 - 1, "input_b": b * 2 - 1, **res}
    expected["dis_logits"] = expected["dis_logits"].view(2, 2)
    for k in ("cls_a", "cls_b"):  # the port squeezes its (1, 10, 1, 1) output to (10,)
        if k in expected:
            expected[k] = expected[k].view(1, -1)
    config = {"trainer": cls, "module": module, "yaml": yaml_name, "train": cfg, "latent_dims": LATENT,
              "batch_size": BATCH, "widths": {str(k): v for k, v in WIDTHS.items()}, "img_size": SIZE,
              "iterations_counter": iterations, "updates": STEPS, "files": files, "dtype": "float32",
              "commit": git_commit(official), "image_range_of_outputs": [0, 1],
              "note": "input_a/input_b are in [-1, 1]; the official D saw (x + 1) / 2; gen_*/dis_* are official"}
    torch.set_default_dtype(torch.float32)
    save_golden(out / ("expected.pt" if name == "edge" else f"expected_{name}.pt"), expected, config)
    torch.set_default_dtype(torch.float64)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", type=Path, required=True, help="checkout of mingyuliutw/CoGAN")
    p.add_argument("--out", type=Path, default=REPO / "tests" / "golden" / "cogan")
    p.add_argument("--no-spread", action="store_true", help="skip the spread/ re-runs")
    p.add_argument("--spread-of", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--spread-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    mods = import_official(args.official.resolve())
    if args.spread_of:
        spread(mods, args.spread_of, args.spread_out)
        return
    torch.set_num_threads(1)
    jobs = [(args.out / f"{name}.pt", golden(mods, args.official, name, args.out)) for name in RUNS]
    if not args.no_spread:
        for path, reference in jobs:
            run_spread(Path(__file__).resolve(), ["--official", str(args.official)], path, reference,
                       path.parent / "spread" / path.name)


if __name__ == "__main__":
    main()
