"""Run the official domain-adaptation trainers of UNIT (version_02) and CoGAN (PyTorch port) on builtin:digits.

Usage (the checkouts are imported at run time, never copied; one thread, as the sweep runs)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python scripts/official_da.py --method unit \
        --official /tmp/official/UNIT --seed 0 --steps 1000 --out runs/official-da/unit/s0
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python scripts/official_da.py --method cogan \
        --official /tmp/official/CoGAN --seed 0 --steps 1000 --out runs/official-da/cogan/s0

What it does, per run:

1. Exports builtin:digits (labelled MNIST A -> optdigits B, :mod:`nicegan.data.digits`, the same fixed splits) into
   the files the official dataset classes read, under ``OUT/data``:

   * UNIT (exps/unit/svhn2mnist.yaml's classes, only the roots changed): A as ``dataset_svhn_extra`` /
     ``dataset_svhn_test`` (``extra_32x32.mat`` / ``test_32x32.mat``: X uint8 32 x 32 x 3 x N, y in 1..10 with 10
     for the digit 0), 3 channels scaled by the loader to ``2 x / 255 - 1``; B as ``dataset_mnist32x32_train`` /
     ``_test`` (``mnist32x32.pkl.gz``: a gzipped pickle of (train, valid, test) (images N x 1 x 32 x 32 in [0, 1],
     labels), valid empty), ONE channel, scaled by the loader to ``(x - 0.5) x 2``. ``use_inversion`` of train B
     (official: 1, B doubled with its inverted digits) is ``--inversion`` (default 0: our images only).
   * CoGAN (exps/mnist2usps_full_cogan.yaml's classes): A as ``MNISTSAMPLE`` (``mnist.pkl.gz``: (train, valid,
     test) with flat 784-d images in [0, 1]), B as ``USPSSAMPLE`` (``usps_28x28.pkl``, gzipped: (train, test) with
     N x 1 x 28 x 28 images in [0, 1]); one channel, 28 x 28 (the port's nets are 28 px): our 32 px images with their
     2 px border cut, which is all zeros in both domains (checked), so no pixel is lost. The loaders scale by 255
     and the train script's ``ToTensor`` divides by 255 again: images in [0, 1].

2. Writes the official yaml with our budget (``OUT/config.yaml``: batch, iterations, eval cadence, roots, widths)
   and reads it with the official ``NetConfig``; seeds ``random``, ``numpy`` and ``torch``; builds the official
   trainer and runs the official train script's loop driver (its ``main`` cannot run on Python 3, see below),
   replicated line for line: zip the two shuffled loaders, skip short batches, ``dis_update`` then ``gen_update``
   (UNIT: ``trainer.dis.train()`` first; CoGAN: a fresh ``z`` before each update).

3. After every ``--eval-every`` updates, the official test score: CoGAN ``compute_test_score(trainer.dis.classify_b,
   test_loader_b)`` (imported from train_cogan_mnist2usps.py); UNIT the inline test of
   cocogan_train_domain_adaptation.py (``trainer.dis.eval()``, argmax of ``classify_b`` over the shuffled test loader
   of batch ``test_batch_size``), on our full test split of B, and the same with ``classify_a`` on test A (not in the
   official scripts; run under ``torch.random.fork_rng`` so the training's random stream is the official one).
   ``OUT/curve.json`` gets the curve (rewritten after each evaluation), ``OUT/log.jsonl`` the trainers' losses every
   ``display`` iterations.

Why the official ``main`` functions are not called: both create their datasets with ``exec("name = ...")`` inside a
function, which binds nothing in Python 3 (UNIT's ``get_data_loader`` hands an empty list to its DataLoader, CoGAN's
``main`` raises NameError); CoGAN's also calls ``logging.basicConfig(mode='w')`` (ValueError in Python 3) and both
read the yaml with ``yaml.load_all`` without a Loader (TypeError in PyYAML 6).

Run-time shims, beyond :func:`official_compat.install_compat` (nothing in the checkouts is edited):

* ``cPickle`` is ``pickle`` (the port's dataset modules import it unconditionally);
* ``yaml.load_all`` gets PyYAML < 5.1's default full Loader while the official ``NetConfig`` reads the yaml;
* ``ToTensor2017`` replaces the port's ``transforms.ToTensor()``: the torchvision of 2017 divided every numpy array
  by 255; today's divides only uint8 arrays, which would feed the port's float arrays in [0, 255];
* integer tensors' in-place true division returns a float tensor while the official test score is computed: in
  PyTorch 0.3 ``(predicts == labels).sum()`` was a Python int, so ``score /= 1.0 * num_samples`` was a float
  division; today it is an int64 tensor and the in-place division raises;
* the trainers' ``cuda()`` is not called (it moves the nets with ``nn.Module.cuda``); UNIT's ``gpu`` attribute is set
  to 0 as ``cuda(0)`` would; the DataLoaders use ``num_workers=0`` (UNIT's asks for 10);
* ``--widths quarter``: UNIT ``gen_ch`` 96 -> 24 and ``dis_ch`` 64 -> 16 through the yaml (the preset
  unit-digits-da's widths); CoGAN's port hard-codes its widths, so its net module sees ``nn`` with the generator's
  channel counts 1024/512/256/128 mapped to 256/128/64/32 (:class:`golden_cogan.NarrowNN`; the preset
  cogan-digits' generator; the discriminator keeps the official 20/50/500, as cogan-digits does).

Not done (no effect on the training): the official image dumps, model snapshots and tensorboard/log-file writes.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib
import json
import os
import pickle
import random
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
import yaml
from torch import Tensor
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_cogan import NarrowNN
from official_compat import git_commit, install_compat

#: UNIT widths (yaml ``gen_ch`` / ``dis_ch``) per ``--widths``; ``official`` keeps svhn2mnist.yaml's
UNIT_WIDTHS = {"quarter": {"gen_ch": 24, "dis_ch": 16}, "official": {}}
#: CoGAN channel maps per ``--widths`` (the port's generator 1024-512-256-128 -> cogan-digits' gen_ch 256)
COGAN_WIDTHS: dict[str, dict[int, int]] = {"quarter": {1024: 256, 512: 128, 256: 64, 128: 32}, "official": {}}
#: the official experiment files the runs start from
UNIT_YAML = Path("exps") / "unit" / "svhn2mnist.yaml"
COGAN_YAML = Path("exps") / "mnist2usps_full_cogan.yaml"
SPLITS = ("train_a", "train_b", "test_a", "test_b")


# --- data ------------------------------------------------------------------------------------------------------------


def digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """builtin:digits' four splits as (uint8 N x 32 x 32 grayscale images, int64 labels)."""
    from nicegan.data.digits import load_digits_pair

    pair = load_digits_pair()
    out = {}
    for name in SPLITS:
        split, dom = name.split("_")
        src = pair.split(split, dom)
        img = src.images
        if img.ndim == 4:  # RGB storage: the digits are gray, so the channels must agree
            if not (np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])):
                raise SystemExit(f"builtin:digits {name} is not gray: the 1-channel official loaders would drop colour")
            img = img[..., 0]
        assert src.labels is not None
        out[name] = (np.ascontiguousarray(img), src.labels.astype(np.int64))
    return out


