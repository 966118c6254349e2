"""Golden tensors and import fixtures from the official DRIT++ code (HsinYingLee/DRIT), run on CPU at a small config.

    git clone https://github.com/HsinYingLee/DRIT /tmp/official/drit   # commit f19f50a8fa5f28dffbd93a0ed034da616232d769
    OMP_NUM_THREADS=1 python scripts/golden_drit.py --official /tmp/official/drit --out tests/golden/drit

Writes (format in tests/golden/drit/README.md), for ``--concat 1`` (DRIT++: mode seeking on, the official default)
and ``--concat 0 --no_ms`` (see GOLDENS):

* ``concat1.pt`` / ``concat0.pt``: the official ``DRIT`` model in float64 at 48 px: initial state dicts, inputs,
  eval-mode outputs, the loss terms of one official iteration (``d_iter`` 3: two ``update_D_content`` minibatches,
  then ``update_D`` and ``update_EG`` on the third, as ``train.py`` runs them) with every random draw it made, and
  the final state dicts;
* ``spread/NAME.{t2,avx2}.pt``: the same official iteration re-run with 2 threads / AVX2 kernels, same draws;
* ``import/concat{1,0}/00000.pth``: ``DRIT.save`` as ``Saver.write_model`` names it, after one official float32
  iteration fed by the official ``dataset_unpair`` loader, and ``import/expected_concat{1,0}.pt``: real test images
  and their translations through the official ``test_forward`` (test.py) and ``test_forward_transfer``
  (test_transfer.py) with the attribute codes those used.

The official code runs unmodified from the checkout; this process only patches it at run time:

* CPU: ``.cuda()`` on tensors and modules is the identity.
* Small configuration (the official networks hard-code their widths): inside ``networks`` the ``nn`` layer
  constructors get every channel count c mapped to ``(c // 64) * WIDTH + (c % 64) // 8 * NZ + c % 8`` (the official
  counts are multiples of 64 plus multiples of the 8 attribute channels, or the 1 / 3 image channels, so WIDTH 64
  and NZ 8 give the official network), and so do ``LayerNorm``'s parameters and ``G.tch_add``; the model's ``nz``
  (hard-coded 8 in model.py, used for the random attribute draws) is set to NZ; ``MultiScaleDis`` gets ``n_layer``
  3 (official default 4, not an official option) and ``Dis_content`` keeps the last 1 of its three 7x7 stride-2
  layers. The layer types, their order and every operation are the official ones.
* ``--concat 0``: ``MisINSResBlock`` adds its residual in place to the output of a ``ReLU(inplace=False)``; current
  PyTorch differentiates relu through its output, so ``backward_EG`` fails. networks.py's ``nn.ReLU(inplace=False)``
  is built as ``nn.Threshold(0, 0)``: the same function and gradient, taken through the input as PyTorch 0.4 did.
* ``update_EG``: its EG half runs as is; its G-alone half (``backward_G_alone`` then the ``enc_c`` and ``gen``
  optimiser steps) cannot run in PyTorch >= 1.5: it back-propagates through the graph of the forward pass made
  before the EG optimiser steps changed the weights in place ("modified by an inplace operation", DRIT#48, #62;
  the script checks that it still fails). Here the G-alone half runs the official ``forward()`` again at the updated
  weights, replaying the same random draws, then the official ``backward_G_alone`` and optimiser steps: the
  behaviour of the toolkit's ``g_alone`` phase (deviation 1 in src/nicegan/models/drit.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import sys
import types
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden_mm_common as common

COMMIT = "f19f50a8fa5f28dffbd93a0ed034da616232d769"
NETS = ("disA", "disB", "disA2", "disB2", "disContent", "enc_c", "enc_a", "gen")
#: the small configuration's run-time patches (official values: 64, 8, 4, 3)
SMALL = {"width": 1, "nz": 4, "dis_n_layer": 3, "content_dis_layers": 1}
CROP, RESIZE = 48, 56
EVAL_CROP = 32  # the eval outputs' translations: the central 32 px of the first image
TEST_CROP, TEST_RESIZE = 32, 36  # the import fixtures' test transform (test.py's --resize_size / --crop_size)
#: name -> (--concat, --no_ms, seed). --concat 0 runs without mode seeking: at the small width its generator's output
#: barely depends on z at initialisation, so the mode-seeking term 1 / (lz + 1e-5) sits at ~1e5 with gradients ~1e10
#: that turn rounding into visible differences; concat 1 (lz ~ 35) covers mode seeking, concat 0 the ECCV DRIT.
GOLDENS = {"concat1": (1, False, 0), "concat0": (0, True, 1)}
STEPS = 1  # official iterations (total_it); each is d_iter minibatches
IMPORT_SEED, TEST_SEED = 5, 0

CONTENT_LOSSES = ("disContent_loss",)
D_LOSSES = ("disA_loss", "disA2_loss", "disB_loss", "disB2_loss", "disContent_loss")
EG_LOSSES = ("gan_loss_a", "gan_loss_b", "gan_loss_acontent", "gan_loss_bcontent", "kl_loss_za_a", "kl_loss_za_b",
             "kl_loss_zc_a", "kl_loss_zc_b", "l1_recon_A_loss", "l1_recon_B_loss", "l1_recon_AA_loss",
             "l1_recon_BB_loss", "G_loss")
G_ALONE_LOSSES = ("l1_recon_z_loss_a", "l1_recon_z_loss_b", "gan2_loss_a", "gan2_loss_b")
MS_LOSSES = ("lz_AB", "lz_BA")  # G-alone, with mode seeking
CONTENT_DRAWS = ("noise_a", "noise_b")  # forward_content()


def forward_draws(concat: int, no_ms: bool) -> tuple[str, ...]:
    """The random draws of the official forward(), in the order it makes them."""
    attr = ("eps_a", "eps_b") if concat else ()  # E_attr_concat: z = mu + eps sigma
    return ("noise_a", "noise_b", *attr, "z_random", *(() if no_ms else ("z_random2",)), "noise_fake_a",
            "noise_fake_b", *(("eps_recon_a", "eps_recon_b") if concat else ()))


def official_options(options: types.ModuleType, concat: int, no_ms: bool, dataroot: Path, resize: int = RESIZE,
                     crop: int = CROP) -> argparse.Namespace:
    """The official TrainOptions (its defaults) with the small configuration's values."""
    argv = ["--dataroot", str(dataroot), "--batch_size", "2", "--resize_size", str(resize), "--crop_size",
            str(crop), "--concat", str(concat), "--dis_scale", "3", "--d_iter", "3", "--nThreads", "0",
            "--model_save_freq", "1", "--no_display_img", *(["--no_ms"] if no_ms else [])]
    return options.TrainOptions().parser.parse_args(argv)


