"""Golden tensors and import fixtures of the official U-GAT-IT (znxlwm/UGATIT-pytorch), light and full.

Runs the official ``UGATIT`` trainer class (``UGATIT.py``: ``build_model`` with its networks, losses and Adams,
then ``train``, ``save`` and ``load``) imported from a checkout outside this repository, at a small configuration
per variant, and writes:

* ``OUT/{light32,full24}.pt``: official initial state dicts (float32, as the seeded official ``build_model`` draws
  them), inputs, eval-mode outputs (float32 and float64), every loss term of ``steps`` official iterations run in
  float64 from those weights, and the final state dicts (float64);
* ``OUT/spread/NAME.{t2,avx2}.pt``: the same official iterations re-run from the golden's own initial weights and
  inputs with 2 threads / with AVX2 kernels, as differences from the golden (the official code's own spread);
* ``OUT/import/{light,full}/cat2dog_params_0000002.pt``: the file ``UGATIT.save`` writes after those iterations
  (weights cast back to float32, as a real run saves them) and ``OUT/import/expected_{light,full}.pt``: the official
  test path's translations of two real images with that file.

    OMP_NUM_THREADS=1 python scripts/golden_ugatit.py --official PATH --out tests/golden/ugatit

Run-time shims (no official file is edited, no maths changed): ``cv2`` and ``scipy.misc`` stubs where missing
(``utils.py`` imports them for image I/O, which is not run); ``.next()`` on the batch iterators the trainer reads
(its Python-2 ``iterator.next()``), fed with fixed batches instead of the random-crop loaders; ``Discriminator`` in
the trainer's namespace maps the hard-coded depths 7 (global) and 5 (local) to the small configuration's; the
loss terms are read from the trainer's frame when it calls ``genA2B.apply(Rho_clipper)`` after each G step.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import types
from argparse import Namespace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cat2dog"
OFFICIAL_REPO = "znxlwm/UGATIT-pytorch"
DATASET = "cat2dog"

#: small configurations (official option names; ``n_layers_global`` / ``n_layers_local`` replace build_model's
#: hard-coded Discriminator depths 7 and 5); the rest of the options are the official defaults, except
#: ``decay_flag`` off (no LR decay inside the two iterations) and ``device`` cpu
CONFIGS: dict[str, dict[str, Any]] = {
    "light32": {"light": True, "img_size": 32, "ch": 3, "n_res": 1, "n_layers_global": 4, "n_layers_local": 3,
                "batch_size": 2, "iteration": 2, "seed": 0},
    "full24": {"light": False, "img_size": 24, "ch": 2, "n_res": 2, "n_layers_global": 5, "n_layers_local": 3,
               "batch_size": 1, "iteration": 2, "seed": 1},
}
COMMON: dict[str, Any] = {
    "dataset": DATASET, "img_ch": 3, "lr": 1e-4, "weight_decay": 1e-4, "betas": [0.5, 0.999], "adv_weight": 1,
    "cycle_weight": 10, "identity_weight": 10, "cam_weight": 1000, "decay_flag": False, "n_dis": 6,
}
#: main.py options recorded in import/expected_*.pt (official names and values)
OPTION_KEYS = ("light", "dataset", "iteration", "batch_size", "decay_flag", "lr", "weight_decay", "adv_weight",
               "cycle_weight", "identity_weight", "cam_weight", "ch", "n_res", "n_dis", "img_size", "img_ch")
NETS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
#: the official loss terms (local variables of UGATIT.train), recorded per iteration
TERMS = tuple(
    [f"D_ad{cam}_loss_{k}{d}" for d in "AB" for k in "GL" for cam in ("", "_cam")]
    + ["D_loss_A", "D_loss_B", "Discriminator_loss"]
    + [f"G_ad{cam}_loss_{k}{d}" for d in "AB" for k in "GL" for cam in ("", "_cam")]
    + [f"G_{t}_loss_{d}" for d in "AB" for t in ("recon", "identity", "cam")]
    + ["G_loss_A", "G_loss_B", "Generator_loss"])
SPREAD_ENVS = {
    "t2": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "avx2": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
}


def import_official(checkout: Path) -> Namespace:
    """The official modules, imported from ``checkout`` (prepended to ``sys.path``), with the import shims."""
    try:
        importlib.import_module("cv2")
    except ImportError:
        stub = types.ModuleType("cv2")  # utils.py imports cv2 for sample images, which are never written here
        sys.modules["cv2"] = stub
    try:  # utils.py also does ``from scipy import misc`` (image I/O of the TF-era helpers, unused here)
        importlib.import_module("scipy.misc")
    except ImportError:
        misc = types.ModuleType("scipy.misc")
        scipy = sys.modules.get("scipy") or types.ModuleType("scipy")
        scipy.misc = misc  # type: ignore[attr-defined]
        sys.modules.setdefault("scipy", scipy)
        sys.modules["scipy.misc"] = misc
    sys.path.insert(0, str(checkout))
    trainer = importlib.import_module("UGATIT")
    return Namespace(trainer=trainer, networks=importlib.import_module("networks"),
                     dataset=importlib.import_module("dataset"))


class _FeedIter:
    """Iterator with the Python-2 ``next()`` the official trainer calls."""

    def __init__(self, batches: list[tuple[Tensor, Tensor]]) -> None:
        self._it = iter(batches)

    def next(self) -> tuple[Tensor, Tensor]:
        return next(self._it)

    __next__ = next


class Feed:
    """Stands in for a training DataLoader: fixed batches, in order."""

    def __init__(self, images: Tensor) -> None:
        self.batches = [(b, torch.zeros(b.shape[0], dtype=torch.long)) for b in images]

    def __iter__(self) -> _FeedIter:
        return _FeedIter(self.batches)


def make_args(cfg: dict[str, Any], result_dir: Path) -> Namespace:
    """The argument namespace of main.py for this configuration."""
    return Namespace(
        phase="train", light=cfg["light"], dataset=cfg["dataset"], iteration=cfg["iteration"],
        batch_size=cfg["batch_size"], print_freq=10**9, save_freq=10**9, decay_flag=cfg["decay_flag"],
        lr=cfg["lr"], weight_decay=cfg["weight_decay"], adv_weight=cfg["adv_weight"],
        cycle_weight=cfg["cycle_weight"], identity_weight=cfg["identity_weight"], cam_weight=cfg["cam_weight"],
        ch=cfg["ch"], n_res=cfg["n_res"], n_dis=cfg["n_dis"], img_size=cfg["img_size"], img_ch=cfg["img_ch"],
        result_dir=str(result_dir), device="cpu", benchmark_flag=False, resume=False)


def pick(folder: Path, n: int) -> list[Path]:
    """The first ``n`` images of ``folder`` in name order (a fixed, reproducible choice)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < n:
        raise SystemExit(f"{folder} has {len(files)} images, {n} needed")
    return files[:n]