def write_pickle_gz(path: Path, obj: object) -> None:
    """A gzipped pickle, as the official loaders open it (``gzip.open`` + ``cPickle.load``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def unit_float(img: np.ndarray) -> np.ndarray:
    """N x 32 x 32 uint8 -> N x 1 x 32 x 32 float32 in [0, 1] (the resized mnist32x32.pkl.gz's layout)."""
    return (img.astype(np.float32) / 255.0)[:, None]


def export_unit(splits: dict[str, tuple[np.ndarray, np.ndarray]], root: Path) -> dict[str, str]:
    """Write UNIT's svhn (A) and mnist32x32 (B) files under ``root``; returns the dataset roots per domain."""
    from scipy.io import savemat

    a_root, b_root = root / "A_svhn_format", root / "B_mnist32x32_format"
    a_root.mkdir(parents=True, exist_ok=True)
    for split, fname in (("train_a", "extra_32x32.mat"), ("test_a", "test_32x32.mat")):
        img, lab = splits[split]
        x = np.ascontiguousarray(np.repeat(img[..., None], 3, axis=3).transpose(1, 2, 3, 0))  # 32 x 32 x 3 x N
        y = np.where(lab == 0, 10, lab).astype(np.uint8)[:, None]  # SVHN's labels: 10 is the digit 0
        savemat(a_root / fname, {"X": x, "y": y})
    (tr, tr_l), (te, te_l) = splits["train_b"], splits["test_b"]
    empty = (np.zeros((0, 1, 32, 32), np.float32), np.zeros(0, np.int64))
    write_pickle_gz(b_root / "mnist32x32.pkl.gz", ((unit_float(tr), tr_l), empty, (unit_float(te), te_l)))
    return {"a": f"{a_root}/", "b": f"{b_root}/"}


def crop28(img: np.ndarray) -> np.ndarray:
    """The 28 x 28 centre of 32 px digits, after checking that the cut 2 px border is all zeros."""
    border = img.copy()
    border[:, 2:30, 2:30] = 0
    if border.any():
        raise SystemExit("a builtin:digits image has ink in its 2 px border: the 28 px crop would change it")
    return img[:, 2:30, 2:30]


def export_cogan(splits: dict[str, tuple[np.ndarray, np.ndarray]], root: Path) -> dict[str, str]:
    """Write the CoGAN port's MNIST (A) and USPS (B) files under ``root``; returns the roots per domain."""
    a_root, b_root = root / "A_mnist_format", root / "B_usps_format"

    def as_float(name: str) -> tuple[np.ndarray, np.ndarray]:
        img, lab = splits[name]
        return crop28(img).astype(np.float32) / 255.0, lab

    (tr, tr_l), (te, te_l) = as_float("train_a"), as_float("test_a")
    empty = (np.zeros((0, 784), np.float32), np.zeros(0, np.int64))
    write_pickle_gz(a_root / "mnist.pkl.gz", ((tr.reshape(-1, 784), tr_l), empty, (te.reshape(-1, 784), te_l)))
    (tr, tr_l), (te, te_l) = as_float("train_b"), as_float("test_b")
    write_pickle_gz(b_root / "usps_28x28.pkl", ((tr[:, None], tr_l), (te[:, None], te_l)))
    return {"a": str(a_root), "b": str(b_root)}


class ToTensor2017:
    """``torchvision.transforms.ToTensor`` as of 2017 for numpy arrays: H x W x C -> C x H x W float, divided by
    255 whatever the dtype (today's divides only uint8 arrays)."""

    def __call__(self, pic: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1)))).float().div(255)


