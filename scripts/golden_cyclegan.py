"""Golden tensors and import fixtures of the official CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix).

Runs the official ``CycleGANModel`` (``models/cycle_gan_model.py``: its networks, losses, image pools, Adam and
``optimize_parameters``) imported from a checkout outside this repository, at a small configuration, and writes:

* ``OUT/small32.pt``: official initial state dicts (float32, as the seeded official build draws them), inputs,
  eval-mode outputs (float32 and float64), the loss terms of ``steps`` official iterations run in float64 from those
  weights (Python's ``random`` seeded with ``pool_seed`` right before the first iteration, so the image pools draw
  the same numbers on both sides; the draws are recorded too) and the final state dicts (float64);
* ``OUT/spread/small32.{t2,avx2}.pt``: the same official iterations re-run from the golden's own initial weights
  and inputs with 2 threads / with AVX2 kernels, as per-tensor differences from the golden (the official code's
  own numerical spread, from which the test derives its tolerances);
* ``OUT/import/``: checkpoint files exactly as the official code writes them (see ``OUT/README.md``) and
  ``expected.pt``, the official test path's translations of two real images.

    OMP_NUM_THREADS=1 python scripts/golden_cyclegan.py --official PATH --out tests/golden/cyclegan

No official file is edited: the checkout's modules are imported as they are (they need no compatibility shim on
current PyTorch); instrumentation (recording the pools' random draws) wraps ``random`` at run time.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cat2dog"
OFFICIAL_REPO = "junyanz/pytorch-CycleGAN-and-pix2pix"
#: the commit the stand-in checkout under /tmp/official/cyclegan was transcribed from (not a git work tree)
KNOWN_COMMIT = "48ced5e8e3af621acca066a70203a196ba571bed"

#: the small configuration, official option names (``--netG resnet_6blocks`` is the smallest official ResNet
#: generator; ``--netD basic`` the 70x70 PatchGAN); ``batch``, ``steps``, ``seed`` and ``pool_seed`` are the run's
CONFIG: dict[str, Any] = {
    "img_size": 32, "input_nc": 3, "output_nc": 3, "ngf": 2, "ndf": 4, "netG": "resnet_6blocks", "n_blocks": 6,
    "netD": "basic", "n_layers_D": 3, "norm": "instance", "no_dropout": True, "init_type": "normal",
    "init_gain": 0.02, "gan_mode": "lsgan", "pool_size": 2, "lambda_A": 10.0, "lambda_B": 10.0,
    "lambda_identity": 0.5, "lr": 2e-4, "beta1": 0.5, "betas": [0.5, 0.999], "weight_decay": 0.0,
    "batch": 2, "steps": 2, "seed": 3, "pool_seed": 0,
}
NETS = ("G_A", "G_B", "D_A", "D_B")
#: official options recorded in import/expected.pt (with their official names and values)
OPTION_KEYS = ("input_nc", "output_nc", "ngf", "ndf", "netG", "netD", "n_layers_D", "norm", "no_dropout", "init_type",
               "init_gain", "gan_mode", "pool_size", "lambda_A", "lambda_B", "lambda_identity", "lr", "beta1")
#: official loss attributes recorded per iteration (``loss_cycle_*`` and ``loss_idt_*`` carry their weights)
LOSSES = ("G", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B")
SPREAD_ENVS = {
    "t2": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "avx2": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
}


def import_official(checkout: Path) -> Namespace:
    """The official modules the script runs, imported from ``checkout`` (prepended to ``sys.path``)."""
    sys.path.insert(0, str(checkout))
    # importable only once the checkout is on sys.path
    from data import base_dataset
    from models import cycle_gan_model, networks, test_model
    from util import image_pool

    return Namespace(networks=networks, CycleGANModel=cycle_gan_model.CycleGANModel,
                     TestModel=test_model.TestModel, image_pool=image_pool, get_transform=base_dataset.get_transform)


def make_opt(cfg: dict[str, Any], is_train: bool, checkpoints_dir: Path, name: str) -> Namespace:
    """The option namespace the official model classes read (train.py / test.py defaults otherwise)."""
    s = cfg["img_size"]
    return Namespace(
        gpu_ids=[], isTrain=is_train, checkpoints_dir=str(checkpoints_dir), name=name, preprocess="resize_and_crop",
        load_size=s, crop_size=s, no_flip=True, input_nc=cfg["input_nc"], output_nc=cfg["output_nc"],
        ngf=cfg["ngf"], ndf=cfg["ndf"], netG=cfg["netG"], netD=cfg["netD"], n_layers_D=cfg["n_layers_D"],
        norm=cfg["norm"], no_dropout=cfg["no_dropout"], init_type=cfg["init_type"], init_gain=cfg["init_gain"],
        pool_size=cfg["pool_size"], gan_mode=cfg["gan_mode"], lr=cfg["lr"], beta1=cfg["beta1"],
        lambda_A=cfg["lambda_A"], lambda_B=cfg["lambda_B"], lambda_identity=cfg["lambda_identity"],
        direction="AtoB", lr_policy="linear", epoch_count=1, niter=100, niter_decay=100, continue_train=False,
        load_iter=0, epoch="latest", verbose=False, model_suffix="")


def load_images(off: Namespace, opt: Namespace, paths: list[Path]) -> Tensor:
    """Images through the official test transform (resize to load_size = crop_size, bicubic; no flip)."""
    transform = off.get_transform(opt, grayscale=False)
    return torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])


def pick(folder: Path, n: int) -> list[Path]:
    """The first ``n`` images of ``folder`` in name order (a fixed, reproducible choice)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < n:
        raise SystemExit(f"{folder} has {len(files)} images, {n} needed")
    return files[:n]


