"""Golden tensors and import fixtures from the official MUNIT code (NVlabs/MUNIT), run on CPU at a small config.

    git clone https://github.com/NVlabs/MUNIT /tmp/official/munit   # commit a82e222bc359892bd0f522d7a0f1573f3ec4a485
    OMP_NUM_THREADS=1 python scripts/golden_munit.py --official /tmp/official/munit --out tests/golden/munit

Writes (format in tests/golden/munit/README.md):

* ``small32.pt`` / ``cyc32.pt``: the official ``MUNIT_Trainer`` in float64 at 32 px (``recon_x_cyc_w`` 0 / 10):
  initial state dicts, inputs, eval-mode outputs, the loss terms of 2 official iterations (``update_learning_rate``,
  ``dis_update``, ``gen_update``, as ``train.py`` runs them) with the style draws they used, and the final state dicts;
* ``spread/NAME.{t2,avx2}.pt``: the same official iterations re-run with 2 threads / AVX2 kernels;
* ``import/``: ``gen_00000002.pt``, ``dis_00000002.pt``, ``optimizer.pt`` written by ``MUNIT_Trainer.save`` after 2
  official float32 iterations fed by the official training data loader, and ``expected.pt``: real test images, their
  official translations through the steps of ``test.py`` and the official losses of one iteration after
  ``MUNIT_Trainer.resume`` from those files.

The official code runs unmodified from the checkout. Runtime shims for current PyTorch on CPU (this process only):
``torch.utils.serialization.load_lua`` (removed in PyTorch 1.0, imported by utils.py) is a stub that raises, and
``.cuda()`` on tensors and modules is the identity.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden_mm_common as common

COMMIT = "a82e222bc359892bd0f522d7a0f1573f3ec4a485"
NETS = ("gen_a", "gen_b", "dis_a", "dis_b")
DIS_LOSSES = ("loss_dis_a", "loss_dis_b", "loss_dis_total")
GEN_LOSSES = ("loss_gen_adv_a", "loss_gen_adv_b", "loss_gen_recon_x_a", "loss_gen_recon_x_b", "loss_gen_recon_s_a",
              "loss_gen_recon_s_b", "loss_gen_recon_c_a", "loss_gen_recon_c_b", "loss_gen_cycrecon_x_a",
              "loss_gen_cycrecon_x_b", "loss_gen_total")
#: the four style draws of one official iteration, in the order the official code makes them
DRAWS = ("dis.s_a", "dis.s_b", "gen.s_a", "gen.s_b")

#: golden name -> (recon_x_cyc_w, batch size, seed): the edges2shoes-style config and the summer2winter-style one
GOLDENS = {"small32": (0, 2, 0), "cyc32": (10, 1, 1)}
STEPS = 2
IMPORT_SEED, TEST_SEED, TEST_NUM_STYLE = 3, 10, 10  # test.py's defaults: --seed 10 --num_style 10


def hyperparameters(recon_x_cyc_w: float, batch: int) -> dict:
    """The official YAML options (configs/edges2shoes_folder.yaml) at the small configuration."""
    return {
        "image_save_iter": 10000, "image_display_iter": 500, "display_size": 2, "snapshot_save_iter": STEPS,
        "log_iter": 10, "max_iter": 1000000, "batch_size": batch, "weight_decay": 0.0001, "beta1": 0.5,
        "beta2": 0.999, "init": "kaiming", "lr": 0.0001, "lr_policy": "step", "step_size": 100000, "gamma": 0.5,
        "gan_w": 1, "recon_x_w": 10, "recon_s_w": 1, "recon_c_w": 1, "recon_x_cyc_w": recon_x_cyc_w, "vgg_w": 0,
        "gen": {"dim": 2, "mlp_dim": 8, "style_dim": 8, "activ": "relu", "n_downsample": 2, "n_res": 2,
                "pad_type": "reflect"},
        "dis": {"dim": 2, "norm": "none", "activ": "lrelu", "n_layer": 3, "gan_type": "lsgan", "num_scales": 3,
                "pad_type": "reflect"},
        "input_dim_a": 3, "input_dim_b": 3, "num_workers": 0, "new_size": 36, "crop_image_height": 32,
        "crop_image_width": 32, "data_root": "cat2dog",
    }


def load_official(path: Path) -> types.ModuleType:
    """Import the official trainer.py from the checkout, with the CPU / current-PyTorch shims."""
    try:  # current PyTorch has a torch.utils.serialization package (its config), without load_lua
        import torch.utils.serialization as serialization
    except ImportError:
        serialization = types.ModuleType("torch.utils.serialization")
        sys.modules["torch.utils.serialization"] = serialization
    if not hasattr(serialization, "load_lua"):

        def load_lua(*_args, **_kwargs):
            raise RuntimeError("load_lua is gone from PyTorch; the VGG loss (vgg_w > 0) is not used here")

        serialization.load_lua = load_lua
    common.cpu_cuda_shims()
    sys.path.insert(0, str(path))
    import trainer  # the official module, found through sys.path

    return trainer


def train_inputs(batch: int, size: int, new_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 inputs (STEPS, batch, 3, size, size) per domain: real training images, the official Resize(new_size),
    then a centre crop (the official training crop is random)."""
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize(new_size), transforms.CenterCrop(size)])
    out = []
    for split in ("trainA", "trainB"):
        files = common.image_files(split, STEPS * batch)
        u8 = torch.stack([common.pil_to_u8(tf(Image.open(f).convert("RGB"))) for f in files])
        out.append(u8.view(STEPS, batch, 3, size, size))
    return out[0], out[1]