# --- shims -----------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def yaml_default_loader() -> Iterator[None]:
    """``yaml.load_all(stream)`` with PyYAML < 5.1's default (full) Loader, for the official ``NetConfig``."""
    orig = yaml.load_all
    yaml.load_all = partial(orig, Loader=yaml.FullLoader)  # type: ignore[assignment]
    try:
        yield
    finally:
        yaml.load_all = orig  # type: ignore[assignment]


@contextlib.contextmanager
def int_true_division() -> Iterator[None]:
    """In-place true division of an integer tensor returns a new float tensor (``score /= 1.0 * n`` of the
    official test scores, where ``score`` was a Python int in PyTorch 0.3)."""
    orig = torch.Tensor.__itruediv__

    def itruediv(self: Tensor, other: object) -> Tensor:
        if self.is_floating_point() or self.is_complex():
            return orig(self, other)
        return self / other

    torch.Tensor.__itruediv__ = itruediv  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.__itruediv__ = orig  # type: ignore[method-assign]


def official_config(cfg_cls: type, path: Path) -> object:
    """The official ``NetConfig`` of ``path`` (its ``train`` block as attributes)."""
    with yaml_default_loader():
        return cfg_cls(str(path))


# --- shared ---------------------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (the official scripts seed none)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def as_float(v: object) -> float:
    """A logged loss or accuracy (Python number, NumPy value or 1-element tensor) as a float."""
    if isinstance(v, Tensor):
        return float(v.detach().reshape(-1)[0])
    return float(np.asarray(v).reshape(-1)[0])


