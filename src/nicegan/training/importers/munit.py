"""MUNIT (NVlabs/MUNIT): ``gen_<iter>.pt``, ``dis_<iter>.pt`` and ``optimizer.pt`` of ``MUNIT_Trainer.save``.

``gen_%08d.pt`` holds ``{"a": gen_a.state_dict(), "b": gen_b.state_dict()}`` (the released pretrained models are
such a file alone, which ``test.py`` loads), ``dis_%08d.pt`` the two discriminators the same way, and
``optimizer.pt`` (overwritten at every save, so it belongs to the newest iteration) ``{"gen": ..., "dis": ...}``,
the Adam states over ``gen_a`` then ``gen_b`` (``dis_a`` then ``dis_b``) parameters. The iteration in the names is
the one the official resume continues from. The AdaIN layers' running buffers in ``gen`` files are never read by
the official forward pass and are not kept by the toolkit, nor are the InstanceNorm statistics that files of PyTorch
0.3 carry (the released edges2shoes model has them; the official ``test.py`` deletes them): dropped, said. Widths,
depths and the style size are read off the weights; activation, padding and the GAN loss are the official defaults
(relu, reflect, lsgan).
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

GEN, DIS, OPT = re.compile(r"gen_(\d+)\.pt"), re.compile(r"dis_(\d+)\.pt"), "optimizer.pt"
DEFAULT_SIZE = 256  # the official configs' crop size
_STATS = (".running_mean", ".running_var", ".num_batches_tracked")


def _pair(raw: Any) -> bool:
    return isinstance(raw, dict) and set(raw) == {"a", "b"} and all(is_state_dict(v) for v in raw.values())


def is_munit_gen(sd: Mapping[str, Any]) -> bool:
    """An AdaINGen (style and content encoders, decoder, MLP), as opposed to master UNIT's VAEGen."""
    return any(k.startswith("enc_style.") for k in sd) and any(k.startswith("mlp.") for k in sd)


def mismatch(files: Mapping[Path, Any]) -> str | None:
    """None for MUNIT_Trainer files (a gen file at least), else why not."""
    gens = []
    for p, raw in files.items():
        if p.name == OPT:
            if not (isinstance(raw, dict) and set(raw) == {"gen", "dis"}):
                return f"{p.name} does not hold the 'gen' and 'dis' optimizer states"
        elif GEN.fullmatch(p.name) or DIS.fullmatch(p.name):
            if not _pair(raw):
                return f"{p.name} is not a dict of the two domains' state dicts ('a', 'b')"
            if GEN.fullmatch(p.name):
                if not is_munit_gen(raw["a"]):
                    return f"{p.name} holds no AdaIN generator (no style encoder or MLP)"
                gens.append(p)
        elif _pair(raw) and is_munit_gen(raw["a"]):  # a released model under another name (edges2shoes.pt)
            gens.append(p)
        else:
            return f"{p.name} is not named gen_<iter>.pt, dis_<iter>.pt or optimizer.pt"
    return None if gens else "no gen_<iter>.pt file (the generators) among them"


def _iter_of(p: Path) -> int | None:
    m = GEN.fullmatch(p.name) or DIS.fullmatch(p.name)
    return int(m.group(1)) if m else None


def _clean(sd: StateDict) -> tuple[StateDict, int]:
    sd = strip_prefix(sd)
    # AdaIN buffers in the decoder, and InstanceNorm statistics anywhere in files of PyTorch 0.3 (the official
    # test.py deletes the latter too): no forward pass reads them, and no generator has a BatchNorm
    stats = [k for k in sd if k.endswith(_STATS)]
    return {k: v for k, v in sd.items() if k not in stats}, len(stats)


def convert(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """gen_a/gen_b (and dis_a/dis_b, and both Adam states when given) under our names, architecture read off."""
    gens = [p for p in files if p.name != OPT and not DIS.fullmatch(p.name)]
    notes: list[str] = []
    gen_path = max(gens, key=lambda p: _iter_of(p) or -1)
    if len(gens) > 1:
        notes.append(f"several generator files given; using {gen_path.name}")
    it = _iter_of(gen_path)
    dis_path = next((p for p in files if DIS.fullmatch(p.name) and _iter_of(p) == it), None)
    if dis_path is None and any(DIS.fullmatch(p.name) for p in files):
        raise CheckpointError(f"{gen_path.name} has no dis file of the same iteration among the files given")
    nets: dict[str, StateDict] = {}
    dropped = 0
    for dom in ("a", "b"):
        nets[f"gen_{dom}"], n = _clean(files[gen_path][dom])
        dropped += n
    if dropped:
        notes.append(f"dropped {dropped} AdaIN / InstanceNorm running-statistics buffers (never read by the official "
                     "forward pass)")
    where = gen_path.name
    g = nets["gen_a"]
    dim, img_ch = shape(g, "enc_content.model.0.conv.weight", where, "an AdaIN generator")[:2]
    last_style = max(int(m.group(1)) for k in g if (m := re.match(r"enc_style\.model\.(\d+)\.weight$", k)))
    settings: dict[str, Any] = {
        "model.dim": dim, "model.img_ch": img_ch,
        "model.style_dim": shape(g, f"enc_style.model.{last_style}.weight", where, "an AdaIN generator")[0],
        "model.mlp_dim": shape(g, "mlp.model.0.fc.weight", where, "an AdaIN generator")[0],
        "model.n_downsample": count_indices(g, r"enc_content\.model\.(\d+)\.conv\.weight") - 1,
        "model.n_res": count_indices(g, r"enc_content\.model\.\d+\.model\.(\d+)\."),
        "model.n_style_downsample": count_indices(g, r"enc_style\.model\.(\d+)\.conv\.weight") - 1,
    }
    optimizers: dict[str, list[tuple[Any, tuple[str, ...]]]] = {}
    if dis_path is not None:
        for dom in ("a", "b"):
            nets[f"dis_{dom}"] = strip_prefix(files[dis_path][f"{dom}"])
        d = nets["dis_a"]
        settings.update({"model.dis_dim": shape(d, "cnns.0.0.conv.weight", dis_path.name, "an MsImageDis")[0],
                         "model.dis_n_layer": count_indices(d, r"cnns\.0\.(\d+)\.conv\.weight"),
                         "model.dis_num_scales": count_indices(d, r"cnns\.(\d+)\.")})
        opt_path = next((p for p in files if p.name == OPT), None)
        newest = max((_iter_of(p) or -1) for p in files if p.name != OPT)
        if opt_path is not None and it == newest:
            raw = files[opt_path]
            optimizers = {"gen": [(raw["gen"], ("gen_a", "gen_b"))], "dis": [(raw["dis"], ("dis_a", "dis_b"))]}
        elif opt_path is not None:
            notes.append("optimizer.pt belongs to the newest saved iteration, not to this one: not used")
    size = opts.get("img_size")
    if size is None:
        notes.append(f"the training size is not in MUNIT's weights; assuming the official configs' {DEFAULT_SIZE} px "
                     "(pass img_size otherwise)")
    settings["model.img_size"] = size or DEFAULT_SIZE
    notes.append("activation, padding and GAN loss are the official defaults (relu, reflect, lsgan): the weights do "
                 "not record them")
    return Imported(model="munit", preset="munit", settings=settings, nets=nets, step=it or 0,
                    optimizers=optimizers, notes=notes)


FORMAT = OfficialFormat("munit", "NVlabs/MUNIT", mismatch, convert)
