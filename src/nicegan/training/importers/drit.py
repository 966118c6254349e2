"""DRIT / DRIT++ (HsinYingLee/DRIT): the dict ``DRIT.save`` writes (``<ep:05d>.pth``, ``last.pth``).

It holds the state dicts ``disA``, ``disA2``, ``disB``, ``disB2``, ``disContent``, ``enc_c``, ``enc_a``, ``gen``,
one Adam state per net (``disA_opt`` ... ``gen_opt``), ``ep`` and ``total_it``. Our nets have the same contents
under ``dis_a`` ... ``dis_content``, ``enc_c``, ``enc_a``, ``gen``; our optimisers group them by role (one Adam over
the four image discriminators, one for the content discriminator, one over ``enc_c`` + ``enc_a`` + ``gen``), and
Adam is elementwise, so each official per-net moment lands on its parameter unchanged. One training step here is one
official ``total_it``. ``--concat`` (1: ``E_attr_concat`` + ``G_concat``; 0: ``E_attr`` + ``G``) is read off the
attribute encoder; the training size is not in the weights (official crop 216).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nicegan.core.errors import CheckpointError
from nicegan.training.importers.common import (
    Imported,
    OfficialFormat,
    count_indices,
    finite_step,
    is_state_dict,
    shape,
    strip_prefix,
)

NETS = {"disA": "dis_a", "disA2": "dis_a2", "disB": "dis_b", "disB2": "dis_b2", "disContent": "dis_content",
        "enc_c": "enc_c", "enc_a": "enc_a", "gen": "gen"}
#: which of our optimisers each official per-net Adam belongs to
OPTIMIZERS = {"dis": ("disA", "disA2", "disB", "disB2"), "dis_content": ("disContent",),
              "gen": ("enc_c", "enc_a", "gen")}
TEST_NETS = ("enc_c", "enc_a", "gen")  # what the official test scripts load
DEFAULT_SIZE = 216


def mismatch(files: Mapping[Path, Any]) -> str | None:
    """None for one DRIT save() file (or one holding at least the test nets), else why not."""
    if len(files) != 1:
        return "DRIT saves one .pth dict per checkpoint; name only that file"
    raw = next(iter(files.values()))
    if not isinstance(raw, dict) or not set(raw) >= set(TEST_NETS):
        return "it lacks the keys enc_c, enc_a and gen"
    if not all(is_state_dict(raw[k]) for k in NETS if k in raw):
        return "its nets are not state dicts of tensors"
    return None


def convert(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """The nets (and per-net Adam states) under our names; concat, nz and widths read off."""
    path, raw = next(iter(files.items()))
    where = path.name
    nets = {ours: strip_prefix(raw[off]) for off, ours in NETS.items() if off in raw}
    if any(k.endswith((".gamma", ".beta")) for k in nets["gen"]):
        # official commit 5ec8d6a (2018-08-05) replaced LayerNorm's gamma/beta and its (x - mean) / (std + eps)
        # with F.layer_norm: the official code itself has not loaded such files since
        raise CheckpointError(f"{where} was written by the DRIT code of before 2018-08-05 (LayerNorm gamma/beta, "
                              "normalising by std + eps); the current official networks, which this toolkit "
                              "follows, compute another LayerNorm and cannot load it (nor can the official code)")
    enc_c, enc_a = nets["enc_c"], nets["enc_a"]
    ch, img_ch = shape(enc_c, "convA.0.model.1.weight", where, "a DRIT content encoder")[:2]
    concat = "fc_A.0.weight" in enc_a
    if concat:
        nz = shape(enc_a, "fc_A.0.weight", where, "a DRIT attribute encoder")[0]
        attr_ch = shape(enc_a, "conv_A.1.weight", where, "a DRIT attribute encoder")[0]
    else:
        last = max((int(k.split(".")[1]) for k in enc_a if k.startswith("model_a.") and k.endswith(".weight")),
                   default=-1)
        nz = shape(enc_a, f"model_a.{last}.weight", where, "a DRIT attribute encoder")[0]
        attr_ch = shape(enc_a, "model_a.1.weight", where, "a DRIT attribute encoder")[0]
    settings: dict[str, Any] = {"model.concat": concat, "model.ch": ch, "model.img_ch": img_ch, "model.nz": nz,
                                "model.attr_ch": attr_ch}
    if "dis_a" in nets:
        d = nets["dis_a"]
        settings.update({"model.dis_ch": shape(d, "Diss.0.0.model.1.weight", where, "a DRIT discriminator")[0],
                         "model.dis_scale": count_indices(d, r"Diss\.(\d+)\."),
                         "model.dis_layers": count_indices(d, r"Diss\.0\.(\d+)\.") - 1})
    if "dis_content" in nets:
        settings["model.content_dis_layers"] = count_indices(nets["dis_content"], r"model\.(\d+)\.") - 2
    notes = []
    size = opts.get("img_size")
    if size is None:
        notes.append(f"the training size is not in DRIT's weights; assuming the official crop {DEFAULT_SIZE} px (pass "
                     "img_size otherwise)")
    settings["model.img_size"] = size or DEFAULT_SIZE
    optimizers = {ours: [(raw[f"{o}_opt"], tuple(NETS[n] for n in (o,))) for o in offs]
                  for ours, offs in OPTIMIZERS.items() if all(f"{o}_opt" in raw for o in offs)}
    step = finite_step(raw.get("total_it", 0), where)
    if "total_it" not in raw:
        notes.append("the file has no total_it: the run starts at step 0")
    return Imported(model="drit", preset="drit", settings=settings, nets=nets, step=step, optimizers=optimizers,
                    notes=notes)


FORMAT = OfficialFormat("drit", "HsinYingLee/DRIT", mismatch, convert)
