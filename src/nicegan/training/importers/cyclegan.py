"""CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix): training folders and the released test generators.

``BaseModel.save_networks`` writes one bare state dict per net, ``<epoch>_net_<name>.pth`` with name ``G_A``
(A -> B), ``G_B``, ``D_A`` (judges domain B) and ``D_B``; the released models (``download_cyclegan_model.sh``) are a
single ``latest_net_G.pth`` that ``--model test`` loads as the A -> B generator. Neither carries optimizer state or
an iteration count. Files of older releases carry InstanceNorm running statistics (``running_mean``,
``running_var``, ``num_batches_tracked``) that the official loader deletes (``__patch_instance_norm_state_dict``);
so do we. Generators trained with ``--use_dropout`` have their second conv at ``conv_block.6``: dropout is the
identity at test time, so the conv moves to ``conv_block.5`` (translation unchanged, further training differs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nicegan.core.errors import CheckpointError
from nicegan.training.importers.common import (
    Imported,
    OfficialFormat,
    StateDict,
    count_indices,
    is_state_dict,
    shape,
    strip_prefix,
)

NAME = re.compile(r"(.+)_net_(G_A|G_B|D_A|D_B|G)\.pth")
#: official net name -> ours (official D_A judges G_A's output, i.e. domain B)
NETS = {"G_A": "gen_a2b", "G_B": "gen_b2a", "D_A": "dis_b", "D_B": "dis_a", "G": "gen_a2b"}
_NORM_STATS = (".running_mean", ".running_var", ".num_batches_tracked")
#: the official default load_size 286 / crop_size 256: a trained size is not in the weights
DEFAULT_SIZE = 256


def _role(sd: Mapping[str, Any]) -> str | None:
    if "model.1.weight" in sd and any(".conv_block." in k for k in sd):
        return "G"
    if "model.0.weight" in sd and not any(".conv_block." in k for k in sd):
        return "D"
    return None


def _pick(files: Mapping[Path, Any]) -> dict[str, tuple[Path, str]]:
    """label -> {official net name: path}; files named as the official code names them."""
    groups: dict[str, dict[str, Path]] = {}
    for p in files:
        m = NAME.fullmatch(p.name)
        if m:
            groups.setdefault(m.group(1), {})[m.group(2)] = p
    return groups  # type: ignore[return-value]


def mismatch(files: Mapping[Path, Any]) -> str | None:
    """None when every file is a CycleGAN net saved by the official code, else why not."""
    for p, raw in files.items():
        if not NAME.fullmatch(p.name):
            return f"{p.name} is not named <epoch>_net_<G_A|G_B|D_A|D_B|G>.pth as the official code names its files"
        if not is_state_dict(raw):
            return f"{p.name} is not a bare state dict"
        want = "G" if NAME.fullmatch(p.name).group(2).startswith("G") else "D"  # type: ignore[union-attr]
        if _role(strip_prefix(raw)) != want:
            return f"{p.name} does not hold a ResNet {'generator' if want == 'G' else 'PatchGAN discriminator'}"
    groups = _pick(files)
    for label, nets in groups.items():
        if "G" in nets and len(nets) > 1:
            return f"{label}_net_G.pth is a single test generator; it cannot be mixed with training files"
    return None


def _clean(sd: StateDict, notes: list[str], name: str) -> StateDict:
    sd = strip_prefix(sd)
    stats = [k for k in sd if k.endswith(_NORM_STATS)]
    if stats:
        notes.append(f"{name}: dropped {len(stats)} InstanceNorm running-statistics entries, as the official loader "
                     "does (files of older releases carry them)")
    sd = {k: v for k, v in sd.items() if not k.endswith(_NORM_STATS)}
    if any(re.match(r"model\.\d+\.conv_block\.6\.", k) for k in sd):
        sd = {re.sub(r"^(model\.\d+\.conv_block\.)6\.", r"\g<1>5.", k): v for k, v in sd.items()}
        notes.append(f"{name} was trained with dropout (the official use_dropout); dropout is the identity when "
                     "translating, so translations are the official ones, but a resumed training would run without it")
    return sd


def convert(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """The official nets under our names, the architecture read off them."""
    groups = _pick(files)
    label = "latest" if "latest" in groups else max(groups, key=lambda s: (s.isdigit(), int(s) if s.isdigit() else 0))
    notes: list[str] = []
    if len(groups) > 1:
        notes.append(f"several checkpoints given; using the {label!r} files")
    chosen = groups[label]
    nets = {NETS[n]: _clean(files[p], notes, p.name) for n, p in chosen.items()}
    where = ", ".join(p.name for p in chosen.values())
    settings: dict[str, Any] = {}
    gen = next((sd for n, sd in nets.items() if n.startswith("gen")), None)
    if gen is not None:
        ngf, img_ch = shape(gen, "model.1.weight", where, "a CycleGAN generator")[:2]
        settings.update({"model.ngf": ngf, "model.img_ch": img_ch,
                         "model.n_blocks": count_indices(gen, r"model\.(\d+)\.conv_block\.")})
    dis = next((sd for n, sd in nets.items() if n.startswith("dis")), None)
    if dis is not None:
        ndf, img_ch = shape(dis, "model.0.weight", where, "a CycleGAN discriminator")[:2]
        convs = sum(1 for k, v in dis.items() if k.endswith(".weight") and v.dim() == 4)
        if convs < 3:
            raise CheckpointError(f"{where}: a PatchGAN discriminator has at least 3 convolutions, this one {convs}")
        settings.update({"model.ndf": ndf, "model.img_ch": img_ch, "model.n_layers_d": convs - 2})
    size = opts.get("img_size")
    if size is None:
        notes.append(f"the training size is not in CycleGAN's weights; assuming the official {DEFAULT_SIZE} px "
                     "(pass img_size otherwise; the generator is fully convolutional and translates any size)")
    settings["model.img_size"] = size or DEFAULT_SIZE
    notes.append("CycleGAN files hold no optimizer state or iteration count: the run starts at step 0 with fresh Adam "
                 "moments" if len(nets) == 4 else "")
    return Imported(model="cyclegan", preset="cyclegan", settings=settings, nets=nets, step=0,
                    notes=[n for n in notes if n])


FORMAT = OfficialFormat("cyclegan", "junyanz/pytorch-CycleGAN-and-pix2pix", mismatch, convert)