class DrawRecorder:
    """Stands in for the ``random`` module inside ``util.image_pool``: the same calls on ``random``, recorded."""

    def __init__(self) -> None:
        self.uniforms: list[float] = []
        self.randints: list[int] = []

    def uniform(self, a: float, b: float) -> float:
        out = random.uniform(a, b)
        self.uniforms.append(out)
        return out

    def randint(self, a: int, b: int) -> int:
        out = random.randint(a, b)
        self.randints.append(out)
        return out


def state(prefix: str, sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """``sd`` with ``prefix`` on every key, tensors detached, cloned and contiguous."""
    return {f"{prefix}{k}": v.detach().clone().contiguous() for k, v in sd.items()}


def eval_outputs(model: Any, real_a: Tensor, real_b: Tensor, tag: str) -> dict[str, Tensor]:
    """Eval-mode outputs of the four official nets on ``real_a`` / ``real_b`` (``tag``: eval32 / eval64)."""
    nets = [getattr(model, f"net{n}") for n in NETS]
    for net in nets:
        net.eval()
    with torch.no_grad():
        out = {f"{tag}.G_A": model.netG_A(real_a), f"{tag}.G_B": model.netG_B(real_b),
               f"{tag}.D_A": model.netD_A(real_b), f"{tag}.D_B": model.netD_B(real_a)}
    for net in nets:
        net.train()
    return {k: v.detach().clone() for k, v in out.items()}


def official_run(off: Namespace, cfg: dict[str, Any], real_a: Tensor, real_b: Tensor, work: Path,
                 init: dict[str, Tensor] | None = None) -> tuple[dict[str, Tensor], Any]:
    """Build the official model (seeded; or loaded with ``init``), record eval outputs, run ``steps`` official
    iterations in float64 and return (tensors, the trained official model)."""
    torch.manual_seed(cfg["seed"])
    model = off.CycleGANModel(make_opt(cfg, True, work, "golden"))
    out: dict[str, Tensor] = {}
    for n in NETS:
        net = getattr(model, f"net{n}")
        if init is not None:
            net.load_state_dict({k[len(f"init.{n}."):]: v for k, v in init.items() if k.startswith(f"init.{n}.")})
        out.update(state(f"init.{n}.", net.state_dict()))
    out.update(eval_outputs(model, real_a[0, :1], real_b[0, :1], "eval32"))  # the first image of each domain
    # float64 from here on: the conversion keeps the Parameter objects, so the official Adams still hold them
    for n in NETS:
        getattr(model, f"net{n}").double()
    model.criterionGAN.double()
    assert model.optimizer_G.param_groups[0]["params"][0] is next(model.netG_A.parameters())
    out.update(eval_outputs(model, real_a[0, :1].double(), real_b[0, :1].double(), "eval64"))

    rec = DrawRecorder()
    off.image_pool.random = rec  # the pools' draws, recorded (same calls, same generator)
    losses: dict[str, list[float]] = {k: [] for k in LOSSES}
    try:
        random.seed(cfg["pool_seed"])
        for s in range(cfg["steps"]):
            model.set_input({"A": real_a[s].double(), "B": real_b[s].double(), "A_paths": [], "B_paths": []})
            model.optimize_parameters()
            for k in LOSSES:
                losses[k].append(float(getattr(model, f"loss_{k}").detach()))
    finally:
        off.image_pool.random = random
    for k, vals in losses.items():
        out[f"train.loss_{k}"] = torch.tensor(vals, dtype=torch.float64)
    out["train.pool_uniform"] = torch.tensor(rec.uniforms, dtype=torch.float64)
    out["train.pool_randint"] = torch.tensor(rec.randints, dtype=torch.int64)
    for n in NETS:
        out.update(state(f"final.{n}.", getattr(model, f"net{n}").state_dict()))
    return out, model


def _test_model(off: Namespace, cfg: dict[str, Any], root: Path, name: str) -> Any:
    opt = make_opt(cfg, False, root, name)
    return off.TestModel(opt)


def write_import(off: Namespace, cfg: dict[str, Any], model: Any, out: Path, data: Path) -> None:
    """Checkpoint files as the official code writes them, and the official test path's translations."""
    root = out / "import"
    if root.exists():
        shutil.rmtree(root)
    for sub in ("train", "release", "release_old"):
        (root / sub).mkdir(parents=True)
    # 1. A training folder: BaseModel.save_networks('latest') of the trained model (fp32, as a real run saves it).
    for n in NETS:
        getattr(model, f"net{n}").float()
    model.save_dir = str(root / "train")
    model.save_networks("latest")
    g_a = {k: v.clone() for k, v in model.netG_A.state_dict().items()}
    # 2. A released single-direction generator: TestModel's netG holding G_A, saved by the same save_networks
    #    (the download script stores a released model as latest_net_G.pth: checkpoints/NAME/latest_net_G.pth).
    release = _test_model(off, cfg, root, "release")
    release.netG.load_state_dict(g_a)
    release.save_networks("latest")
    # 3. An old release: generators built while get_norm_layer gave InstanceNorm2d(track_running_stats=True) (the
    #    2018 revision of networks.py), so the file carries running_mean / running_var / num_batches_tracked per
    #    instance norm, filled by training-mode passes; BaseModel.load_networks deletes those keys on load.
    get_norm_layer = off.networks.get_norm_layer

    def old_norm_layer(norm_type: str = "instance") -> Any:
        if norm_type == "instance":
            return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=True)
        return get_norm_layer(norm_type)

    off.networks.get_norm_layer = old_norm_layer
    try:
        old = _test_model(off, cfg, root, "release_old")
    finally:
        off.networks.get_norm_layer = get_norm_layer
    missing, unexpected = old.netG.load_state_dict(g_a, strict=False)
    assert not unexpected and all(k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked")
                                  for k in missing), (missing, unexpected)
    opt = make_opt(cfg, False, root, "release_old")
    train_imgs = load_images(off, opt, pick(data / "trainA", 4))
    old.netG.train()
    with torch.no_grad():
        for img in train_imgs:
            old.netG(img[None])
    old.save_networks("latest")
    stats = [k for k in torch.load(root / "release_old" / "latest_net_G.pth", weights_only=True)
             if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats, "the old-release file carries no running statistics"

    # 4. The official test path (test.py --model cycle_gan): setup() loads latest_net_G_A/B, test() translates.
    test_opt = make_opt(cfg, False, root, "train")
    path_a, path_b = pick(data / "testA", 1)[0], pick(data / "testB", 1)[0]
    input_a, input_b = load_images(off, test_opt, [path_a]), load_images(off, test_opt, [path_b])
    tester = off.CycleGANModel(test_opt)
    tester.setup(test_opt)
    tester.set_input({"A": input_a, "B": input_b, "A_paths": [str(path_a)], "B_paths": [str(path_b)]})
    tester.test()
    a2b, b2a = tester.fake_B.clone(), tester.fake_A.clone()
    # --model test (single direction) on both release files must give the same a2b: the old file once patched.
    for name in ("release", "release_old"):
        single = _test_model(off, cfg, root, name)
        single.setup(make_opt(cfg, False, root, name))
        single.set_input({"A": input_a, "A_paths": [str(path_a)]})
        single.test()
        assert torch.equal(single.fake_B, a2b), f"{name}: the official test model disagrees with G_A"
    expected_cfg = {k: cfg[k] for k in OPTION_KEYS}
    expected_cfg.update({
        "model": "cycle_gan", "batch_size": cfg["batch"], "load_size": cfg["img_size"], "crop_size": cfg["img_size"],
        "preprocess": "resize_and_crop", "direction": "AtoB", "epoch": "latest", "n_blocks": cfg["n_blocks"],
        "input_a_file": f"testA/{path_a.name}", "input_b_file": f"testB/{path_b.name}",
        "files": {"train": ["latest_net_G_A.pth", "latest_net_G_B.pth", "latest_net_D_A.pth", "latest_net_D_B.pth"],
                  "release": ["latest_net_G.pth"], "release_old": ["latest_net_G.pth"]},
        "release_direction": "a2b", "release_old_stat_keys": len(stats), "torch": cfg["torch"],
        "official": {"repo": OFFICIAL_REPO, "commit": cfg["official_commit"]}})
    torch.save({"config": json.dumps(expected_cfg, sort_keys=True), "input_a": input_a, "input_b": input_b,
                "a2b": a2b, "b2a": b2a}, root / "expected.pt")


def spread_diffs(golden: dict[str, Tensor], run: dict[str, Tensor]) -> dict[str, float]:
    """Relative differences of a re-run from the golden: ||run - golden|| / ||golden|| per final tensor, and the
    largest relative difference over the iterations per loss term."""
    diff: dict[str, float] = {}
    for k, v in run.items():
        ref = golden.get(k)
        if k.startswith("final."):
            diff[k] = float((v.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-300))
        elif k.startswith("train.loss_"):
            diff[k] = float(((v - ref).abs() / ref.abs().clamp_min(1e-300)).max())
    return diff


def spread_run(off: Namespace, golden_path: Path, out_path: Path, work: Path) -> None:
    """Re-run the golden's official iterations from its own initial weights; write differences from the golden."""
    g = torch.load(golden_path, weights_only=True)
    cfg = json.loads(g["config"])
    init = {k: v for k, v in g.items() if k.startswith("init.")}
    run, _ = official_run(off, cfg, g["real_A"].float(), g["real_B"].float(), work, init)
    diff = spread_diffs(g, run)
    meta = {"kind": out_path.stem.rsplit(".", 1)[1], "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": json.dumps({**cfg, "spread": meta, "diff_keys": list(diff)}, sort_keys=True),
                "diff": torch.tensor(list(diff.values()), dtype=torch.float64)}, out_path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, required=True, help="checkout of " + OFFICIAL_REPO)
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "golden" / "cyclegan")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with trainA/trainB/testA/testB")
    ap.add_argument("--commit", default="", help="official commit to record (default: git rev-parse of --official)")
    ap.add_argument("--spread-of", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spread-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    off = import_official(args.official.resolve())
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"golden_cyclegan_{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.spread_of:  # a re-run in a child process whose environment sets the threads / ISA
            spread_run(off, args.spread_of, args.spread_out, work)
            return
        torch.set_num_threads(1)
        commit = args.commit or _git_commit(args.official) or KNOWN_COMMIT
        cfg = {**CONFIG, "official_commit": commit, "torch": torch.__version__, "dtype": "float64",
               "init_dtype": "float32", "threads": 1, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
        opt = make_opt(cfg, True, work, "golden")
        n = cfg["steps"] * cfg["batch"]
        shape = (cfg["steps"], cfg["batch"], 3, cfg["img_size"], cfg["img_size"])
        real_a = load_images(off, opt, pick(args.data / "trainA", n)).reshape(shape)
        real_b = load_images(off, opt, pick(args.data / "trainB", n)).reshape(shape)
        tensors, model = official_run(off, cfg, real_a, real_b, work)
        golden = args.out / "small32.pt"
        golden.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": json.dumps(cfg, sort_keys=True), "real_A": real_a, "real_B": real_b, **tensors},
                   golden)
        print(f"wrote {golden}: pool draws uniform {tensors['train.pool_uniform'].tolist()} "
              f"randint {tensors['train.pool_randint'].tolist()}")
        write_import(off, cfg, model, args.out, args.data)
        for kind, env in SPREAD_ENVS.items():
            target = args.out / "spread" / f"small32.{kind}.pt"
            subprocess.run([sys.executable, __file__, "--official", str(args.official), "--spread-of", str(golden),
                            "--spread-out", str(target)], check=True, env={**os.environ, **env})
            print(f"wrote {target}")
        total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
        print(f"{args.out}: {total / 1e6:.2f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _git_commit(checkout: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


if __name__ == "__main__":
    main()