def make_workdir(work: Path, cfg: dict[str, Any], data: Path) -> dict[str, list[Path]]:
    """``work/dataset/<name>/{trainA,trainB,testA,testB}`` linking the chosen images (build_model reads them)."""
    n = cfg["iteration"] * cfg["batch_size"]
    chosen = {"trainA": pick(data / "trainA", n), "trainB": pick(data / "trainB", n),
              "testA": pick(data / "testA", 1), "testB": pick(data / "testB", 1)}
    for split, files in chosen.items():
        folder = work / "dataset" / cfg["dataset"] / split
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            (folder / f.name).symlink_to(f)
    for sub in ("model", "img", "test"):  # what main.py's check_args creates
        (work / "results" / cfg["dataset"] / sub).mkdir(parents=True, exist_ok=True)
    return chosen


def build(off: Namespace, cfg: dict[str, Any], work: Path) -> Any:
    """The official trainer after ``build_model`` (seeded), with the Discriminator depths of ``cfg``."""
    depth = {7: cfg["n_layers_global"], 5: cfg["n_layers_local"]}

    def discriminator(input_nc: int, ndf: int = 64, n_layers: int = 5) -> Any:
        return off.networks.Discriminator(input_nc=input_nc, ndf=ndf, n_layers=depth[n_layers])

    off.trainer.Discriminator = discriminator
    cwd = Path.cwd()
    os.chdir(work)  # build_model reads dataset/<name>/... relative to the working directory
    try:
        gan = off.trainer.UGATIT(make_args(cfg, work / "results"))
        torch.manual_seed(cfg["seed"])
        gan.build_model()
    finally:
        os.chdir(cwd)
    return gan


def load_split(off: Namespace, gan: Any, folder: Path) -> Tensor:
    """All images of ``folder`` through the official loader and test transform (resize to img_size, bilinear)."""
    ds = off.dataset.ImageFolder(str(folder), gan.testA.transform)
    return torch.stack([ds[i][0] for i in range(len(ds))])


