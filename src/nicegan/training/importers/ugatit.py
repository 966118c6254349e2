"""U-GAT-IT (znxlwm/UGATIT-pytorch): ``<dataset>_params_<step>.pt`` and ``<dataset>_params_latest.pt``.

``UGATIT.save`` writes one dict of six state dicts, ``genA2B``, ``genB2A``, ``disGA``, ``disGB``, ``disLA``,
``disLB``, with the step in the file name (``%07d``; the ``_latest`` file has none). No optimizer state is saved,
so an imported run resumes with fresh Adam moments. Light or full is read off the generator's first MLP layer
(its input is the flattened feature map in the full model, which also gives the training size).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nicegan.core.errors import CheckpointError
from nicegan.training.importers.common import (
    Imported,
    OfficialFormat,
    count_indices,
    is_state_dict,
    shape,
    strip_prefix,
)

NETS = {"genA2B": "gen_a2b", "genB2A": "gen_b2a", "disGA": "dis_ga", "disGB": "dis_gb", "disLA": "dis_la",
        "disLB": "dis_lb"}
STEP = re.compile(r".*_params_(\d+)\.pt")
DEFAULT_SIZE = 256  # official --img_size


def mismatch(files: Mapping[Path, Any]) -> str | None:
    """None for one official U-GAT-IT params file, else why not."""
    if len(files) != 1:
        return "U-GAT-IT saves one <dataset>_params_<step>.pt file per checkpoint; name only that file"
    raw = next(iter(files.values()))
    if not isinstance(raw, dict) or not set(raw) >= set(NETS):
        return "it lacks the keys genA2B, genB2A, disGA, disGB, disLA, disLB"
    if not all(is_state_dict(raw[k]) for k in NETS):
        return "its nets are not state dicts of tensors"
    return None


def convert(files: Mapping[Path, Any], opts: dict[str, Any]) -> Imported:
    """The six nets under our names; ch, n_res, light (and a full model's size) and both depths read off."""
    path, raw = next(iter(files.items()))
    where = path.name
    nets = {ours: strip_prefix(raw[off]) for off, ours in NETS.items()}
    gen = nets["gen_a2b"]
    ch, img_ch = shape(gen, "DownBlock.1.weight", where, "a U-GAT-IT generator")[:2]
    fc_in = shape(gen, "FC.0.weight", where, "a U-GAT-IT generator")[1]
    light = fc_in == 4 * ch
    settings: dict[str, Any] = {"model.ch": ch, "model.img_ch": img_ch, "model.light": light,
                                "model.n_res": count_indices(gen, r"UpBlock1_(\d+)\."),
                                "model.global_layers": count_indices(nets["dis_ga"], r"model\.(\d+)\.weight_orig") + 1,
                                "model.local_layers": count_indices(nets["dis_la"], r"model\.(\d+)\.weight_orig") + 1}
    notes = []
    size = opts.get("img_size")
    if opts.get("light") is not None and opts["light"] != light:
        raise CheckpointError(f"{where} holds a {'light' if light else 'full'} model, but a "
                              f"{'light' if opts['light'] else 'full'} one was asked for (light={opts['light']})",
                              option="light")
    if not light:
        side = math.isqrt(fc_in // (4 * ch))
        if side * side * 4 * ch != fc_in:
            raise CheckpointError(f"{where}: the full MLP's input width {fc_in} is not a square feature map of "
                                  f"{4 * ch} channels")
        if size is not None and size != side * 4:
            raise CheckpointError(f"{where} is a full model trained at {side * 4} px; img_size={size} cannot be used",
                                  option="img_size")
        size = side * 4
    elif size is None:
        notes.append(f"a light model's training size is not in its weights; assuming the official {DEFAULT_SIZE} px "
                     "(pass img_size otherwise)")
        size = DEFAULT_SIZE
    settings["model.img_size"] = size
    m = STEP.fullmatch(path.name)
    if m is None:
        notes.append(f"{path.name} carries no step in its name: the run starts at step 0")
    notes.append("U-GAT-IT files hold no optimizer state: the run resumes with fresh Adam moments")
    return Imported(model="ugatit", preset="ugatit-light" if light else "ugatit-full", settings=settings, nets=nets,
                    step=int(m.group(1)) if m else 0, notes=notes)


FORMAT = OfficialFormat("ugatit", "znxlwm/UGATIT-pytorch", mismatch, convert)
