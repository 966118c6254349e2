"""UNIT (mingyuliutw/UNIT): the NIPS network of branch ``version_02``, and a clear refusal of master's files.

``version_02``'s trainers save ``<snapshot_prefix>_gen_%08d.pkl`` (``gen.state_dict()``) and
``<snapshot_prefix>_dis_%08d.pkl`` (``dis.state_dict()``), the number being the iteration count after the save; no
optimizer state. Translation nets: ``COCOResGen``/``COCOResGen2`` keys (``encode_A``, ``enc_shared``, ...) load into
our ``gen`` as they are; ``COCODis`` holds ``model_A.*`` / ``model_B.*``, our ``dis_a`` / ``dis_b`` (``model.*``).
Domain-adaptation nets (``cocogan_train_domain_adaptation.py``): ``CoVAE32x32`` and ``CoDis32x32`` load into our
``arch: da32`` nets ``gen`` and ``dis`` as they are. COCOResGen and COCOResGen2 have the same keys (they differ in
InstanceNorm vs none), so which one is not in the weights: COCOResGen is assumed and said.

master (May 2018 on) re-released UNIT in MUNIT's code: ``gen_%08d.pt`` holds two independent ``VAEGen`` nets
(``{"a": ..., "b": ...}``, keys ``enc.model...``, ``dec.model...``) with no layer shared between the domains. The
NIPS network shares its high-level encoder and decoder blocks, so master's weights have no place in it: refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

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

GEN, DIS = re.compile(r"(.*)_gen_(\d+)\.pkl"), re.compile(r"(.*)_dis_(\d+)\.pkl")
DEFAULT_SIZE = 216  # the cat2tiger / corgi2husky configs' crop (after a 1.2x rescale)
_NORM_STATS = (".running_mean", ".running_var", ".num_batches_tracked")


def _kind(sd: Mapping[str, Any]) -> str | None:
    if any(k.startswith("encode_A.") for k in sd) and any(k.startswith("enc_shared.") for k in sd):
        return "gen"
    if any(k.startswith("g_en_conv0_a.") for k in sd):
        return "gen_da"
    if any(k.startswith("model_A.") for k in sd) and any(k.startswith("model_B.") for k in sd):
        return "dis"
    if any(k.startswith("conv0_a.") for k in sd) and "conv4.weight" in sd:
        return "dis_da"
    return None


def mismatch(files: Mapping[Path, Any]) -> str | None:
    """None for version_02 ``*_gen_*.pkl`` (and ``*_dis_*.pkl``) files, else why not."""
    kinds = []
    for p, raw in files.items():
        if not is_state_dict(raw):
            return f"{p.name} is not a bare state dict (version_02 saves gen.state_dict() / dis.state_dict())"
        kind = _kind(strip_prefix(raw))
        if kind is None:
            return f"{p.name} holds neither COCOResGen/COCODis nor CoVAE32x32/CoDis32x32 weights"
        kinds.append(kind)
    if not any(k.startswith("gen") for k in kinds):
        return "no generator file (*_gen_*.pkl) among them"
    if len({k.endswith("_da") for k in kinds}) > 1:
        return "translation and domain-adaptation nets mixed"
    return None


def _step(p: Path) -> int | None:
    m = GEN.fullmatch(p.name) or DIS.fullmatch(p.name)
    return int(m.group(2)) if m else None


def convert(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """gen (and the discriminators) under our names; widths and block counts read off."""
    by_kind: dict[str, list[Path]] = {}
    for p, raw in files.items():
        by_kind.setdefault(_kind(strip_prefix(raw)) or "", []).append(p)
    da = "gen_da" in by_kind
    gen_path = max(by_kind["gen_da" if da else "gen"], key=lambda p: _step(p) or -1)
    notes: list[str] = []
    dis_paths = [p for p in by_kind.get("dis_da" if da else "dis", []) if _step(p) == _step(gen_path)]
    if by_kind.get("dis_da" if da else "dis") and not dis_paths:
        raise CheckpointError(f"{gen_path.name} has no discriminator file of the same iteration among the files given")
    gen = strip_prefix(files[gen_path])
    where = gen_path.name
    if not da:  # files of PyTorch < 0.4 carry InstanceNorm running statistics that no forward pass reads
        stats = [k for k in gen if k.endswith(_NORM_STATS)]
        if stats:
            notes.append(f"dropped {len(stats)} InstanceNorm running-statistics entries (written by PyTorch < 0.4, "
                         "never read by the forward pass)")
            gen = {k: v for k, v in gen.items() if k not in stats}
    nets: dict[str, StateDict] = {"gen": gen}
    if da:
        ch = shape(gen, "g_en_conv0_a.model.0.weight", where, "a CoVAE32x32")[0]
        settings: dict[str, Any] = {"model.arch": "da32", "model.ch": ch, "model.img_ch": 3, "model.img_size": 32}
        dis = strip_prefix(files[dis_paths[0]]) if dis_paths else None
        for dom in ("a", "b"):
            in_ch = shape(gen, f"g_en_conv0_{dom}.model.0.weight", where, "a CoVAE32x32")[1] - 2
            if in_ch == 1:  # the official svhn2mnist nets read MNIST as one channel
                gen, dis = _gray_domain_as_rgb(gen, dis, dom)
                notes.append(f"domain {dom.upper()} is one-channel in the official nets; its first and last layers "
                             "are spread over RGB (outputs equal for grey images, read as R = G = B)")
        nets["gen"] = gen
        if dis is not None:
            nets["dis"] = dis
            settings.update({"model.dis_ch": shape(dis, "conv0_a.0.weight", dis_paths[0].name, "a CoDis32x32")[0],
                             "model.n_classes": shape(dis, "conv_cl.weight", dis_paths[0].name, "a CoDis32x32")[0]})
        preset = "unit-digits-da"
    else:
        ch, img_ch = shape(gen, "encode_A.0.model.0.weight", where, "a COCOResGen")[:2]
        front = {m.group(1) for k in gen if (m := re.match(r"encode_A\.(\d+)\.model\.0\.weight$", k))}
        res = {m.group(1) for k in gen if (m := re.match(r"encode_A\.(\d+)\.model\.3\.weight$", k))}
        settings = {"model.arch": "translation", "model.ch": ch, "model.img_ch": img_ch,
                    "model.n_enc_front_blk": len(front - res), "model.n_enc_res_blk": len(res),
                    "model.n_enc_shared_blk": count_indices(gen, r"enc_shared\.(\d+)\."),
                    "model.n_gen_shared_blk": count_indices(gen, r"dec_shared\.(\d+)\."),
                    "model.n_gen_res_blk": count_indices(gen, r"decode_A\.(\d+)\.model\.3\.")}
        if dis_paths:
            dis = strip_prefix(files[dis_paths[0]])
            for dom in ("A", "B"):
                nets[f"dis_{dom.lower()}"] = {"model." + k[len(f"model_{dom}."):]: v for k, v in dis.items()
                                              if k.startswith(f"model_{dom}.")}
            settings.update({"model.dis_ch": shape(nets["dis_a"], "model.0.model.0.weight", dis_paths[0].name,
                                                   "a COCODis")[0],
                             "model.n_dis_layer": count_indices(nets["dis_a"], r"model\.(\d+)\.model\.0\.weight")})
        size = opts.get("img_size")
        if size is None:
            notes.append(f"the training size is not in UNIT's weights; assuming the official {DEFAULT_SIZE} px (pass "
                         "img_size otherwise)")
        settings["model.img_size"] = size or DEFAULT_SIZE
        notes.append("COCOResGen and COCOResGen2 have the same weights; COCOResGen (InstanceNorm) is assumed: set "
                     "the config value model.generator=COCOResGen2 if the official config named COCOResGen2")
        preset = "unit"
    notes.append("version_02 files hold no optimizer state: the run resumes with fresh Adam moments")
    return Imported(model="unit", preset=preset, settings=settings, nets=nets, step=_step(gen_path) or 0,
                    notes=notes)


def _gray_domain_as_rgb(gen: StateDict, dis: StateDict | None, dom: str) -> tuple[StateDict, StateDict | None]:
    """The nets of a one-channel domain for RGB images with R = G = B: input weights split over the three channels
    (their sum is the grey weight), output channel and bias repeated three times. The xy channels come after the
    image channels and stay as they are."""
    gen = dict(gen)
    w = gen[f"g_en_conv0_{dom}.model.0.weight"]
    gen[f"g_en_conv0_{dom}.model.0.weight"] = torch.cat([w[:, :1].expand(-1, 3, -1, -1) / 3, w[:, 1:]], 1)
    gen[f"de_conv4_{dom}.weight"] = gen[f"de_conv4_{dom}.weight"].expand(-1, 3, -1, -1).clone()
    gen[f"de_conv4_{dom}.bias"] = gen[f"de_conv4_{dom}.bias"].expand(3).clone()
    if dis is not None:
        dis = dict(dis)
        dis[f"conv0_{dom}.0.weight"] = dis[f"conv0_{dom}.0.weight"].expand(-1, 3, -1, -1) / 3
    return gen, dis


def master_mismatch(files: Mapping[Path, Any]) -> str | None:
    """None for master's MUNIT-style UNIT files (which :func:`refuse_master` then refuses), else why not."""
    for raw in files.values():
        if (isinstance(raw, dict) and set(raw) == {"a", "b"} and is_state_dict(raw["a"])
                and any(k.startswith("enc.") for k in raw["a"]) and any(k.startswith("dec.") for k in raw["a"])):
            return None
    return "no gen_<iter>.pt holding two VAEGen nets ('a', 'b' with enc.* / dec.* keys)"


def refuse_master(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """master's nets cannot be expressed in the NIPS network: say why in one line."""
    raise CheckpointError("these are UNIT master files (MUNIT-style VAEGen per domain, no layer shared between the "
                          "domains); the toolkit implements the NIPS network of branch version_02, whose encoders "
                          "and decoders share their high-level blocks, so these weights have no place in it: import "
                          "the version_02 *_gen_*.pkl / *_dis_*.pkl files instead")


FORMAT = OfficialFormat("unit", "mingyuliutw/UNIT (version_02)", mismatch, convert)
MASTER = OfficialFormat("unit-master", "mingyuliutw/UNIT (master)", master_mismatch, refuse_master)