class Run:
    """The curve and log files of one run."""

    def __init__(self, args: argparse.Namespace, official: Path) -> None:
        self.out: Path = args.out
        self.curve: dict = {"method": args.method, "seed": args.seed, "steps": args.steps, "batch": args.batch,
                            "widths": args.widths, "accuracy": {}, "seconds": None,
                            "official_commit": git_commit(official), "threads": torch.get_num_threads(),
                            "eval_every": args.eval_every}
        if args.method == "unit":
            self.curve["inversion"] = args.inversion
        self.log = open(self.out / "log.jsonl", "w")  # noqa: SIM115 (closed by close())
        self.t0 = time.perf_counter()
        self.eval_seconds = 0.0

    def loss(self, iteration: int, values: dict[str, object]) -> None:
        """Append the trainer's logged values after ``iteration`` updates to log.jsonl."""
        self.log.write(json.dumps({"iteration": iteration, **{k: as_float(v) for k, v in values.items()}}) + "\n")
        self.log.flush()

    def accuracy(self, updates: int, a: float, b: float, seconds: float) -> None:
        """Record the test accuracies after ``updates`` updates (``seconds``: the evaluation's time)."""
        self.eval_seconds += seconds
        self.curve["accuracy"][str(updates)] = {"a": round(a, 6), "b": round(b, 6)}
        print(f"[{self.curve['method']} seed {self.curve['seed']}] {updates} updates: test A {a:.4f}, test B {b:.4f} "
              f"({time.perf_counter() - self.t0:.1f} s)", flush=True)
        self.write()

    def write(self) -> None:
        """(Re)write curve.json."""
        (self.out / "curve.json").write_text(json.dumps(self.curve, indent=2) + "\n")

    def close(self, updates: int) -> None:
        """Add the timings (``seconds_per_iteration`` excludes the evaluations) and close the files."""
        total = time.perf_counter() - self.t0
        train = total - self.eval_seconds
        self.curve.update(seconds=round(total, 2), updates=updates, eval_seconds=round(self.eval_seconds, 2),
                          seconds_per_iteration=round(train / max(updates, 1), 4))
        self.write()
        self.log.close()


# --- UNIT (version_02, cocogan_train_domain_adaptation.py) -----------------------------------------------------------


def import_unit(official: Path) -> dict[str, ModuleType]:
    """The official ``datasets``, ``trainers`` and ``tools`` packages of a version_02 checkout."""
    install_compat()
    src = official / "src"
    if not (src / "trainers" / "cocogan_trainer_da.py").is_file():
        raise SystemExit(f"{official} is not a mingyuliutw/UNIT version_02 checkout (no src/trainers/...)")
    sys.path.insert(0, str(src))
    return {name: importlib.import_module(name) for name in ("datasets", "trainers", "tools")}


def unit_test_score(dis: torch.nn.Module, classify: Callable[[Tensor], Tensor], loader: DataLoader) -> float:
    """cocogan_train_domain_adaptation.py's test: ``dis.eval()``, then the fraction of argmax hits over ``loader``."""
    dis.eval()
    score, num_samples = 0, 0
    with torch.no_grad(), int_true_division():
        for test_images, test_labels in loader:
            test_labels = test_labels.view(test_images.size(0))
            cls_outputs = classify(test_images)
            _, cls_predicts = torch.max(cls_outputs.data, 1)
            score += (cls_predicts == test_labels.data).sum()
            num_samples += test_images.size(0)
        score /= 1.0 * num_samples
    return as_float(score)


def run_unit(args: argparse.Namespace, official: Path) -> None:
    """Export the data, write the yaml and run cocogan_train_domain_adaptation.py's loop (see the module doc)."""
    mods = import_unit(official)
    roots = export_unit(digits_splits(), args.out / "data")
    with open(official / UNIT_YAML) as fh:
        doc = yaml.safe_load(fh)
    train = doc["train"]
    hp = train["hyperparameters"]
    hp.update(batch_size=args.batch, max_iterations=args.steps, **UNIT_WIDTHS[args.widths])
    train["snapshot_save_iterations"] = args.eval_every
    train["image_save_iterations"] = args.eval_every
    train["snapshot_prefix"] = str(args.out / "outputs" / "digits_da")
    ds = train["datasets"]
    ds["train_a"]["root"] = roots["a"]
    ds["train_b"]["root"] = roots["b"]
    ds["train_b"]["use_inversion"] = args.inversion
    ds["test_b"]["root"] = roots["b"]
    # test A: the same kind of class as train A (svhn2mnist.yaml has no test_a)
    ds["test_a"] = {"class_name": "dataset_svhn_test", "root": roots["a"]}
    cfg_path = args.out / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = official_config(mods["tools"].NetConfig, cfg_path)
    hp = config.hyperparameters
    batch_size, max_iterations = hp["batch_size"], hp["max_iterations"]

    seed_everything(args.seed)
    trainer = getattr(mods["trainers"], hp["trainer"])(hp)  # the script's exec("trainer=%s(...)")
    trainer.gpu = 0  # what trainer.cuda(0) sets; the tensors stay on the CPU

    def loader(name: str, batch: int, shuffle: bool = True) -> DataLoader:  # common.get_data_loader
        conf = config.datasets[name]
        dataset = getattr(mods["datasets"], conf["class_name"])(conf)
        return DataLoader(dataset=dataset, batch_size=batch, shuffle=shuffle, num_workers=0)

    train_loader_a = loader("train_a", batch_size)
    train_loader_b = loader("train_b", batch_size)
    test_loader_b = loader("test_b", hp["test_batch_size"])
    test_loader_a = loader("test_a", hp["test_batch_size"], shuffle=False)
    run = Run(args, official)
    run.curve.update(trainer=hp["trainer"], hyperparameters=hp, train_sizes=[len(train_loader_a.dataset),
                     len(train_loader_b.dataset)], test_sizes=[len(test_loader_a.dataset), len(test_loader_b.dataset)])

    iterations = 0
    for _ep in range(100000):  # MAX_EPOCHS
        for (images_a, labels_a), (images_b, _labels_b) in zip(train_loader_a, train_loader_b, strict=False):
            if images_a.size(0) != batch_size or images_b.size(0) != batch_size:
                continue
            trainer.dis.train()
            labels_a = labels_a.view(images_a.size(0))
            trainer.dis_update(images_a, labels_a, images_b, hp)
            trainer.gen_update(images_a, images_b, hp)
            if (iterations + 1) % config.display == 0:
                run.loss(iterations + 1, {k: v for k, v in vars(trainer).items()
                                          if k.startswith(("dis_", "gen_")) and ("loss" in k or "acc" in k)})
            if (iterations + 1) % config.snapshot_save_iterations == 0:
                t = time.perf_counter()
                score_b = unit_test_score(trainer.dis, trainer.dis.classify_b, test_loader_b)
                with torch.random.fork_rng(devices=[]):
                    score_a = unit_test_score(trainer.dis, trainer.dis.classify_a, test_loader_a)
                run.accuracy(iterations + 1, score_a, score_b, time.perf_counter() - t)
            iterations += 1
            if iterations == max_iterations:
                run.close(iterations)
                return