def state(prefix: str, sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """``sd`` with ``prefix`` on every key, tensors detached, cloned and contiguous."""
    return {f"{prefix}{k}": v.detach().clone().contiguous() for k, v in sd.items()}


def eval_outputs(gan: Any, x_a: Tensor, x_b: Tensor, tag: str) -> dict[str, Tensor]:
    """Eval-mode outputs (image or logit map, cam_logit, heatmap) of the six nets on one image per domain."""
    nets = {n: getattr(gan, n) for n in NETS}
    for net in nets.values():
        net.eval()
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for name, x in (("genA2B", x_a), ("genB2A", x_b), ("disGA", x_a), ("disLA", x_a), ("disGB", x_b),
                        ("disLB", x_b)):
            for part, t in zip(("out", "cam_logit", "heatmap"), nets[name](x), strict=True):
                out[f"{tag}.{name}.{part}"] = t.detach().clone()
    for net in nets.values():
        net.train()
    return out


def official_run(off: Namespace, cfg: dict[str, Any], work: Path, real_a: Tensor, real_b: Tensor,
                 init: dict[str, Tensor] | None = None) -> tuple[dict[str, Tensor], Any]:
    """Seeded official build (or loaded with ``init``), eval outputs, ``iteration`` official training iterations in
    float64; returns (tensors, the official trainer)."""
    gan = build(off, cfg, work)
    out: dict[str, Tensor] = {}
    for n in NETS:
        net = getattr(gan, n)
        if init is not None:
            net.load_state_dict({k[len(f"init.{n}."):]: v for k, v in init.items() if k.startswith(f"init.{n}.")})
        out.update(state(f"init.{n}.", net.state_dict()))
    out.update(eval_outputs(gan, real_a[0, :1], real_b[0, :1], "eval32"))
    # float64 from here on: the conversion keeps the Parameter objects, so the official Adams still hold them
    for n in NETS:
        getattr(gan, n).double()
    assert gan.G_optim.param_groups[0]["params"][0] is next(gan.genA2B.parameters())
    out.update(eval_outputs(gan, real_a[0, :1].double(), real_b[0, :1].double(), "eval64"))

    gan.trainA_loader, gan.trainB_loader = Feed(real_a.double()), Feed(real_b.double())
    records: list[dict[str, float]] = []
    apply = gan.genA2B.apply

    def apply_and_record(fn: Any) -> Any:
        # called by UGATIT.train right after G_optim.step(): its frame holds this iteration's loss terms
        frame = sys._getframe(1)
        records.append({k: float(frame.f_locals[k].detach()) for k in TERMS})
        return apply(fn)

    gan.genA2B.apply = apply_and_record
    try:
        gan.train()
    finally:
        del gan.genA2B.apply
    assert len(records) == cfg["iteration"], records
    for k in TERMS:
        out[f"train.{k}"] = torch.tensor([r[k] for r in records], dtype=torch.float64)
    for n in NETS:
        out.update(state(f"final.{n}.", getattr(gan, n).state_dict()))
    return out, gan


def write_import(off: Namespace, cfg: dict[str, Any], gan: Any, work: Path, out: Path, variant: str,
                 chosen: dict[str, list[Path]]) -> None:
    """``UGATIT.save``'s file after the official iterations, and the official test path's translations with it."""
    model_dir = work / "results" / cfg["dataset"] / "model"
    for n in NETS:
        getattr(gan, n).float()  # a real run trains and saves in float32
    gan.save(str(model_dir), cfg["iteration"])
    name = f"{cfg['dataset']}_params_{cfg['iteration']:07d}.pt"
    target = out / "import" / variant
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(model_dir / name, target / name)
    # UGATIT.test: load the newest params file, generators in eval mode, test loaders (resize to img_size).
    gan.load(str(model_dir), cfg["iteration"])
    gan.genA2B.eval(), gan.genB2A.eval()
    cwd = Path.cwd()
    os.chdir(work)
    try:
        input_a, _ = next(iter(gan.testA_loader))
        input_b, _ = next(iter(gan.testB_loader))
    finally:
        os.chdir(cwd)
    with torch.no_grad():
        a2b, b2a = gan.genA2B(input_a)[0], gan.genB2A(input_b)[0]
    expected_cfg = {k: cfg[k] for k in OPTION_KEYS}
    expected_cfg.update({"file": name, "step": cfg["iteration"], "phase": "test",
                         "input_a_file": f"testA/{chosen['testA'][0].name}",
                         "input_b_file": f"testB/{chosen['testB'][0].name}",
                         "n_layers_global": cfg["n_layers_global"], "n_layers_local": cfg["n_layers_local"],
                         "torch": cfg["torch"], "official": {"repo": OFFICIAL_REPO, "commit": cfg["official_commit"]}})
    torch.save({"config": json.dumps(expected_cfg, sort_keys=True), "input_a": input_a, "input_b": input_b,
                "a2b": a2b, "b2a": b2a}, out / "import" / f"expected_{variant}.pt")


def spread_diffs(golden: dict[str, Tensor], run: dict[str, Tensor]) -> dict[str, float]:
    """Relative differences of a re-run from the golden: ||run - golden|| / ||golden|| per final tensor, and the
    largest relative difference over the iterations per loss term."""
    diff: dict[str, float] = {}
    for k, v in run.items():
        ref = golden.get(k)
        if k.startswith("final."):
            diff[k] = float((v.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-300))
        elif k.startswith("train."):
            diff[k] = float(((v - ref).abs() / ref.abs().clamp_min(1e-300)).max())
    return diff


def spread_run(off: Namespace, golden_path: Path, out_path: Path, work: Path, data: Path) -> None:
    """Re-run the golden's official iterations from its own initial weights; write differences from the golden."""
    g = torch.load(golden_path, weights_only=True)
    cfg = json.loads(g["config"])
    make_workdir(work, cfg, data)
    init = {k: v for k, v in g.items() if k.startswith("init.")}
    run, _ = official_run(off, cfg, work, g["real_A"], g["real_B"], init)
    diff = spread_diffs(g, run)
    meta = {"kind": out_path.stem.rsplit(".", 1)[1], "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": json.dumps({**cfg, "spread": meta, "diff_keys": list(diff)}, sort_keys=True),
                "diff": torch.tensor(list(diff.values()), dtype=torch.float64)}, out_path)