def load_official(path: Path) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """Import the official networks.py, model.py, options.py from the checkout's src/, CPU-shimmed and narrowed."""
    common.cpu_cuda_shims()
    sys.path.insert(0, str(path / "src"))
    import model  # the official modules, found through sys.path
    import networks
    import options

    narrow(networks, model, **SMALL)
    return networks, model, options


def narrow(networks: types.ModuleType, model_mod: types.ModuleType, width: int, nz: int, dis_n_layer: int,
           content_dis_layers: int) -> None:
    """Build the official networks at a small width and depth: see the module docstring. The official classes stay
    as they are (their ``super(Name, self)`` calls look their own names up); model.py gets a ``networks`` whose
    network constructors narrow what the official ones build."""

    def ch(c: int) -> int:
        # official counts: multiples of 64, plus multiples of nz = 8 (attribute channels), or 1 / 3 (images)
        return (c // 64) * width + (c % 64) // 8 * nz + c % 8

    class SmallNN:
        """``torch.nn`` as networks.py sees it: channel counts of the layer constructors mapped by ``ch``, and
        ``ReLU(inplace=False)`` as ``Threshold(0, 0)`` (see ``compat_relu``)."""

        def __getattr__(self, name: str):
            attr = getattr(torch.nn, name)
            if name in ("Conv2d", "ConvTranspose2d", "Linear"):
                return lambda n_in, n_out, *args, **kwargs: attr(ch(n_in), ch(n_out), *args, **kwargs)
            if name == "InstanceNorm2d":
                return lambda n, *args, **kwargs: attr(ch(n), *args, **kwargs)
            if name == "ReLU":
                return compat_relu
            return attr

    def compat_relu(inplace: bool = False) -> torch.nn.Module:
        # MisINSResBlock (--concat 0) adds its residual in place to the output of ReLU(inplace=False). PyTorch 0.4
        # differentiated relu through its input; current PyTorch uses its output, which that in-place add has
        # changed ("modified by an inplace operation" in backward_EG). Threshold(0, 0) is the same function with
        # the same gradient, grad * (x > 0), taken through its input as PyTorch 0.4 did.
        return torch.nn.ReLU(inplace=True) if inplace else torch.nn.Threshold(0.0, 0.0)

    def layer_norms(net: torch.nn.Module) -> torch.nn.Module:
        # LayerNorm makes its (ones, zeros) affine parameters from its channel count with torch directly
        for m in net.modules():
            if isinstance(m, networks.LayerNorm) and m.affine:
                m.n_out = ch(m.n_out)
                m.weight = torch.nn.Parameter(torch.ones(m.n_out, 1, 1))
                m.bias = torch.nn.Parameter(torch.zeros(m.n_out, 1, 1))
        return net

    class SmallNetworks:
        """``networks`` as model.py sees it."""

        def __getattr__(self, name: str):
            return getattr(networks, name)

        def MultiScaleDis(self, input_dim, n_scale=3, n_layer=4, norm="None", sn=False):
            return networks.MultiScaleDis(input_dim, n_scale, dis_n_layer, norm, sn)

        def Dis_content(self):
            net = networks.Dis_content()
            layers = list(net.model)  # three 7x7 stride-2 layers, the 4x4 layer, the 1x1 conv
            net.model = torch.nn.Sequential(*layers[3 - content_dis_layers:])
            return net

        def G_concat(self, *args, **kwargs):
            return layer_norms(networks.G_concat(*args, **kwargs))

        def G(self, *args, **kwargs):
            net = layer_norms(networks.G(*args, **kwargs))
            net.tch_add = ch(net.tch_add)  # the MLP output's split size (official 256)
            return net

    networks.nn = SmallNN()
    model_mod.networks = SmallNetworks()


def build(model_mod: types.ModuleType, opts: argparse.Namespace, dtype: torch.dtype, seed: int):
    """The official model as train.py sets it up (DRIT(opts), setgpu, initialize, set_scheduler)."""
    torch.set_default_dtype(dtype)
    torch.manual_seed(seed)
    m = model_mod.DRIT(opts)
    m.nz = SMALL["nz"]  # model.py hard-codes 8; its networks were built with the mapped attribute width
    m.setgpu(opts.gpu)
    m.initialize()
    m.set_scheduler(opts, last_ep=-1)
    return m


def g_alone_recomputed(m, draws: list[torch.Tensor]) -> None:
    """The G-alone half of update_EG on a forward pass recomputed at the current weights with ``draws``."""
    with common.replaying(torch, "randn", draws):
        m.forward()
    m.enc_c_opt.zero_grad()
    m.gen_opt.zero_grad()
    m.backward_G_alone()
    m.enc_c_opt.step()
    m.gen_opt.step()


def official_iteration(m, batches: list[tuple[torch.Tensor, torch.Tensor]], seed: int,
                       replay: dict[str, list[list[torch.Tensor]]] | None = None
                       ) -> tuple[dict[str, list[float]], dict[str, list[list[torch.Tensor]]]]:
    """One total_it of train.py: update_D_content on the first d_iter - 1 minibatches, then update_D and update_EG
    (G-alone half recomputed, see the module docstring) on the last. Draws are recorded (torch seeded with ``seed +
    i`` before minibatch i) or, with ``replay``, replayed. Returns the official loss attributes and the draws."""
    losses: dict[str, list[float]] = {}
    draws: dict[str, list[list[torch.Tensor]]] = {"content": [], "full": []}
    for it, (a, b) in enumerate(batches):
        torch.manual_seed(seed + it)
        rec: list[torch.Tensor] = []
        last = it == len(batches) - 1
        kind = "full" if last else "content"
        ctx = (common.replaying(torch, "randn", replay[kind][0 if last else it]) if replay is not None
               else common.recording(torch, "randn", rec))
        with ctx:
            if last:
                m.update_D(a, b)
            else:
                m.update_D_content(a, b)
        if replay is not None:
            rec = replay[kind][0 if last else it]
        draws[kind].append(rec)
        if not last:
            losses.setdefault("content.disContent_loss", []).append(m.disContent_loss)
            continue
        for k in D_LOSSES:
            losses[f"D.{k}"] = [getattr(m, k)]
        # update_EG, first half exactly as the official code
        m.enc_c_opt.zero_grad()
        m.enc_a_opt.zero_grad()
        m.gen_opt.zero_grad()
        m.backward_EG()
        m.enc_c_opt.step()
        m.enc_a_opt.step()
        m.gen_opt.step()
        for k in EG_LOSSES:
            losses[f"EG.{k}"] = [getattr(m, k)]
        g_alone_recomputed(m, rec)
        for k in G_ALONE_LOSSES + (() if m.no_ms else MS_LOSSES):
            losses[f"G_alone.{k}"] = [getattr(m, k)]
    return losses, draws


def literal_update_eg_error(m, a: torch.Tensor, b: torch.Tensor) -> str:
    """Run the literal official update_D + update_EG on a copy: it must fail in current PyTorch (DRIT#48)."""
    trial = copy.deepcopy(m)
    trial.update_D(a, b)
    try:
        trial.update_EG()
    except RuntimeError as e:
        return str(e).split("\n")[0]
    raise SystemExit("the literal official update_EG ran: revisit the G-alone emulation (module docstring)")


def train_inputs(steps: int, d_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 inputs (steps, 2 d_iter, 3, CROP, CROP) per domain: real training images, the official
    Resize((RESIZE, RESIZE), BICUBIC), then a centre crop (the official training crop is random, with flips)."""
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize((RESIZE, RESIZE), Image.BICUBIC), transforms.CenterCrop(CROP)])
    n = steps * 2 * d_iter
    out = []
    for split in ("trainA", "trainB"):
        u8 = torch.stack([common.pil_to_u8(tf(Image.open(f).convert("RGB"))) for f in common.image_files(split, n)])
        out.append(u8.view(steps, 2 * d_iter, 3, CROP, CROP))
    return out[0], out[1]


def minibatches(x_a: torch.Tensor, x_b: torch.Tensor, d_iter: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One step's inputs (2 d_iter images per domain) as the official minibatches of 2 (encoded, random)."""
    return [(x_a[2 * i:2 * i + 2], x_b[2 * i:2 * i + 2]) for i in range(d_iter)]


def state(m, prefix: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    out = {}
    for net in NETS:
        out.update(common.flatten_state(f"{prefix}.{net}", getattr(m, net).state_dict(), dtype))
    return out


def pack_losses(losses: dict[str, list[list[float]]]) -> dict[str, torch.Tensor]:
    """``train.<key>`` float64 tensors: (steps,) per full-update loss, (steps, d_iter - 1) for the content ones."""
    return {f"train.{k}": torch.tensor(v, dtype=torch.float64) for k, v in losses.items()}


def pack_draws(draws: list[dict[str, list[list[torch.Tensor]]]], roles: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """``draw.content.<role>`` (steps, d_iter - 1, ...) and ``draw.full.<role>`` (steps, ...) tensors."""
    out = {}
    for i, role in enumerate(CONTENT_DRAWS):
        out[f"draw.content.{role}"] = torch.stack([torch.stack([mb[i] for mb in d["content"]]) for d in draws])
    for i, role in enumerate(roles):
        out[f"draw.full.{role}"] = torch.stack([d["full"][0][i] for d in draws])
    return out


def unpack_draws(g: dict, roles: tuple[str, ...], step: int) -> dict[str, list[list[torch.Tensor]]]:
    content = g["draw.content.noise_a"].shape[1]
    return {"content": [[g[f"draw.content.{r}"][step, i] for r in CONTENT_DRAWS] for i in range(content)],
            "full": [[g[f"draw.full.{r}"][step] for r in roles]]}


def run_steps(m, x_a: torch.Tensor, x_b: torch.Tensor, d_iter: int, seeds: list[int], g: dict | None = None
              ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    losses: dict[str, list] = {}
    draws = []
    roles = forward_draws(m.concat, m.no_ms)
    for s, seed in enumerate(seeds):
        replay = unpack_draws(g, roles, s) if g is not None else None
        step_losses, step_draws = official_iteration(m, minibatches(x_a[s], x_b[s], d_iter), seed, replay)
        for k, v in step_losses.items():
            losses.setdefault(k, []).append(v if k.startswith("content.") else v[0])
        draws.append(step_draws)
    return pack_losses(losses), pack_draws(draws, roles)


def golden(official: tuple, name: str) -> tuple[dict, dict, dict, dict]:
    """One float64 golden: returns (tensors to save, config, final state in float64, losses)."""
    _, model_mod, options = official
    concat, no_ms, seed = GOLDENS[name]
    opts = official_options(options, concat, no_ms, common.DATA)
    m = build(model_mod, opts, torch.float64, seed)
    common.round_to_fp32(m)  # the stored float32 initial state is then exact
    tensors = state(m, "init", torch.float32)
    u8_a, u8_b = train_inputs(STEPS, opts.d_iter)
    tensors["real_A_u8"], tensors["real_B_u8"] = u8_a, u8_b
    xs_a, xs_b = common.u8_to_unit(u8_a), common.u8_to_unit(u8_b)
    literal_error = literal_update_eg_error(m, *minibatches(xs_a[0], xs_b[0], opts.d_iter)[-1])

    # eval-mode outputs on the first (encoded) image of each domain, attribute codes from a seeded generator
    m.eval()
    gen = torch.Generator().manual_seed(1000 + seed)
    style = {d: torch.randn(1, m.nz, generator=gen, dtype=torch.float64) for d in ("a2b", "b2a")}
    x_a, x_b = xs_a[0, :1], xs_b[0, :1]
    # translations and attributes of the central EVAL_CROP px (smaller files; the networks are convolutional)
    lo = (CROP - EVAL_CROP) // 2
    e_a, e_b = x_a[..., lo:lo + EVAL_CROP, lo:lo + EVAL_CROP], x_b[..., lo:lo + EVAL_CROP, lo:lo + EVAL_CROP]
    with torch.no_grad():
        c_a, c_b = m.enc_c.forward_a(x_a), m.enc_c.forward_b(x_b)
        tensors["eval.enc_c.a"], tensors["eval.enc_c.b"] = c_a, c_b
        tensors["eval.disContent"] = m.disContent(torch.cat([c_a, c_b]))[0]
        c_a, c_b = m.enc_c.forward_a(e_a), m.enc_c.forward_b(e_b)
        x_a, x_b = e_a, e_b
        if concat:
            (mu_a, logvar_a), (mu_b, logvar_b) = m.enc_a.forward_a(x_a), m.enc_a.forward_b(x_b)
            tensors.update({"eval.enc_a.mu_a": mu_a, "eval.enc_a.logvar_a": logvar_a, "eval.enc_a.mu_b": mu_b,
                            "eval.enc_a.logvar_b": logvar_b})
        else:
            tensors["eval.enc_a.a"], tensors["eval.enc_a.b"] = m.enc_a.forward_a(x_a), m.enc_a.forward_b(x_b)
        tensors["eval.style_a2b"], tensors["eval.style_b2a"] = style["a2b"], style["b2a"]
        tensors["eval.a2b"] = m.gen.forward_b(c_a, style["a2b"])
        tensors["eval.b2a"] = m.gen.forward_a(c_b, style["b2a"])
        for net, x in (("disA", x_a), ("disA2", x_a), ("disB", x_b), ("disB2", x_b)):
            for i, out in enumerate(getattr(m, net)(x)):
                tensors[f"eval.{net}.{i}"] = out
    m.train()

    seeds = [100 * (seed + 1) + 10 * s for s in range(STEPS)]
    losses, draws = run_steps(m, xs_a, xs_b, opts.d_iter, seeds)
    final64 = state(m, "final", None)
    tensors.update(losses)
    tensors.update(draws)
    tensors.update({k: v.float() for k, v in final64.items()})
    config = {"official": "HsinYingLee/DRIT", "commit": COMMIT, "options": vars(opts) | {"dataroot": "cat2dog"},
              "small": SMALL, "nz": m.nz, "steps": STEPS, "seed": seed, "step_seeds": seeds, "dtype": "float64",
              "states_stored_as": "float32", "threads": 1, "literal_update_EG_error": literal_error,
              "forward_draws": list(forward_draws(concat, no_ms)), "content_draws": list(CONTENT_DRAWS)}
    return tensors, config, final64, losses


def rerun(official: tuple, g: dict) -> tuple[dict, dict]:
    """The golden's official iteration again, from its stored initial state, inputs and draws (spread runs)."""
    _, model_mod, options = official
    c = json.loads(g["config"])
    opts = official_options(options, c["options"]["concat"], c["options"]["no_ms"], common.DATA)
    m = build(model_mod, opts, torch.float64, c["seed"])
    for net in NETS:
        prefix = f"init.{net}."
        getattr(m, net).load_state_dict({k[len(prefix):]: v for k, v in g.items() if k.startswith(prefix)})
    losses, _ = run_steps(m, common.u8_to_unit(g["real_A_u8"]), common.u8_to_unit(g["real_B_u8"]), opts.d_iter,
                          c["step_seeds"], g)
    return state(m, "final", None), losses


def official_test_transform(resize: int, crop: int):
    """dataset_single's transform: Resize((resize, resize), BICUBIC), CenterCrop(crop), ToTensor, Normalize."""
    from torchvision.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor

    return Compose([Resize((resize, resize), Image.BICUBIC), CenterCrop(crop), ToTensor(),
                    Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])])


def import_fixtures(official: tuple, concat: int, no_ms: bool, out: Path) -> None:
    """DRIT.save after one official float32 iteration (train.py with the official data loader), and what the
    official test paths make of the saved file."""
    _, model_mod, options = official
    import dataset  # official

    folder = out / f"concat{concat}"
    folder.mkdir(parents=True)
    opts = official_options(options, concat, no_ms, common.DATA)
    m = build(model_mod, opts, torch.float32, IMPORT_SEED + concat)
    random.seed(IMPORT_SEED)  # dataset_unpair pairs each image with a random one of the other domain
    loader = torch.utils.data.DataLoader(dataset.dataset_unpair(opts), batch_size=opts.batch_size, shuffle=True,
                                         num_workers=opts.nThreads)
    batches = []
    for images_a, images_b in loader:  # train.py's loop, stopped after one total_it (d_iter minibatches)
        if images_a.size(0) != opts.batch_size or images_b.size(0) != opts.batch_size:
            continue
        batches.append((images_a.detach(), images_b.detach()))
        if len(batches) == opts.d_iter:
            break
    official_iteration(m, batches, 100 * IMPORT_SEED)
    total_it, ep = 1, 0
    m.update_lr()  # end of the epoch in train.py, then saver.write_model(ep, total_it, model)
    path = folder / f"{ep:05d}.pth"
    m.save(str(path), ep, total_it)

    # test.py / test_transfer.py (unseeded officially; seeded here) on the first test image of each domain
    test_opts = argparse.Namespace(**{**vars(opts), "resize_size": TEST_RESIZE, "crop_size": TEST_CROP,
                                      "dis_scale": 3, "dis_norm": "None", "dis_spectral_norm": False, "a2b": 1,
                                      "num": 5})
    torch.manual_seed(TEST_SEED)
    t = model_mod.DRIT(test_opts)
    t.nz = SMALL["nz"]
    t.setgpu(0)
    t.resume(str(path), train=False)
    t.eval()
    tf = official_test_transform(TEST_RESIZE, TEST_CROP)
    (img_a,), (img_b,) = common.image_files("testA", 1), common.image_files("testB", 1)
    x_a = tf(Image.open(img_a).convert("RGB")).unsqueeze(0)
    x_b = tf(Image.open(img_b).convert("RGB")).unsqueeze(0)
    tensors: dict[str, torch.Tensor] = {"input_a": x_a, "input_b": x_b}
    with torch.no_grad():
        tensors["a2b"] = t.test_forward(x_a, a2b=True)  # output_0 of test.py --a2b 1
        tensors["style_a2b"] = t.z_random.clone()
        tensors["b2a"] = t.test_forward(x_b, a2b=False)  # output_0 of test.py --a2b 0
        tensors["style_b2a"] = t.z_random.clone()
        tensors["a2b_guided"] = t.test_forward_transfer(x_a, x_b, a2b=True)  # test_transfer.py --a2b 1
        tensors["style_a2b_guided"] = t.z_attr_b.clone()
        tensors["b2a_guided"] = t.test_forward_transfer(x_a, x_b, a2b=False)  # test_transfer.py --a2b 0
        tensors["style_b2a_guided"] = t.z_attr_a.clone()
        if concat:  # the attribute distribution the guided codes were sampled from (mu + eps exp(logvar / 2))
            tensors.update({"mu_a": t.mu_a.clone(), "logvar_a": t.logvar_a.clone(), "mu_b": t.mu_b.clone(),
                            "logvar_b": t.logvar_b.clone()})
    config = {"official": "HsinYingLee/DRIT", "commit": COMMIT, "train_options": vars(opts) | {"dataroot": "cat2dog"},
              "small": SMALL, "nz": m.nz, "file": f"concat{concat}/{path.name}", "ep": ep, "total_it": total_it,
              "torch_seed": IMPORT_SEED + concat, "random_seed": IMPORT_SEED,
              "minibatch_seeds": [100 * IMPORT_SEED + i for i in range(opts.d_iter)],
              "test": {"scripts": "test.py (a2b, b2a: test_forward, output_0) and test_transfer.py (*_guided: "
                                  "test_forward_transfer)", "resize_size": TEST_RESIZE, "crop_size": TEST_CROP,
                       "seed": TEST_SEED, "input_a": f"testA/{img_a.name}", "input_b": f"testB/{img_b.name}"},
              "dtype": "float32"}
    common.save(out / f"expected_concat{concat}.pt", tensors, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of HsinYingLee/DRIT")
    parser.add_argument("--out", type=Path, default=Path("tests/golden/drit"))
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
    for concat, no_ms, _ in GOLDENS.values():
        import_fixtures(official, concat, no_ms, import_dir)
    torch.set_default_dtype(torch.float32)


if __name__ == "__main__":
    main()