# --- CoGAN (cogan_pytorch, train_cogan_mnist2usps.py) ---------------------------------------------------------------


def cogan_src(official: Path) -> Path:
    """``cogan_pytorch/src`` of a mingyuliutw/CoGAN checkout (``official`` is the checkout or its cogan_pytorch)."""
    for src in (official / "cogan_pytorch" / "src", official / "src"):
        if (src / "train_cogan_mnist2usps.py").is_file():
            return src
    raise SystemExit(f"{official} is not a mingyuliutw/CoGAN checkout (no cogan_pytorch/src/train_cogan_mnist2usps.py)")


def import_cogan(src: Path, widths: dict[int, int]) -> dict[str, ModuleType]:
    """The port's modules; with ``widths``, the net module sees :class:`NarrowNN` (generator channel counts)."""
    install_compat()
    sys.modules.setdefault("cPickle", pickle)
    sys.path.insert(0, str(src))
    if widths:
        importlib.import_module("net_cogan_mnist2usps").nn = NarrowNN(widths)
    names = ("dataset_mnist", "dataset_usps", "trainer_cogan_mnist2usps", "train_cogan_mnist2usps", "net_config")
    return {name: importlib.import_module(name) for name in names}


def run_cogan(args: argparse.Namespace, official: Path) -> None:
    """Export the data, write the yaml and run train_cogan_mnist2usps.py's loop (see the module doc)."""
    src = cogan_src(official)
    mods = import_cogan(src, COGAN_WIDTHS[args.widths])
    splits = digits_splits()
    roots = export_cogan(splits, args.out / "data")
    with open(src.parent / COGAN_YAML) as fh:
        doc = yaml.safe_load(fh)
    train = doc["train"]
    train.update(max_iter=args.steps, batch_size=args.batch, snapshot_iter=args.eval_every,
                 log=str(args.out / "outputs" / "digits_da.log"),
                 snapshot_prefix=str(args.out / "outputs" / "digits_da"),
                 train_data_a_path=roots["a"], train_data_a_size=len(splits["train_a"][1]),
                 train_data_b_path=roots["b"], train_data_b_size=len(splits["train_b"][1]),
                 test_data_b_path=roots["b"], test_data_b_size=len(splits["test_b"][1]),
                 # test A: not in the official yaml; the same class as train A, its test split
                 test_data_a="MNISTSAMPLE", test_data_a_path=roots["a"], test_data_a_size=len(splits["test_a"][1]),
                 test_data_a_seed=0, test_data_a_use_train_data=False)
    cfg_path = args.out / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = official_config(mods["net_config"].NetConfig, cfg_path)

    seed_everything(args.seed)
    transform = ToTensor2017()  # the script's transforms.ToTensor() as of 2017

    def dataset(key: str) -> object:
        """The script's ``exec("<key> = %s(root=..., ...)")`` of one dataset."""
        cls = getattr(mods[f"dataset_{'mnist' if getattr(config, key) == 'MNISTSAMPLE' else 'usps'}"],
                      getattr(config, key))
        return cls(root=getattr(config, f"{key}_path"), num_training_samples=getattr(config, f"{key}_size"),
                   train=getattr(config, f"{key}_use_train_data"), transform=transform,
                   seed=getattr(config, f"{key}_seed"))

    train_loader_a = DataLoader(dataset=dataset("train_data_a"), batch_size=config.batch_size, shuffle=True)
    train_loader_b = DataLoader(dataset=dataset("train_data_b"), batch_size=config.batch_size, shuffle=True)
    test_loader_b = DataLoader(dataset=dataset("test_data_b"), batch_size=config.test_batch_size, shuffle=True)
    test_loader_a = DataLoader(dataset=dataset("test_data_a"), batch_size=config.test_batch_size, shuffle=False)
    trainer = mods["trainer_cogan_mnist2usps"].MNIST2USPSCoGanTrainer(config.batch_size, config.latent_dims)
    compute_test_score = mods["train_cogan_mnist2usps"].compute_test_score
    run = Run(args, official)
    nets = {net: [m.out_channels for m in getattr(trainer, net).modules()
                  if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)] for net in ("gen", "dis")}
    run.curve.update(trainer="MNIST2USPSCoGanTrainer", config=dict(vars(config)), channels=nets,
                     train_sizes=[len(train_loader_a.dataset), len(train_loader_b.dataset)],
                     test_sizes=[len(test_loader_a.dataset), len(test_loader_b.dataset)])

    iterations = 0
    while iterations < config.max_iter:
        for (images_a, labels_a), (images_b, _labels_b) in zip(train_loader_a, train_loader_b, strict=False):
            if images_a.size(0) != config.batch_size or images_b.size(0) != config.batch_size:
                continue
            labels_a = labels_a.view(config.batch_size)
            noise = torch.randn(config.batch_size, config.latent_dims)
            ad_acc, mse_loss, cls_acc = trainer.dis_update(images_a, labels_a, images_b, noise, config.mse_weight,
                                                           config.cls_weight)
            noise = torch.randn(config.batch_size, config.latent_dims)
            trainer.gen_update(noise)
            # the script tests at `iterations % snapshot_iter == 0` before its increment (after iterations + 1
            # updates) and stops after max_iter + 1 updates; here after every eval_every updates and after max_iter
            if (iterations + 1) % config.display == 0:
                run.loss(iterations + 1, {"ad_acc": ad_acc, "cls_acc": cls_acc, "mse_loss": mse_loss})
            if (iterations + 1) % config.snapshot_iter == 0:
                t = time.perf_counter()
                with torch.no_grad(), int_true_division():
                    score_b = as_float(compute_test_score(trainer.dis.classify_b, test_loader_b))
                    with torch.random.fork_rng(devices=[]):
                        score_a = as_float(compute_test_score(trainer.dis.classify_a, test_loader_a))
                run.accuracy(iterations + 1, score_a, score_b, time.perf_counter() - t)
            iterations += 1
            if iterations >= config.max_iter:
                break
    run.close(iterations)


def main() -> None:
    """Parse the command line and run one method with one seed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=("unit", "cogan"), required=True)
    p.add_argument("--official", type=Path, required=True,
                   help="unit: mingyuliutw/UNIT on branch version_02; cogan: mingyuliutw/CoGAN (or its cogan_pytorch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000, help="generator/discriminator updates")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--widths", choices=("quarter", "official"), default="quarter")
    p.add_argument("--inversion", type=int, choices=(0, 1), default=0,
                   help="unit: train B's use_inversion (svhn2mnist.yaml: 1, B doubled with inverted digits)")
    args = p.parse_args()
    if args.method == "cogan" and args.inversion:
        p.error("--inversion is a UNIT dataset option")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    official = args.official.resolve()
    print(f"{args.method}: seed {args.seed}, {args.steps} updates at batch {args.batch}, widths {args.widths}, "
          f"{torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})", flush=True)
    (run_unit if args.method == "unit" else run_cogan)(args, official)


if __name__ == "__main__":
    main()