def official_steps(trainer, hp: dict, xs_a: torch.Tensor, xs_b: torch.Tensor, seeds: list[int]
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Official iterations as train.py runs them (scheduler step, dis_update, gen_update), torch seeded with
    ``seeds[s]`` before iteration ``s``; returns the loss terms (float64, one per step) and the style draws."""
    losses: dict[str, list[float]] = {k: [] for k in DIS_LOSSES + GEN_LOSSES}
    draws: dict[str, list[torch.Tensor]] = {k: [] for k in DRAWS}
    for s, seed in enumerate(seeds):
        trainer.update_learning_rate()
        torch.manual_seed(seed)
        rec: list[torch.Tensor] = []
        with common.recording(torch, "randn", rec):
            trainer.dis_update(xs_a[s], xs_b[s], hp)
            trainer.gen_update(xs_a[s], xs_b[s], hp)
        assert len(rec) == len(DRAWS), f"expected {len(DRAWS)} style draws per iteration, got {len(rec)}"
        for k, v in zip(DRAWS, rec, strict=True):
            draws[k].append(v)
        for k in losses:
            losses[k].append(float(getattr(trainer, k)))
    return ({f"train.{k}": torch.tensor(v, dtype=torch.float64) for k, v in losses.items()},
            {f"draw.{k}": torch.stack(v) for k, v in draws.items()})


def final_state(trainer, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    out = {}
    for net in NETS:
        out.update(common.flatten_state(f"final.{net}", getattr(trainer, net).state_dict(), dtype))
    return out


def build(official: types.ModuleType, hp: dict, dtype: torch.dtype, seed: int):
    torch.set_default_dtype(dtype)
    torch.manual_seed(seed)
    return official.MUNIT_Trainer(hp)


def golden(official: types.ModuleType, name: str) -> tuple[dict, dict, dict, dict]:
    """One float64 golden: returns (tensors to save, config, final state in float64, losses)."""
    cyc, batch, seed = GOLDENS[name]
    hp = hyperparameters(cyc, batch)
    trainer = build(official, hp, torch.float64, seed)
    common.round_to_fp32(trainer)  # the stored float32 initial state is then exact
    tensors: dict[str, torch.Tensor] = {}
    for net in NETS:
        tensors.update(common.flatten_state(f"init.{net}", getattr(trainer, net).state_dict(), torch.float32))
    size = hp["crop_image_height"]
    u8_a, u8_b = train_inputs(batch, size, hp["new_size"])
    tensors["real_A_u8"], tensors["real_B_u8"] = u8_a, u8_b
    xs_a, xs_b = common.u8_to_unit(u8_a), common.u8_to_unit(u8_b)

    # eval-mode outputs on the first image of each domain, with style codes from a seeded generator
    trainer.eval()
    gen = torch.Generator().manual_seed(1000 + seed)
    style = {d: torch.randn(1, hp["gen"]["style_dim"], 1, 1, generator=gen, dtype=torch.float64) for d in "ab"}
    x_a, x_b = xs_a[0, :1], xs_b[0, :1]
    with torch.no_grad():
        for dom, x in (("a", x_a), ("b", x_b)):
            g = getattr(trainer, f"gen_{dom}")
            content, own_style = g.encode(x)
            tensors[f"eval.gen_{dom}.content"] = content
            tensors[f"eval.gen_{dom}.style"] = own_style
            for i, out in enumerate(getattr(trainer, f"dis_{dom}")(x)):
                tensors[f"eval.dis_{dom}.{i}"] = out
        c_a, _ = trainer.gen_a.encode(x_a)
        c_b, _ = trainer.gen_b.encode(x_b)
        tensors["eval.style_a2b"], tensors["eval.style_b2a"] = style["b"], style["a"]
        tensors["eval.a2b"] = trainer.gen_b.decode(c_a, style["b"])
        tensors["eval.b2a"] = trainer.gen_a.decode(c_b, style["a"])
    trainer.train()

    seeds = [100 * (seed + 1) + s for s in range(STEPS)]
    losses, draws = official_steps(trainer, hp, xs_a, xs_b, seeds)
    final64 = final_state(trainer, None)
    tensors.update(losses)
    tensors.update(draws)
    tensors.update({k: v.float() for k, v in final64.items()})
    config = {"official": "NVlabs/MUNIT", "commit": COMMIT, "hyperparameters": hp, "steps": STEPS, "seed": seed,
              "step_seeds": seeds, "dtype": "float64", "states_stored_as": "float32", "threads": 1}
    return tensors, config, final64, losses


def rerun(official: types.ModuleType, g: dict) -> tuple[dict, dict]:
    """The golden's official iterations again, from its own stored initial state and inputs (spread runs)."""

    c = json.loads(g["config"])
    hp = c["hyperparameters"]
    trainer = build(official, hp, torch.float64, c["seed"])
    for net in NETS:
        prefix = f"init.{net}."
        getattr(trainer, net).load_state_dict({k[len(prefix):]: v for k, v in g.items() if k.startswith(prefix)})
    losses, _ = official_steps(trainer, hp, common.u8_to_unit(g["real_A_u8"]), common.u8_to_unit(g["real_B_u8"]),
                               c["step_seeds"])
    return final_state(trainer, None), losses


def official_test(official: types.ModuleType, hp: dict, gen_file: Path, image: Path, a2b: bool,
                  style_image: Path | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The steps of the official test.py (``--seed 10 --num_style 10``, optionally ``--style``): returns the input
    tensor, the style code fed (1 x style_dim x 1 x 1) and output000 as a tensor in [-1, 1]."""
    from torchvision import transforms

    torch.manual_seed(TEST_SEED)
    trainer = official.MUNIT_Trainer(hp)
    state = torch.load(gen_file, weights_only=True)
    trainer.gen_a.load_state_dict(state["a"])
    trainer.gen_b.load_state_dict(state["b"])
    trainer.eval()
    encode = trainer.gen_a.encode if a2b else trainer.gen_b.encode
    style_encode = trainer.gen_b.encode if a2b else trainer.gen_a.encode
    decode = trainer.gen_b.decode if a2b else trainer.gen_a.decode
    with torch.no_grad():
        transform = transforms.Compose([transforms.Resize(hp["new_size"]), transforms.ToTensor(),
                                        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
        x = transform(Image.open(image).convert("RGB")).unsqueeze(0)
        content, _ = encode(x)
        style_rand = torch.randn(TEST_NUM_STYLE if style_image is None else 1, hp["gen"]["style_dim"], 1, 1)
        if style_image is not None:
            _, style = style_encode(transform(Image.open(style_image).convert("RGB")).unsqueeze(0))
        else:
            style = style_rand
        s = style[0].unsqueeze(0)
        return x, s, decode(content, s)


def import_fixtures(official: types.ModuleType, out: Path) -> None:
    """Files written by MUNIT_Trainer.save after official float32 iterations, and what the official test path and
    resume make of them."""
    import utils  # official
    from torch.utils.data import DataLoader

    hp = hyperparameters(0, 1)  # batch_size 1, as every official config
    trainer = build(official, hp, torch.float32, IMPORT_SEED)
    loaders = [utils.get_data_loader_folder(str(common.DATA / split), hp["batch_size"], True, hp["new_size"],
                                            hp["crop_image_height"], hp["crop_image_width"], 0, True)
               for split in ("trainA", "trainB")]
    assert all(isinstance(ld, DataLoader) for ld in loaders)
    # train.py iterates zip(train_loader_a, train_loader_b); one batch more for the resumed iteration
    batches = [b for _, b in zip(range(STEPS + 1), zip(*loaders, strict=False), strict=False)]
    for iterations in range(STEPS):  # train.py's loop body, without logging and image writing
        trainer.update_learning_rate()
        images_a, images_b = batches[iterations]
        trainer.dis_update(images_a.detach(), images_b.detach(), hp)
        trainer.gen_update(images_a.detach(), images_b.detach(), hp)
        if (iterations + 1) % hp["snapshot_save_iter"] == 0:
            trainer.save(str(out), iterations)
    gen_file = out / f"gen_{STEPS:08d}.pt"
    assert gen_file.is_file() and (out / f"dis_{STEPS:08d}.pt").is_file() and (out / "optimizer.pt").is_file()

    tensors: dict[str, torch.Tensor] = {}
    (img_a,), (img_b,) = common.image_files("testA", 1), common.image_files("testB", 1)
    x_a, s_a2b, a2b = official_test(official, hp, gen_file, img_a, True)
    x_b, s_b2a, b2a = official_test(official, hp, gen_file, img_b, False)
    _, s_a2b_guided, a2b_guided = official_test(official, hp, gen_file, img_a, True, img_b)
    _, s_b2a_guided, b2a_guided = official_test(official, hp, gen_file, img_b, False, img_a)
    tensors.update({"input_a": x_a, "input_b": x_b, "a2b": a2b, "b2a": b2a, "style_a2b": s_a2b, "style_b2a": s_b2a,
                    "a2b_guided": a2b_guided, "b2a_guided": b2a_guided, "style_a2b_guided": s_a2b_guided,
                    "style_b2a_guided": s_b2a_guided})

    # resume from exactly these files (a clean copy of the folder, as train.py --resume reads it) and one more
    # official iteration on the next batch, torch seeded with resume.seed before it
    with tempfile.TemporaryDirectory() as tmp:
        for f in (gen_file.name, f"dis_{STEPS:08d}.pt", "optimizer.pt"):
            shutil.copy(out / f, Path(tmp) / f)
        resumed = build(official, hp, torch.float32, IMPORT_SEED + 1)
        start = resumed.resume(tmp, hyperparameters=hp)
    assert start == STEPS, start
    images_a, images_b = batches[STEPS]
    resume_seed = 7
    losses, draws = official_steps(resumed, hp, images_a[None], images_b[None], [resume_seed])
    tensors.update({"resume.x_a": images_a, "resume.x_b": images_b, "resume.seed": torch.tensor(resume_seed),
                    "resume.iterations": torch.tensor(start)})
    tensors.update({k.replace("train.", "resume."): v for k, v in losses.items()})
    tensors.update({k.replace("draw.", "resume.draw."): v for k, v in draws.items()})
    config = {"official": "NVlabs/MUNIT", "commit": COMMIT, "trainer": "MUNIT", "hyperparameters": hp,
              "train_steps": STEPS, "seed": IMPORT_SEED,
              "files": {"gen": gen_file.name, "dis": f"dis_{STEPS:08d}.pt", "optimizer": "optimizer.pt"},
              "test": {"script": "test.py", "seed": TEST_SEED, "num_style": TEST_NUM_STYLE, "output": "output000",
                       "input_a": f"testA/{img_a.name}", "input_b": f"testB/{img_b.name}",
                       "guided": "--style with the other domain's test image (num_style becomes 1)"},
              "dtype": "float32"}
    common.save(out / "expected.pt", tensors, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of NVlabs/MUNIT")
    parser.add_argument("--out", type=Path, default=Path("tests/golden/munit"))
    parser.add_argument("--data", type=Path, default=common.DATA, help="cat2dog folder (trainA, trainB, testA, testB)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rerun", help=argparse.SUPPRESS)
    parser.add_argument("--rerun-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common.DATA = args.data
    official = load_official(args.official.resolve())
    if args.rerun:
        common.run_rerun(lambda g: rerun(official, g), args.out / f"{args.rerun}.pt", args.rerun_out)
        return
    for name in GOLDENS:
        tensors, config, final64, losses = golden(official, name)
        common.save(args.out / f"{name}.pt", tensors, config)
        common.spread_reruns(Path(__file__).resolve(), ["--official", str(args.official), "--out", str(args.out),
                                                        "--data", str(args.data)],
                             name, final64, losses, config, args.out)
    import_dir = args.out / "import"
    if import_dir.exists():
        shutil.rmtree(import_dir)
    import_dir.mkdir(parents=True)
    import_fixtures(official, import_dir)
    torch.set_default_dtype(torch.float32)


if __name__ == "__main__":
    main()