def _git_commit(checkout: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, required=True, help="checkout of " + OFFICIAL_REPO)
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "golden" / "ugatit")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with trainA/trainB/testA/testB")
    ap.add_argument("--only", choices=sorted(CONFIGS), help="make one golden only")
    ap.add_argument("--spread-of", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spread-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    off = import_official(args.official.resolve())
    args.out = args.out.resolve()
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"golden_ugatit_{os.getpid()}"
    try:
        if args.spread_of:  # a re-run in a child process whose environment sets the threads / ISA
            spread_run(off, args.spread_of.resolve(), args.spread_out.resolve(), root, args.data)
            return
        torch.set_num_threads(1)
        commit = _git_commit(args.official)
        for name, variant in CONFIGS.items():
            if args.only and name != args.only:
                continue
            work = root / name
            cfg = {**COMMON, **variant, "official_commit": commit, "torch": torch.__version__, "dtype": "float64",
                   "init_dtype": "float32", "threads": 1,
                   "cpu_capability": torch.backends.cpu.get_cpu_capability()}
            chosen = make_workdir(work, cfg, args.data)
            loader = build(off, cfg, work)  # for its test transform only
            shape = (cfg["iteration"], cfg["batch_size"], 3, cfg["img_size"], cfg["img_size"])
            real_a = load_split(off, loader, work / "dataset" / cfg["dataset"] / "trainA").reshape(shape)
            real_b = load_split(off, loader, work / "dataset" / cfg["dataset"] / "trainB").reshape(shape)
            cfg["train_files"] = {"A": [p.name for p in chosen["trainA"]], "B": [p.name for p in chosen["trainB"]]}
            tensors, gan = official_run(off, cfg, work, real_a, real_b)
            golden = args.out / f"{name}.pt"
            golden.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"config": json.dumps(cfg, sort_keys=True), "real_A": real_a, "real_B": real_b, **tensors},
                       golden)
            print(f"wrote {golden}: d_loss {tensors['train.Discriminator_loss'].tolist()} "
                  f"g_loss {tensors['train.Generator_loss'].tolist()}")
            write_import(off, cfg, gan, work, args.out, "light" if cfg["light"] else "full", chosen)
            for kind, env in SPREAD_ENVS.items():
                target = args.out / "spread" / f"{name}.{kind}.pt"
                subprocess.run([sys.executable, __file__, "--official", str(args.official), "--data", str(args.data),
                                "--spread-of", str(golden), "--spread-out", str(target)],
                               check=True, env={**os.environ, **env})
                print(f"wrote {target}")
        total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
        print(f"{args.out}: {total / 1e6:.2f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
