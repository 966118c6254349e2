"""CoGAN (mingyuliutw/CoGAN, the PyTorch port ``cogan_pytorch/``): ``CoGen28x28`` / ``CoDis28x28`` state dicts.

The port's trainers (``train_cogan_mnist2usps.py``, ``train_cogan_mnistedge.py``) save images only: the lines that
would write ``<snapshot_prefix>_gen_%08d.pkl`` (``trainer.gen.state_dict()``) and ``_dis_%08d.pkl`` are commented
out. Those are the files read here (a user who enables them, or saves the nets the same way, gets exactly these).
No optimizer state: an imported run resumes with fresh Adam moments.

The toolkit's CoGAN differs from the port in two places its header lists, and the weights are re-expressed so that
every output is unchanged (not merely re-keyed):

- images in [-1, 1] instead of [0, 1]: the generator heads end in tanh, so their weights and bias are halved
  (tanh(y / 2) = 2 sigmoid(y) - 1); the discriminator's first convs (no padding) see x = 2 u - 1, so their weights
  are halved and each bias gains half the sum of its weights;
- the port's transposed-conv biases sit before an affine-free BatchNorm, which cancels them in training and folds
  them into the running mean in eval mode: our convs have no bias, so each is subtracted from the running mean,
  and our post-norm bias (Caffe's) is zero, as the port's effective one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nicegan.training.importers.common import (
    Imported,
    OfficialFormat,
    StateDict,
    is_state_dict,
    shape,
    strip_prefix,
)

NAME = re.compile(r"(.*)_(gen|dis)_(\d+)\.pkl")
DEFAULT_SIZE = 28  # CoGen28x28


def _kind(sd: Mapping[str, Any]) -> str | None:
    if "dconv0.weight" in sd and "dconv4_a.weight" in sd:
        return "gen"
    if "conv0_a.weight" in sd and "conv3.weight" in sd:
        return "dis"
    return None


def mismatch(files: Mapping[Path, Any]) -> str | None:
    """None for CoGen28x28 (and CoDis28x28) state dicts, else why not."""
    kinds = []
    for p, raw in files.items():
        if not is_state_dict(raw):
            return f"{p.name} is not a bare state dict (the port saves gen.state_dict() / dis.state_dict())"
        kind = _kind(strip_prefix(raw))
        if kind is None:
            return f"{p.name} holds neither CoGen28x28 (dconv0 ... dconv4_a) nor CoDis28x28 (conv0_a ... conv3) weights"
        kinds.append(kind)
    if "gen" not in kinds:
        return "no generator file (*_gen_*.pkl) among them"
    if kinds.count("gen") > 1 or kinds.count("dis") > 1:
        return "name the files of one iteration (one gen, at most one dis)"
    return None


def _generator(off: StateDict) -> StateDict:
    ours: StateDict = {}
    for i in range(4):
        ours[f"trunk.dconv{i}.weight"] = off[f"dconv{i}.weight"]
        bias = off.get(f"dconv{i}.bias")
        mean = off[f"bn{i}.running_mean"]
        ours[f"trunk.bn{i}.running_mean"] = mean - bias if bias is not None else mean
        ours[f"trunk.bn{i}.running_var"] = off[f"bn{i}.running_var"]
        if f"bn{i}.num_batches_tracked" in off:  # else (PyTorch < 0.4) the driver adds a fresh counter
            ours[f"trunk.bn{i}.num_batches_tracked"] = off[f"bn{i}.num_batches_tracked"]
        ours[f"trunk.bias{i}.bias"] = torch.zeros_like(mean)
        ours[f"trunk.prelu{i}.weight"] = off[f"prelu{i}.weight"]
    for dom in ("a", "b"):
        ours[f"head_{dom}.dconv4.weight"] = off[f"dconv4_{dom}.weight"] / 2
        ours[f"head_{dom}.dconv4.bias"] = off[f"dconv4_{dom}.bias"] / 2
    return ours


def _discriminator(off: StateDict) -> StateDict:
    ours: StateDict = {}
    for dom in ("a", "b"):
        w, b = off[f"conv0_{dom}.weight"], off[f"conv0_{dom}.bias"]
        ours[f"first_{dom}.conv0.weight"] = w / 2
        ours[f"first_{dom}.conv0.bias"] = b + w.sum(dim=(1, 2, 3)) / 2
    for name, to in (("conv1", "trunk.conv1"), ("conv2", "trunk.conv2"), ("conv3", "logit"), ("conv_cl", "classifier")):
        for part in ("weight", "bias"):
            if f"{name}.{part}" in off:
                ours[f"{to}.{part}"] = off[f"{name}.{part}"]
    ours["trunk.prelu2.weight"] = off["prelu2.weight"]
    return ours


def convert(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """The port's nets re-expressed for [-1, 1] images under our names; widths read off."""
    by_kind = {_kind(strip_prefix(raw)): p for p, raw in files.items()}
    gen_path = by_kind["gen"]
    gen = strip_prefix(files[gen_path])
    where = gen_path.name
    z_dim, gen_ch = shape(gen, "dconv0.weight", where, "a CoGen28x28")[:2]
    img_ch = shape(gen, "dconv4_a.weight", where, "a CoGen28x28")[1]
    nets = {"gen": _generator(gen)}
    settings: dict[str, Any] = {"model.arch": "digits", "model.z_dim": z_dim, "model.gen_ch": gen_ch,
                                "model.img_ch": img_ch}
    preset = "cogan"
    dis_path = by_kind.get("dis")
    if dis_path is not None:
        dis = strip_prefix(files[dis_path])
        nets["dis"] = _discriminator(dis)
        settings.update({"model.dis_ch": shape(dis, "conv0_a.weight", dis_path.name, "a CoDis28x28")[0],
                         "model.dis_fc": shape(dis, "conv2.weight", dis_path.name, "a CoDis28x28")[0]})
        if "conv_cl.weight" in dis:  # the mnist2usps nets: the domain-adaptation classifier
            settings["model.num_classes"] = shape(dis, "conv_cl.weight", dis_path.name, "a CoDis28x28")[0]
            preset = "cogan-da"
    notes = ["the weights are re-expressed for [-1, 1] images and the toolkit's bias placement (outputs unchanged; "
             "see the CoGAN model header)"]
    size = opts.get("img_size")
    if size is None:
        notes.append(f"assuming the port's {DEFAULT_SIZE} px (CoGen28x28; pass img_size for 29-35 px nets)")
    settings["model.img_size"] = size or DEFAULT_SIZE
    notes.append("the port's files hold no optimizer state: the run resumes with fresh Adam moments")
    m = NAME.fullmatch(gen_path.name)
    return Imported(model="cogan", preset=preset, settings=settings, nets=nets, step=int(m.group(3)) if m else 0,
                    notes=notes)


FORMAT = OfficialFormat("cogan", "mingyuliutw/CoGAN (cogan_pytorch)", mismatch, convert)
